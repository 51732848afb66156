"""Offline demo dataset with planted ground truth.

:func:`make_demo_dataset` writes the three course files in their exact
formats (ROI dict ``.npy``, headerless Gentle CSV, 16 kHz WAV) plus
``demo_truth.npz``. The audio is the generated story spoken by eSpeak NG and
the alignment comes from the synthesiser's word events
(:mod:`encoding_kit.demo.speech`; a synthetic buzz when eSpeak is missing).
The responses are HRF-convolved planted drivers, all measured on that speech
and its word times:

* acoustic energy of the audio -> early auditory ROIs (A1, belts, RI) and,
  more weakly, auditory association ROIs (A4, A5, TA2, STGa);
* word rate and word length -> auditory association and STS ROIs;
* slow topic drivers (content words of each topic per TR) -> language ROIs
  (44, 45, 55b, STS, TPOJ, PGi, TE1, ...), stronger on the left;
* phoneme-class drivers (:data:`PHONEME_ROIS`: the seconds of one class of
  phones per TR beyond what the amount of speech predicts, from the CMU
  dictionary, :mod:`encoding_kit.features.phonemes`) -> one class each in
  52, PFcm, PSL and STV, which carry no other driver: a phonetic signal
  that the envelope cannot follow and a speech model can;
* every other ROI (visual, motor, ...) carries noise only.

Each subject adds autocorrelated noise and slow drift, scaled per ROI so that
the leave-one-out inter-subject correlation reaches the planted target
(0 to about 0.6). Like the real recording, the WAV is 0.75 s longer than the
scan, so code that counts audio back from the end of the file is caught.
"""

from __future__ import annotations

import shutil

import numpy as np
import soundfile as sf
from scipy.signal import lfilter
from scipy.stats import gamma

from ..core.progress import tqdm
from ..core.storage import atomic_write, file_sha1, folder_lock, remove_stale_temps, temp_tag
from ..core.validation import check_int
from ..data import course_files as _data
from ..data.course_files import load_truth  # noqa: F401 - re-exported: tests and notebooks read it here
from ..data.rois import AREAS, N_AREAS, roi_names
from ..data.story_text import TOPICS, generate_story
from ..data.timebase import TR, TimeBase, pool_to_trs, word_trs
from ..features.phonemes import phoneme_class_features
from .placing import DEMO_LOCK, DemoExists, move_into_place
from .speech import speak_demo_story, synthesize_speech  # noqa: F401 (synthesize_speech: the fallback voice)
from .synthesis import write_gentle_csv

SR = _data.AUDIO_SR
AUDIO_EXTRA_S = 0.75  # the real file is 3374.25 s for a 3373.5 s scan
MIN_TRS = 50  # shorter stories can leave a topic driver constant (z-scoring it gives NaN)
PHONEME_ROIS = {"52": "fricatives", "PFcm": "nasals", "PSL": "stops", "STV": "vowels"}
"""Area -> the phoneme class planted there (both hemispheres), in areas that carry no other driver."""
DRIVERS = ("acoustic_energy", "word_rate", "word_length", *(f"topic_{t}" for t in TOPICS),
           *(f"phoneme_{c}" for c in PHONEME_ROIS.values()))

# area -> (target ISC, {driver: weight}); right hemisphere gets RIGHT_GAIN on language areas.
_AUD = {"acoustic_energy": 1.0, "word_rate": 0.3}
_ASSOC = {"acoustic_energy": 0.5, "word_rate": 0.6, "word_length": 0.5}
_STS = {"word_rate": 0.3, "word_length": 0.3, "topics": 1.0}
_LANG = {"word_rate": 0.15, "topics": 1.0}
PLANTED = {
    **{a: (0.6, _AUD) for a in ("A1", "LBelt", "MBelt", "PBelt", "RI")},
    **{a: (0.5, _ASSOC) for a in ("A4", "A5", "TA2", "STGa")},
    **{a: (0.4, _STS) for a in ("STSda", "STSdp", "STSva", "STSvp", "TPOJ1")},
    **{a: (0.3, _LANG) for a in ("44", "45", "47l", "55b", "PGi", "PGs", "TE1a", "TE1p", "SFL", "IFJa")},
    **{a: (0.45, {f"phoneme_{c}": 1.0}) for a, c in PHONEME_ROIS.items()},
}
RIGHT_GAIN = {"topics": 0.6}


