"""Do the attention peaks of the time-resolved encoder fall on word or phoneme-class boundaries?

Seed 001 claimed that the attention of a speech encoder peaks at word
boundaries. On the kit's held-out attention
(:func:`~encoding_kit.analysis.attention_tables.peak_frame_intervals`) the
question is a count:

* **observed**: the share of held-out TRs whose peak frame (a sub-TR stretch
  of audio, e.g. 0.3 s) contains at least one boundary;
* **null**: the same share after circularly shifting the sequence of peak
  frames over the held-out TRs by ``k`` TRs (the peak frame chosen for TR
  ``i`` is placed, at the same position before its TR's end, in TR
  ``i + k``), for every shift ``min_shift <= k <= n - min_shift``.

A shift keeps how often each frame position is chosen and how the choices
follow each other, and it keeps the audio with its boundaries; it only
breaks the link between a TR's peak and that TR's audio. If the peaks land
on boundaries because of where the boundaries are, the observed share beats
most shifts. ``p = (1 + #{null >= observed}) / (1 + n_null)``.

Boundaries: ``"word"``: the onset and the offset of every word; ``"phone_class"``:
the onset of every phone whose phoneme class differs from the previous
phone's (:data:`~encoding_kit.features.phonemes.PHONE_CLASSES`), word onsets
included when the class changes there. A frame filled with speech contains
more boundaries than a frame of silence, so the table also gives the share
of peak frames with any speech, observed and shifted: a head that prefers
speech to pauses raises both.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from ..core.validation import check_int
from ..data.timebase import time_base_of_words
from .attention_tables import attention_labels, peak_frame_intervals
from .stats import fdr_bh

BOUNDARY_KINDS = ("word", "phone_class")


def boundary_times(phones, kind="word"):
    """Boundary times (s, audio time) of a phone table, sorted float array.

    Parameters
    ----------
    phones : DataFrame
        :func:`encoding_kit.features.phonemes.phone_table` (``word_index``, ``phone_class``, ``start``, ``end``).
    kind : {"word", "phone_class"}
        See the module docstring.

    Returns
    -------
    float array of shape (n_boundaries,)
    """
    if kind not in BOUNDARY_KINDS:
        raise ValueError(f"kind must be one of {BOUNDARY_KINDS}, got {kind!r}")
    phones = phones.sort_values("start", kind="stable")
    if kind == "word":
        words = phones.groupby("word_index")
        times = np.concatenate([words["start"].min().to_numpy(float), words["end"].max().to_numpy(float)])
    else:
        classes = phones["phone_class"].to_numpy()
        changes = np.r_[True, classes[1:] != classes[:-1]]
        times = phones["start"].to_numpy(float)[changes]
    return np.unique(times)


def _contains(starts, ends, points):
    """For each interval ``[start, end)``: does it contain one of the sorted ``points``? bool array."""
    return np.searchsorted(points, ends, side="left") > np.searchsorted(points, starts, side="left")


def _in_speech(starts, ends, phones):
    """For each interval: does it overlap any phone? bool array."""
    order = np.argsort(phones["start"].to_numpy(float), kind="stable")
    p_start = phones["start"].to_numpy(float)[order]
    reach = np.maximum.accumulate(phones["end"].to_numpy(float)[order])
    first_reaching = np.searchsorted(reach, starts, side="right")  # first phone whose running end passes start
    before_end = np.searchsorted(p_start, ends, side="left")  # phones starting before the interval's end
    return before_end > first_reaching


def shifted_intervals(peaks, timebase, shift):
    """The peak frames of :func:`peak_frame_intervals` with the sequence of peaks circularly shifted by ``shift`` TRs.

    The peak chosen for held-out TR ``i`` (its position ``peak_s`` before its TR's end, and its width) is placed
    in held-out TR ``i + shift`` (modulo the number of held-out TRs); ``shift=0`` gives the observed frames.

    Returns
    -------
    starts, ends : float arrays of shape (n_peaks,)
        Audio time (s).
    """
    half = np.roll((peaks["end"] - peaks["start"]).to_numpy(float) / 2, shift)
    centres = timebase.tr_ends(peaks["tr"].to_numpy()) - np.roll(peaks["peak_s"].to_numpy(float), shift)
    return centres - half, centres + half


def shifts(n_peaks, min_shift):
    """The circular shifts of the null: ``min_shift .. n_peaks - min_shift`` (int array)."""
    check_int(min_shift, "min_shift", minimum=1)
    if n_peaks < 2 * min_shift:
        raise ValueError(f"min_shift={min_shift} needs at least {2 * min_shift} held-out TRs for one shift; "
                         f"there are {n_peaks}")
    return np.arange(min_shift, n_peaks - min_shift + 1)


def shifted_shares(peaks, timebase, hit, min_shift=10):
    """Share of peak frames for which ``hit(starts, ends)`` holds, observed and for every circular shift.

    Parameters
    ----------
    peaks : DataFrame
        :func:`~encoding_kit.analysis.attention_tables.peak_frame_intervals` (``tr``, ``peak_s``, ``start``, ``end``).
    timebase : TimeBase
    hit : callable (starts, ends) -> bool array
        E.g. "contains a boundary".
    min_shift : int
        Smallest shift in TRs (and smallest distance from a full turn).

    Returns
    -------
    observed : float
    null : float array of shape (n_shifts,)
    """
    null = np.array([hit(*shifted_intervals(peaks, timebase, k)).mean() for k in shifts(len(peaks), min_shift)])
    return float(hit(*shifted_intervals(peaks, timebase, 0)).mean()), null


def boundary_alignment_test(fitter, result, phones, labels=None, kinds=BOUNDARY_KINDS, min_shift=10, tr=None,
                            onset_offset=None):
    """Do each head's held-out attention peaks fall on boundaries more often than shifted peaks do?

    Parameters
    ----------
    fitter : TimeResolvedFitter
        Fitted through :func:`evaluate_encoding` (its held-out attention).
    result : EncodingResult
    phones : DataFrame
        :func:`encoding_kit.features.phonemes.phone_table` of the story (carries its time base).
    labels : list of str, optional
        Heads (ROI groups) to test; default all.
    kinds : sequence of {"word", "phone_class"}
    min_shift : int
        Smallest circular shift, in held-out TRs (beyond the attention's autocorrelation).
    tr, onset_offset : float, optional
        Time base; ``None`` takes the phones' own.

    Returns
    -------
    DataFrame
        One row per head and kind: ``group``, ``boundary``, ``n_peaks``,
        ``observed`` (share of peak frames containing a boundary),
        ``null_mean``, ``null_q95`` (over ``n_shifts`` shifts), ``p``,
        ``p_fdr`` (Benjamini-Hochberg over the rows), ``speech_observed`` /
        ``speech_null_mean`` (share of peak frames overlapping any phone).
    """
    timebase = time_base_of_words(phones, tr, onset_offset)
    if not len(kinds) or set(kinds) - set(BOUNDARY_KINDS):
        raise ValueError(f"kinds must be a non-empty subset of {BOUNDARY_KINDS}, got {list(kinds)}")
    labels = labels or attention_labels(fitter, result)
    rows = []
    for label in labels:
        peaks = peak_frame_intervals(fitter, result, label, timebase)
        speech, speech_null = shifted_shares(peaks, timebase, functools.partial(_in_speech, phones=phones), min_shift)
        for kind in kinds:
            points = boundary_times(phones, kind)
            observed, null = shifted_shares(peaks, timebase, functools.partial(_contains, points=points), min_shift)
            rows.append({"group": label, "boundary": kind, "n_peaks": len(peaks), "observed": observed,
                         "null_mean": float(null.mean()), "null_q95": float(np.quantile(null, 0.95)),
                         "n_shifts": len(null), "p": (1 + int((null >= observed - 1e-12).sum())) / (1 + len(null)),
                         "speech_observed": speech, "speech_null_mean": float(speech_null.mean())})
    table = pd.DataFrame(rows)
    table["p_fdr"] = fdr_bh(table["p"].to_numpy())
    return table


def boundary_answer(table, alpha=0.05):
    """One sentence per row of :func:`boundary_alignment_test`, with the numbers and the answer."""
    lines = []
    for _, row in table.iterrows():
        more = row["observed"] > row["null_mean"]
        answer = ("yes" if row["p_fdr"] < alpha and more else "no")
        lines.append(
            f"{row['group']}, {row['boundary'].replace('_', '-')} boundaries: {row['observed']:.1%} of "
            f"{row['n_peaks']} peak frames contain one, against {row['null_mean']:.1%} for the same peaks shifted "
            f"(95th percentile {row['null_q95']:.1%} over {row['n_shifts']} shifts; p = {row['p']:.3f}, "
            f"FDR-adjusted {row['p_fdr']:.3f}); peak frames with speech {row['speech_observed']:.1%} vs "
            f"{row['speech_null_mean']:.1%} shifted -> more often on boundaries than shifted peaks: {answer}")
    return "\n".join(lines)
