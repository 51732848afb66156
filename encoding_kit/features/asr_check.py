"""The time base checked end to end by speech recognition.

The audio window the kit assigns to TR ``k`` (it ends at the end of TR
``k`` and reaches back ``window_trs`` TRs, :func:`encoding_kit.data.timebase.audio_window_bounds`)
is decoded by a real Whisper. If words and audio share one time base, the
transcript contains the words the alignment puts in the window's middle TRs,
and none of the words the alignment puts in the TRs just after it (the model
must never hear the future) or well before it. A shift of the audio against
the words by one or two TRs moves words of the neighbouring TRs into the
transcript.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd

from ..data.timebase import TR, audio_window_bounds
from .audio import windows_batch
from .whisper_ct2 import transcribe

MIN_LETTERS = 4
"""Only words of at least this many letters are checked (short words are often merged or dropped by ASR)."""


def _normal(word):
    return re.sub(r"[^a-z']", "", str(word).lower().replace("’", "'"))


def window_transcripts(wav, sr, ends, window_trs, model, processor, tr=TR, onset_offset=0.0, memo=None):
    """Transcribe the kit's audio window of each TR in ``ends``.

    Parameters
    ----------
    wav : float array of shape (n_samples,)
    sr : int
    ends : list of int
        TRs whose windows are decoded.
    window_trs : int
    model, processor
        A ``WhisperForConditionalGeneration`` and its ``WhisperProcessor``
        (:func:`encoding_kit.features.whisper_ct2.load_whisper_tiny_en`).
    tr, onset_offset : float
    memo : dict, optional
        Transcripts by window content, filled and reused (identical windows are decoded once).

    Returns
    -------
    list of str, one per TR in ``ends``
    """
    starts, stops = audio_window_bounds(max(ends) + 1, sr, tr, window_trs, onset_offset)
    batch = windows_batch(np.asarray(wav, np.float32), sr, starts[ends], stops[ends])
    memo = {} if memo is None else memo
    keys = [hashlib.sha1(window.tobytes()).hexdigest() for window in batch]
    todo = {key: window for key, window in zip(keys, batch) if key not in memo}
    if todo:
        memo.update(zip(todo, transcribe(model, processor, list(todo.values()), sr)))
    return [memo[key] for key in keys]


def word_hits(words, ends, transcripts, window_trs, min_letters=MIN_LETTERS):
    """Fraction of the aligned words found in each window's transcript, by where the alignment puts them.

    Parameters
    ----------
    words : DataFrame with ``word`` and ``tr`` (from :func:`encoding_kit.data.course_files.load_align`)
    ends : list of int
    transcripts : list of str
    window_trs : int
        At least 3 (the middle is the window less its first and last TR).

    Returns
    -------
    DataFrame, one row per window: ``end``, ``middle`` (words in TRs
    ``end - window_trs + 2 .. end - 1``), ``after`` (the two TRs after the
    window) and ``before`` (the two TRs before it); NaN where a group has no
    word.
    """
    if window_trs < 3:
        raise ValueError(f"window_trs must be at least 3 to have middle TRs, got {window_trs}")
    long = words[words["word"].map(lambda w: len(_normal(w).replace("'", "")) >= min_letters)]
    rows = []
    for end, text in zip(ends, transcripts):
        heard = {_normal(w) for w in text.split()}
        first = end - window_trs + 1
        groups = {"middle": (first + 1, end - 1), "after": (end + 1, end + 2), "before": (first - 2, first - 1)}
        row = {"end": end}
        for group, (lo, hi) in groups.items():
            inside = long[(long["tr"] >= lo) & (long["tr"] <= hi)]["word"].map(_normal)
            row[group] = inside.isin(heard).mean() if len(inside) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