def canonical_hrf(tr=TR, duration=24.0):
    """SPM's double-gamma HRF sampled every ``tr`` s, array of shape (n_lags,), peak 1."""
    t = np.arange(0, duration, tr)
    hrf = gamma.pdf(t, 6) - gamma.pdf(t, 16) / 6.0
    return hrf / hrf.max()


def stimulus_drivers(words, wav, n_trs, sr=SR, tr=TR):
    """The planted drivers per TR, before the HRF.

    Parameters
    ----------
    words : DataFrame with ``word``, ``start``, ``end``, ``topic``
        True word times (s), every word timed.
    wav : array of shape (n_samples,)
    n_trs : int
    sr : int
    tr : float

    Returns
    -------
    drivers : float array of shape (n_trs, len(DRIVERS)), each column z-scored
    """
    frames = wav[: n_trs * int(tr * sr)].reshape(n_trs, -1)
    energy = np.sqrt((frames.astype(np.float64) ** 2).mean(1))
    trs = word_trs(words["start"].to_numpy(), tr)
    ones = np.ones(len(words))
    columns = [
        energy,
        pool_to_trs(ones, trs, n_trs, "sum"),
        pool_to_trs(words["word"].str.len().to_numpy(float), trs, n_trs, "mean"),
    ]
    for topic in TOPICS:
        columns.append(pool_to_trs((words["topic"] == topic).to_numpy(float), trs, n_trs, "sum"))
    drivers = np.column_stack([np.stack(columns, 1), phoneme_drivers(words, n_trs, tr)]).astype(np.float64)
    return (drivers - drivers.mean(0)) / (drivers.std(0) + 1e-12)


def phoneme_drivers(words, n_trs, tr=TR):
    """Seconds of each planted phoneme class per TR beyond what the amount of speech predicts.

    The duration-weighted class features of
    :func:`encoding_kit.features.phonemes.phoneme_class_features`, each
    minus its least-squares fit on the TR's total phone seconds (and a
    constant): how much more of the class a TR holds than its amount of
    speech implies. What is left is phonetic content, which the acoustic
    envelope cannot follow.

    Returns
    -------
    array of shape (n_trs, len(PHONEME_ROIS))
        Columns in the order of :data:`PHONEME_ROIS`.
    """
    # the demo is generated on its own time base: its scan starts with the audio (load_story may shift it later)
    seconds, names = phoneme_class_features(words, n_trs, timebase=TimeBase(tr, 0.0), weighting="duration")
    seconds = seconds.astype(np.float64)
    design = np.column_stack([np.ones(n_trs), seconds.sum(1)])
    wanted = seconds[:, [names.index(c) for c in PHONEME_ROIS.values()]]
    return wanted - design @ np.linalg.lstsq(design, wanted, rcond=None)[0]


def planted_weights(rng):
    """Per-ROI weights on the drivers and target ISC.

    Returns
    -------
    weights : array of shape (360, n_drivers)
    isc_target : array of shape (360,)
    """
    weights = np.zeros((2 * N_AREAS, len(DRIVERS)))
    isc = np.zeros(2 * N_AREAS)
    n_topics = len(TOPICS)
    for area, (target, spec) in PLANTED.items():
        topic_w = rng.standard_normal(n_topics)
        for hemi in (0, 1):
            roi = AREAS.index(area) + hemi * N_AREAS
            for name, w in spec.items():
                gain = RIGHT_GAIN.get(name, 1.0) if hemi else 1.0
                if name == "topics":
                    weights[roi, topic_columns(DRIVERS)] = w * gain * topic_w
                else:
                    weights[roi, DRIVERS.index(name)] = w * gain
            lateral = 0.75 if (hemi and "topics" in spec) else 1.0
            isc[roi] = target * lateral * rng.uniform(0.85, 1.1)
    return weights, isc


def topic_columns(names):
    """Indices of the topic drivers among driver names (``topic_*``), list of int."""
    return [i for i, name in enumerate(names) if str(name).startswith("topic_")]


def noise_variance_for_isc(isc, n_subjects):
    """Noise variance that gives a leave-one-out ISC for unit signal variance.

    With signal variance 1, noise variance v and m = n_subjects - 1,
    ``isc = 1 / sqrt((1 + v) (1 + v / m))``; this solves it for v.
    """
    m = n_subjects - 1
    c2 = np.clip(np.asarray(isc, float), 1e-6, 0.999) ** 2
    a, b, c = c2 / m, c2 * (1 + 1 / m), c2 - 1
    return (-b + np.sqrt(b**2 - 4 * a * c)) / (2 * a)


