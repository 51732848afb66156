"""Loading the course files: ROI responses, word alignment and story audio.

Every loader checks its file at the boundary and fails with a message that
names the file, what was expected and what was found. Times are put on the
kit's one time base (see :mod:`encoding_kit.data.timebase`).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.runtime import environment
from ..core.storage import PROJECT_ROOT, file_sha1
from .checks import (  # noqa: F401  (DataFileError is re-exported: part of this module's API)
    DataFileError,
    check_alignment_fits_scan,
    check_field_counts,
    check_onsets_order,
    check_times,
    check_words,
    wav_declared_frames,
)
from .timebase import TIME_BASE_ATTR, TR, TimeBase

N_ROIS = 360
AUDIO_SR = 16000
FMRI_FILE = "21styear_all_subs_rois.npy"
ALIGN_FILE = "21styear_align.csv"
AUDIO_FILE = "21styear_audio.wav"
TRUTH_FILE = "demo_truth.npz"
COURSE_FILES = (FMRI_FILE, ALIGN_FILE, AUDIO_FILE)
DATA_ENV = "KIT_DATA_DIR"
# Typical spoken word duration (s), used only to place unaligned words that
# have an aligned neighbour on one side only (story start or end).
_WORD_SECONDS = 0.3








def demo_written(folder):
    """Course-format files in ``folder`` that the demo generator wrote, as recorded in its truth file.

    The generator records the SHA-1 of each file it writes in
    ``demo_truth.npz``; a file counts as demo only when its bytes still match.
    A course file copied over a demo (or a truth file left behind) does not.

    Returns
    -------
    set of str
        File names (of :data:`COURSE_FILES`) present and written by the demo.
    """
    folder = Path(folder)
    truth = folder / TRUTH_FILE
    if not truth.is_file():
        return set()
    try:
        with np.load(truth, allow_pickle=False) as z:
            recorded = dict(zip(z["file_names"].tolist(), z["file_sha1"].tolist())) if "file_sha1" in z.files else {}
    except Exception:  # a corrupt truth file proves nothing about the other files
        return set()
    return {name for name, sha in recorded.items()
            if name in COURSE_FILES and (folder / name).is_file() and file_sha1(folder / name) == sha}


def data_dir(path=None):
    """Resolve the data folder: argument, then ``$KIT_DATA_DIR``, then ``data/``.

    Returns
    -------
    pathlib.Path
    """
    folder = Path(path) if path is not None else Path(environment(DATA_ENV) or PROJECT_ROOT / "data")
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder}: is a file, expected the data folder that holds {', '.join(COURSE_FILES)} "
                                 f"(--data-dir, data_dir= or ${DATA_ENV})")
    return folder


def data_source(path=None):
    """Say what a data folder holds.

    Returns
    -------
    str
        ``"course"`` (real course files), ``"demo"`` (all three files written
        by :func:`make_demo_dataset`, as their recorded hashes show), or
        ``"missing"``. Decided from the files' bytes, never from the presence
        of ``demo_truth.npz`` alone: course files copied into a former demo
        folder are course data.
    """
    folder = data_dir(path)
    if not all((folder / name).exists() for name in COURSE_FILES):
        return "missing"
    written = demo_written(folder)
    if written == set(COURSE_FILES):
        return "demo"
    if written or (folder / TRUTH_FILE).exists():
        warnings.warn(f"{folder}: {TRUTH_FILE} is there but {', '.join(sorted(set(COURSE_FILES) - written))} "
                      "are not the files the demo wrote; treating the folder as course data (no planted truth). A demo "
                      "made by an older kit: `python -m encoding_kit demo --overwrite` rewrites it (and only it)",
                      stacklevel=2)
    return "course"


def _resolve(filename, path, folder):
    file = Path(path) if path is not None else data_dir(folder) / filename
    if not file.exists():
        raise FileNotFoundError(
            f"{file}: file not found. Put the course file '{filename}' in the data folder "
            f"({data_dir(folder)}; set {DATA_ENV} or pass data_dir= to use another), run "
            "`python -m encoding_kit fetch` for the public files, or generate the offline demo "
            "with `python -m encoding_kit demo`."
        )
    return file


def _subject_id(key, file):
    """The subject number a key means: ``3``, ``3.0``, ``'sub-003'``, ``'sub-03_run-1'`` (the number after ``sub``).

    A key with several numbers and no ``sub`` prefix, a fractional float and
    a bool are refused, naming the file and the key.
    """
    if isinstance(key, (bool, np.bool_)):
        raise DataFileError(f"{file}: subject key {key!r} is a bool; expected ids like 1 or 'sub-001'")
    if isinstance(key, (int, np.integer)):
        return int(key)
    if isinstance(key, (float, np.floating)):
        if np.isfinite(key) and float(key).is_integer():
            return int(key)
        raise DataFileError(f"{file}: subject key {key!r} is not a whole number; expected ids like 1 or 'sub-001'")
    text = str(key)
    labelled = re.search(r"sub(?:ject)?[-_ ]?(\d+)", text, flags=re.IGNORECASE)
    if labelled:
        return int(labelled.group(1))
    digits = re.findall(r"\d+", text)
    if not digits:
        raise DataFileError(f"{file}: subject key {key!r} has no number in it; expected ids like 1 or 'sub-001'")
    if len(digits) > 1:
        raise DataFileError(f"{file}: subject key {key!r} holds several numbers ({', '.join(digits)}) and no 'sub-' "
                            "label, so its subject is ambiguous; expected ids like 1 or 'sub-001'")
    return int(digits[0])


def load_fmri(path=None, data_dir=None, n_rois=N_ROIS):
    """Load the ROI responses of every subject.

    Parameters
    ----------
    path : str or Path, optional
        The ``.npy`` file; default ``<data_dir>/21styear_all_subs_rois.npy``.
    data_dir : str or Path, optional
        Data folder (see :func:`data_dir`).
    n_rois : int
        Expected number of ROIs (360 HCP-MMP1 areas).

    Returns
    -------
    fmri : dict {int: float32 array of shape (n_trs, n_rois)}
        Keyed by integer subject id, sorted by id; all arrays have the same
        number of TRs.
    """
    file = _resolve(FMRI_FILE, path, data_dir)
    try:
        raw = np.load(file, allow_pickle=True)
    except Exception as exc:  # corrupt or not a .npy file
        raise DataFileError(f"{file}: could not be read as a .npy file ({exc})") from exc
    if isinstance(raw, np.ndarray) and raw.dtype == object and raw.shape == ():
        raw = raw.item()
    if not isinstance(raw, dict):
        found = f"an array of shape {raw.shape}" if isinstance(raw, np.ndarray) else type(raw).__name__
        raise DataFileError(
            f"{file}: expected a pickled dict {{subject id: array (n_trs, {n_rois})}}, found {found}"
        )
    if not raw:
        raise DataFileError(f"{file}: the subject dict is empty")
    fmri, keys = {}, {}
    for key, value in raw.items():
        try:
            arr = np.asarray(value)
        except ValueError as exc:  # ragged nested lists
            raise DataFileError(f"{file}: subject {key!r} is not an array (n_trs, {n_rois}) ({exc})") from None
        if arr.dtype.kind not in "biuf":
            raise DataFileError(f"{file}: subject {key!r} holds {arr.dtype} values ({type(arr.flat[0]).__name__ if arr.size else 'empty'}), "
                                f"expected numbers in an array (n_trs, {n_rois})")
        if arr.ndim == 2 and arr.dtype.kind == "f" and arr.dtype.itemsize > 4:
            too_big = np.isfinite(arr) & (np.abs(arr) > np.finfo(np.float32).max)
            if too_big.any():
                raise DataFileError(f"{file}: subject {key!r} has {int(too_big.sum())} values beyond the float32 range "
                                    f"(largest {np.abs(arr[too_big]).max():.3g}); rescale the data")
        arr = np.asarray(arr, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[1] != n_rois:
            raise DataFileError(
                f"{file}: subject {key!r} should be an array (n_trs, {n_rois}), found shape {arr.shape}"
            )
        bad = ~np.isfinite(arr)
        if bad.any():
            raise DataFileError(
                f"{file}: subject {key!r} has {int(bad.sum())} NaN/inf values "
                f"(in {int(bad.any(0).sum())} ROIs); clean or drop this subject"
            )
        sid = _subject_id(key, file)
        if sid in keys:
            raise DataFileError(f"{file}: subject keys {keys[sid]!r} and {key!r} both mean subject {sid}; "
                                "keep one of them")
        keys[sid], fmri[sid] = key, arr
    n_trs = {sid: a.shape[0] for sid, a in fmri.items()}
    if len(set(n_trs.values())) > 1:
        raise DataFileError(f"{file}: subjects have unequal TR counts {n_trs}; all must share the story's TRs")
    return dict(sorted(fmri.items()))


def select_subjects(fmri, subjects):
    """The first ``subjects`` subjects (an int >= 1), these ids (a list), or all (``None``).

    Returns
    -------
    dict {int: array (n_trs, n_rois)}
    """
    if subjects is None:
        return fmri
    if isinstance(subjects, (bool, np.bool_)):
        raise TypeError(f"subjects must be how many subjects to keep (an int >= 1), a list of ids or None (all), "
                        f"found {subjects!r}")
    if isinstance(subjects, (int, np.integer)):
        if not 1 <= subjects:
            raise ValueError(f"subjects must be >= 1 (how many to keep) or a list of ids, found {subjects}")
        return dict(list(fmri.items())[:subjects])
    wanted = [subjects] if isinstance(subjects, str) else list(subjects)
    if not wanted:
        raise ValueError("subjects is an empty list; pass None for all subjects")
    unknown = [s for s in wanted if s not in fmri]
    if unknown:
        raise KeyError(f"subjects {unknown} are not in the data; the ids there are {list(fmri)}")
    return {s: fmri[s] for s in wanted}


def load_align(path=None, data_dir=None, tr=TR, onset_offset=0.0, timebase=None):
    """Load a headerless Gentle alignment and put words on the TR grid.

    Parameters
    ----------
    path : str or Path, optional
        Default ``<data_dir>/21styear_align.csv``. Columns: word as spoken,
        lowercase word, start (s), end (s); unaligned words have empty times.
    data_dir : str or Path, optional
    tr, onset_offset : float
        Time base (see :mod:`encoding_kit.data.timebase`), used when ``timebase`` is not given.
    timebase : TimeBase, optional
        The dataset's time base as one value (what :func:`~encoding_kit.data.story.load_story` passes).

    Returns
    -------
    words : DataFrame with n_words rows
        Columns ``word``, ``word_lower``, ``start``, ``end`` (s, audio time),
        ``aligned`` (bool: Gentle gave times) and ``tr`` (0-based TR of the
        onset). Unaligned words keep their place in the story and get times
        spread evenly over the gap between their aligned neighbours.
        ``words.attrs["time_base"]`` records the :class:`TimeBase` of the
        ``tr`` column; pooling the words later uses it (and refuses another).
    """
    timebase = timebase if timebase is not None else TimeBase(tr, onset_offset)
    file = _resolve(ALIGN_FILE, path, data_dir)
    try:
        table = pd.read_csv(file, header=None, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.EmptyDataError as exc:
        raise DataFileError(f"{file}: the alignment file is empty") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataFileError(f"{file}: not a readable Gentle alignment CSV (UTF-8 text, 4 comma-separated columns: "
                            f"word, lowercase word, start, end); {type(exc).__name__}: {exc}") from exc
    if table.shape[1] != 4:
        raise DataFileError(
            f"{file}: expected 4 columns (word, lowercase word, start, end) with no header, "
            f"found {table.shape[1]} columns; first row: {list(table.iloc[0])}"
        )
    table.columns = ["word", "word_lower", "start", "end"]
    check_field_counts(file)
    check_words(table, file)
    times = {}
    for col in ("start", "end"):
        values = pd.to_numeric(table[col].str.strip().replace("", np.nan), errors="coerce")
        bad = values.isna() & (table[col].str.strip() != "")
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataFileError(
                f"{file}: column '{col}' must hold seconds, found {table[col].iloc[row]!r} on line {row + 1}"
            )
        times[col] = values.to_numpy(float)
    words = pd.DataFrame({"word": table["word"].str.strip()})
    lower = table["word_lower"].str.strip()
    # Gentle leaves the lowercase column empty for unaligned rows and writes
    # <unk> for out-of-vocabulary words; both fall back to the spoken word.
    words["word_lower"] = lower.where((lower != "") & (lower != "<unk>"), words["word"].str.lower())
    words["aligned"] = ~(np.isnan(times["start"]) | np.isnan(times["end"]))
    check_times(times, words["aligned"].to_numpy(), file)
    check_onsets_order(times["start"][words["aligned"].to_numpy()], file, np.flatnonzero(words["aligned"]))
    words["start"], words["end"] = interpolate_unaligned(times["start"], times["end"], words["aligned"].to_numpy())
    words["tr"] = timebase.word_trs(words["start"].to_numpy())
    words = words[["word", "word_lower", "start", "end", "aligned", "tr"]]
    words.attrs[TIME_BASE_ATTR] = timebase
    return words


def interpolate_unaligned(start, end, aligned):
    """Spread each run of unaligned words evenly over the gap around it."""
    start, end = start.copy(), end.copy()
    n = len(aligned)
    i = 0
    while i < n:
        if aligned[i]:
            i += 1
            continue
        j = i
        while j < n and not aligned[j]:
            j += 1
        run = j - i
        left = end[i - 1] if i > 0 else None
        right = start[j] if j < n else None
        if left is None:
            left = max(0.0, right - run * _WORD_SECONDS)
        if right is None:
            right = left + run * _WORD_SECONDS
        left = min(left, right)  # binary noise can put the previous end after the next start
        step = (right - left) / run
        start[i:j] = left + step * np.arange(run)
        end[i:j] = start[i:j] + step
        i = j
    return start, end


def load_audio(path=None, data_dir=None, sr=AUDIO_SR, max_seconds=None):
    """Load the story audio as mono at ``sr`` Hz.

    Parameters
    ----------
    path : str or Path, optional
        Default ``<data_dir>/21styear_audio.wav``.
    data_dir : str or Path, optional
    sr : int
        Target sample rate; a file at another rate is resampled with a warning.
    max_seconds : float, optional
        Read only (at least) the first ``max_seconds`` (a run on the first TRs); the samples are those of the
        whole file's start. A file at another rate is read whole (resampling near the cut would differ).

    Returns
    -------
    wav : float32 array of shape (n_samples,)
        Sample 0 is audio time 0.
    sr : int
    """
    import soundfile as sf

    file = _resolve(AUDIO_FILE, path, data_dir)
    try:
        info = sf.info(file)
        frames = -1  # all
        if max_seconds is not None and info.samplerate == sr:
            frames = min(info.frames, int(np.ceil(float(max_seconds) * sr)) + 1)
        wav, file_sr = sf.read(file, dtype="float32", always_2d=True, frames=frames)
    except Exception as exc:
        raise DataFileError(f"{file}: could not be read as audio ({exc})") from exc
    declared = wav_declared_frames(file)
    held = len(wav) if frames == -1 else info.frames
    if declared is not None and declared > held:
        raise DataFileError(f"{file}: truncated: the WAV header announces {declared / file_sr:.2f} s but the file holds "
                            f"{held / file_sr:.2f} s; download or copy it again")
    if len(wav) == 0:
        raise DataFileError(f"{file}: the audio file holds no samples")
    bad = ~np.isfinite(wav)
    if bad.any():
        first = int(np.flatnonzero(bad.any(axis=1))[0])
        raise DataFileError(f"{file}: {int(bad.sum())} audio samples are NaN or infinite (the first at "
                            f"{first / file_sr:.2f} s); expected finite samples; export the audio again")
    wav = wav[:, 0] if wav.shape[1] == 1 else wav.mean(axis=1)  # mono: the samples themselves (no reduction pass)
    if file_sr != sr:
        import librosa

        warnings.warn(f"{file}: sample rate is {file_sr} Hz, expected {sr} Hz; resampling to {sr} Hz", stacklevel=2)
        wav = librosa.resample(wav, orig_sr=file_sr, target_sr=sr)
    return wav.astype(np.float32), sr


_resolve_data_dir = data_dir  # load_truth's argument is called data_dir too


def load_truth(data_dir=None):
    """Load the demo's planted truth ``demo_truth.npz`` as a dict of arrays (see
    :func:`encoding_kit.demo.generate.make_demo_dataset`)."""
    file = _resolve_data_dir(data_dir) / TRUTH_FILE
    if not file.exists():
        raise FileNotFoundError(f"{file}: no demo ground truth here (real course data have none)")
    try:
        with np.load(file, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:
        raise DataFileError(f"{file}: the demo ground truth could not be read ({type(exc).__name__}: {exc}); "
                            "regenerate the demo with `python -m encoding_kit demo --overwrite`") from exc