def _subject_noise(n_trs, n_rois, variance, rng):
    phi = rng.uniform(0.3, 0.7, n_rois)
    white = rng.standard_normal((n_trs, n_rois))
    ar = np.empty_like(white)
    for r in range(n_rois):  # AR(1) per ROI
        ar[:, r] = lfilter([1.0], [1.0, -phi[r]], white[:, r])
    t = np.arange(n_trs)[:, None] / n_trs
    drift = sum(rng.standard_normal(n_rois) * np.cos(np.pi * k * t + rng.uniform(0, 2 * np.pi, n_rois))
                for k in (1, 2, 3))
    noise = ar / ar.std(0) + 0.15 * drift  # mild: slow trends are usually regressed out of real data
    return noise / noise.std(0) * np.sqrt(variance)


def make_demo_dataset(out_dir=None, n_subjects=25, n_trs=2249, seed=0, overwrite=False):
    """Write the demo dataset (course formats) and its ground truth.

    Parameters
    ----------
    out_dir : str or Path, optional
        Target folder; default the kit's data folder.
    n_subjects, n_trs : int
        Size; the course data are 25 x 2249.
    seed : int
        Everything is deterministic for a seed (>= 0).
    overwrite : bool
        Replace an existing demo. Real course files are never overwritten:
        they are checked before generating and again, per file, when the
        finished files are moved into place.

    Raises
    ------
    FolderBusy
        Another generator holds the folder's lock (``.demo.lock``): one demo
        is written into a folder at a time; the others stop at once.
    FileExistsError
        The folder holds course files the generator did not write, or one
        appeared during generation (it is kept, byte for byte).

    Returns
    -------
    pathlib.Path
        The folder written.
    """
    n_subjects = check_int(n_subjects, "n_subjects", 2)  # the noise model needs leave-one-out partners
    n_trs = check_int(n_trs, "n_trs", MIN_TRS)
    seed = check_int(seed, "seed", 0)
    out = _data.data_dir(out_dir)
    _refuse_to_clobber(out, overwrite)
    staging = out / f".demo.{temp_tag()}.tmp"
    with folder_lock(out, DEMO_LOCK, "a demo is being generated in"):  # a folder it creates goes if left empty
        try:
            ours = _refuse_to_clobber(out, overwrite)  # again, now that this generator holds the folder
            remove_stale_temps(out)  # the staging folders of killed generators
            staging.mkdir(parents=True, exist_ok=True)
            _write_demo(staging, n_subjects, n_trs, seed)
            move_into_place(staging, out, ours)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return out


def _write_demo(out, n_subjects, n_trs, seed):
    """Generate every demo file into ``out`` (a staging folder)."""
    rng = np.random.default_rng(seed)
    story_rng, audio_rng, roi_rng, subj_rng = rng.spawn(4)

    duration = n_trs * TR + AUDIO_EXTRA_S
    wav, words, speech_kind = speak_demo_story(generate_story(duration, story_rng), duration, audio_rng)
    drivers = stimulus_drivers(words, wav, n_trs)
    hrf = canonical_hrf()
    convolved = hrf_convolved_drivers(drivers, hrf)
    weights, isc = planted_weights(roi_rng)
    signal = convolved @ weights.T
    driven = isc > 0
    signal[:, driven] /= signal[:, driven].std(0)
    noise_var = np.where(driven, noise_variance_for_isc(isc, n_subjects), 1.0)

    fmri = {}
    for sid, srng in enumerate(tqdm(subj_rng.spawn(n_subjects), desc="demo subjects", leave=False), 1):
        gain = srng.uniform(0.85, 1.15, signal.shape[1])
        bold = gain * signal + _subject_noise(n_trs, signal.shape[1], noise_var, srng)
        fmri[sid] = ((bold - bold.mean(0)) / bold.std(0)).astype(np.float32)

    atomic_write(out / _data.FMRI_FILE, lambda p: np.save(p, fmri, allow_pickle=True))
    atomic_write(out / _data.ALIGN_FILE, lambda p: write_gentle_csv(words, p))
    atomic_write(out / _data.AUDIO_FILE, lambda p: sf.write(p, wav, SR, subtype="PCM_16", format="WAV"))
    signal_r = np.stack([_columnwise_r(signal, y) for y in fmri.values()])
    if not all(np.isfinite(y).all() for y in fmri.values()) or not np.isfinite(signal_r).all():
        raise ValueError(f"the demo with n_trs={n_trs}, n_subjects={n_subjects} has non-finite responses; "
                         "use more TRs")
    hashes = [file_sha1(out / name) for name in _data.COURSE_FILES]  # marks these bytes as the demo's
    atomic_write(out / _data.TRUTH_FILE, lambda p: np.savez_compressed(
        p, drivers=drivers, driver_names=np.array(DRIVERS), hrf=hrf, weights=weights, signal=signal.astype(np.float32),
        isc_target=isc, noise_var=noise_var, driven=driven, signal_r=signal_r, roi_names=np.array(roi_names()),
        word_topic=words["topic"].to_numpy(str), word_start_true=words["start"].to_numpy(),
        word_end_true=words["end"].to_numpy(), word_text=words["word"].to_numpy(str), speech=speech_kind,
        seed=seed,
        file_names=np.array(_data.COURSE_FILES), file_sha1=np.array(hashes),
    ))


def hrf_convolved_drivers(drivers, hrf):
    """The planted regressors: each driver convolved with the HRF, standardised.

    Parameters
    ----------
    drivers : array of shape (n_trs, n_drivers)
    hrf : array of shape (n_lags,)

    Returns
    -------
    array of shape (n_trs, n_drivers)
        The demo's responses are linear in these columns (no delay needed),
        so an encoding model on them shows the best a linear model can do.
    """
    convolved = np.stack([np.convolve(d, hrf)[:len(d)] for d in np.asarray(drivers, float).T], 1)
    return (convolved - convolved.mean(0)) / convolved.std(0)


def truth_fold_ceiling(truth, fmri, result):
    """Noise-free ceiling on the folds of a result: r of the planted signal with the data.

    This is the quantity :func:`encoding_kit.analysis.stats.noise_ceiling` estimates
    from the data alone (the held-out r of a perfect model).

    Parameters
    ----------
    truth : dict from :func:`load_truth`
    fmri : dict {subject: array (n_trs, 360)}
    result : EncodingResult
        Its held-out blocks are used, so the ceiling is scored exactly as the
        model was (per fold, Fisher-z mean).

    Returns
    -------
    array of shape (n_subjects, 360)
        NaN for ROIs without planted signal.
    """
    from ..encoding.scores import columnwise_r, fisher_mean

    signal = truth["signal"]
    out = []
    blocks = result.fold_blocks()  # the splitter the result records (result.cv)
    for y in fmri.values():
        folds = [columnwise_r(signal[result.test_trs[b]], y[result.test_trs[b]]) for b in blocks]
        out.append(fisher_mean(np.array(folds), axis=0))
    return np.array(out)


def _columnwise_r(a, b):
    a = (a - a.mean(0)) / (a.std(0) + 1e-12)
    b = (b - b.mean(0)) / (b.std(0) + 1e-12)
    return (a * b).mean(0)


def _legacy_demo_files(out):
    """Files of a demo written before hashes were recorded, recognised by regenerating it from its recorded seed.

    Returns
    -------
    set of str
        Course-format files in ``out`` identical, byte for byte, to the demo
        that its ``demo_truth.npz`` describes (empty if it records hashes, or
        cannot be read).
    """
    try:
        with np.load(out / _data.TRUTH_FILE, allow_pickle=False) as z:
            if "file_sha1" in z.files:
                return set()
            seed, n_trs, n_subjects = int(z["seed"]), z["drivers"].shape[0], z["signal_r"].shape[0]
    except Exception:
        return set()
    staging = out / f".demo.{temp_tag()}.tmp"
    try:
        staging.mkdir()
        _write_demo(staging, n_subjects, n_trs, seed)
        return {name for name in _data.COURSE_FILES
                if (out / name).is_file() and file_sha1(out / name) == file_sha1(staging / name)}
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _refuse_to_clobber(out, overwrite):
    """Refuse to write over any file the demo generator did not write itself, whatever ``overwrite`` says.

    Returns
    -------
    dict {file name: SHA-1}
        The demo's course-format files already there (to be replaced).
    """
    present = [name for name in _data.COURSE_FILES if (out / name).exists()]
    if not present:
        return {}
    foreign = sorted(set(present) - _data.demo_written(out))
    if foreign:
        foreign = sorted(set(foreign) - _legacy_demo_files(out))
    if foreign:
        raise FileExistsError(
            f"{out}: holds course files ({', '.join(foreign)}) that the demo generator did not write (their bytes "
            "do not match the hashes in demo_truth.npz); the demo generator never writes over real data. "
            "Choose another folder (out_dir= or KIT_DATA_DIR)."
        )
    if not overwrite:
        raise DemoExists(out)
    return {name: file_sha1(out / name) for name in present}
