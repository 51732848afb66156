"""Reading the time-resolved encoder: attention profiles and what sits at the attention peaks.

* :func:`attention_profile_table`: where inside the window (seconds before
  the end of the predicted TR) each attention head (ROI group) attends,
  against the heads the network cannot predict (the noise reference);
* :func:`attention_peak_events`: in every held-out TR, the frame a head
  attends to most; which words overlap those frames and which phoneme
  classes (CMU dictionary, :func:`encoding_kit.features.phonemes.phone_table`)
  fill them, against all frames of the held-out windows;
* :func:`boundary_alignment_test`: do the peaks fall on word (or phone)
  boundaries more often than the same peaks circularly shifted in time?

Every audio time comes from the story's :class:`~encoding_kit.data.timebase.TimeBase`
(a frame ``s`` seconds before the end of TR ``t`` is at audio time
``onset_offset + (t + 1) * tr - s``), never from a literal TR length.
"""

from __future__ import annotations

import numpy as np

from ..data.timebase import TimeBase, time_base_of_words


def _n_targets(result):
    """Targets the network was fitted to: ROIs (``train_on="group"``) or subjects x ROIs."""
    n_subjects, n_rois = result.r.shape
    return n_rois if result.params.get("train_on") == "group" else n_subjects * n_rois


def attention_labels(fitter, result):
    """The attention heads (ROI groups) of a fitted time-resolved encoder, list of str."""
    return list(fitter.attention_labels(_n_targets(result)))


def attention_profile_table(fitter, result, reference_r=0.02):
    """Where inside the window each attention head (ROI group) attends, against what fitting noise gives.

    As for the lag attention (:func:`encoding_kit.encoding.nonlinear.lag_attention_table`),
    heads whose ROIs the network cannot predict (mean held-out r below
    ``reference_r``) still move their attention; they are the reference, and
    a head's ``shift`` from it is what its response adds.

    Parameters
    ----------
    fitter : TimeResolvedFitter
        Fitted through :func:`evaluate_encoding`.
    result : EncodingResult
        Its held-out scores, ``r`` of shape (n_subjects, n_rois).
    reference_r : float

    Returns
    -------
    DataFrame
        Tidy, one row per head (and the reference) and frame: ``group``,
        ``time_s`` (seconds before the TR end), ``weight``, ``shift``,
        ``n_rois``, ``mean_r``.
    """
    import pandas as pd

    n_rois = result.r.shape[1]
    labels = fitter.group_labels(_n_targets(result))[:n_rois]
    heads = fitter.attention_labels(_n_targets(result))
    weights = fitter.attention()
    times = fitter.sorted_times()
    mean_r = np.nanmean(result.r, axis=0)
    head_r = np.array([np.nanmean(mean_r[labels == g]) for g in heads])
    reference = head_r < reference_r
    baseline = weights[reference].mean(0) if reference.any() else np.full(len(times), 1.0 / len(times))
    named = [(g, weights[i], int((labels == g).sum()), head_r[i]) for i, g in enumerate(heads)]
    if reference.any():
        named.append((f"reference (heads with r < {reference_r:g})", baseline,
                      int(np.isin(labels, np.array(heads)[reference]).sum()), float(head_r[reference].mean())))
    rows = [{"group": g, "time_s": t, "weight": w, "shift": w - b, "n_rois": n, "mean_r": float(r)}
            for g, profile, n, r in named for t, w, b in zip(times, profile, baseline)]
    return pd.DataFrame(rows)


def attention_peaks(profile):
    """The frame each group's attention shifts to most, and the centre of its attention, from :func:`attention_profile_table`.

    Returns
    -------
    DataFrame
        One row per group: ``group``, ``peak_s`` (seconds before the TR end
        of the largest shift from the reference), ``peak_shift``,
        ``peak_weight``, ``centre_s`` (attention-weighted mean of the frame
        times), ``n_rois``, ``mean_r``.
    """
    rows = profile.loc[profile.groupby("group", sort=False)["shift"].idxmax()]
    rows = rows.rename(columns={"time_s": "peak_s", "shift": "peak_shift", "weight": "peak_weight"})
    centre = profile.assign(wt=profile["weight"] * profile["time_s"]).groupby("group", sort=False)
    rows["centre_s"] = (centre["wt"].sum() / centre["weight"].sum()).loc[rows["group"]].to_numpy()
    return rows.reset_index(drop=True)[["group", "peak_s", "peak_shift", "peak_weight", "centre_s", "n_rois",
                                        "mean_r"]]


def _frame_width(times, tr):
    return float(np.min(np.abs(np.diff(np.sort(times))))) if len(times) > 1 else tr


def peak_frame_intervals(fitter, result, label, timebase):
    """The audio interval of the attention peak of ``label`` in every held-out TR.

    Parameters
    ----------
    fitter : TimeResolvedFitter
        Fitted through :func:`evaluate_encoding` (its held-out attention).
    result : EncodingResult
    label : str
        An attention head (ROI group).
    timebase : TimeBase
        The story's (``story.timebase``, or ``phones.attrs["time_base"]``): where each TR ends in audio time.

    Returns
    -------
    DataFrame
        One row per held-out TR: ``tr``, ``peak_s`` (s before its end),
        ``start``, ``end`` (audio time of the peak frame).
    """
    import pandas as pd

    if not isinstance(timebase, TimeBase):
        raise TypeError(f"timebase must be the story's TimeBase (story.timebase), got {timebase!r}")
    names = fitter.attention_labels(_n_targets(result))
    if label not in names:
        raise ValueError(f"no held-out attention for {label!r}; the labels are {names}")
    attention = np.asarray(fitter.test_attention_)[:, :, names.index(label)]  # (n_test, n_frames)
    if len(attention) != len(result.test_trs):
        raise ValueError(f"the fitter kept {len(attention)} held-out TRs, the result has {len(result.test_trs)}; "
                         "use a fresh fitter for each evaluation")
    times = fitter.sorted_times()
    width = _frame_width(times, timebase.tr)
    peak_s = times[attention.argmax(1)]
    centres = timebase.tr_ends(result.test_trs) - peak_s
    return pd.DataFrame({"tr": result.test_trs, "peak_s": peak_s, "start": centres - width / 2,
                         "end": centres + width / 2})


def _phone_seconds(phones, intervals):
    """Seconds of each phone inside the intervals (summed over intervals), and the phones each interval touches.

    ``phones`` are sorted by start; the running maximum of their ends bounds the search, so phones of
    overlapping words (an alignment can have them) are still found.
    """
    starts, ends = phones["start"].to_numpy(float), phones["end"].to_numpy(float)
    reach = np.maximum.accumulate(ends) if len(ends) else ends
    seconds = np.zeros(len(phones))
    touched = []
    for lo, hi in intervals[["start", "end"]].to_numpy(float):
        a, b = np.searchsorted(reach, lo, side="right"), np.searchsorted(starts, hi, side="left")
        seconds[a:b] += np.clip(np.minimum(ends[a:b], hi) - np.maximum(starts[a:b], lo), 0, None)
        touched.append(np.arange(a, b))
    return seconds, touched


def _class_shares(phones, intervals):
    """Share of each phoneme class in the phone time inside ``intervals``, and the share of that time with speech."""
    seconds, touched = _phone_seconds(phones, intervals)
    by_class = _sum_by_key(seconds, phones["phone_class"].to_numpy())
    total, phone_total = (intervals["end"] - intervals["start"]).sum(), sum(by_class.values())
    shares = {k: v / phone_total for k, v in by_class.items()} if phone_total > 0 else {}
    return shares, float(seconds.sum() / total) if total > 0 else np.nan, touched


def _sum_by_key(values, keys):
    """{key: sum of values} over equal keys."""
    out = {}
    for key, value in zip(keys, values):
        out[key] = out.get(key, 0.0) + float(value)
    return out


def attention_peak_events(fitter, result, phones, labels=None, tr=None, onset_offset=None, top_words=5):
    """Which words and phoneme classes sit at each group's attention peaks, against all held-out frames.

    Parameters
    ----------
    fitter : TimeResolvedFitter
        Fitted through :func:`evaluate_encoding` (its held-out attention).
    result : EncodingResult
    phones : DataFrame
        :func:`encoding_kit.features.phonemes.phone_table` of the story.
    labels : list of str, optional
        Groups to describe; default all.
    tr, onset_offset : float, optional
        Time base; ``None`` takes the phones' own (``phones.attrs``, set by
        ``phone_table`` from the words); a different one raises.
    top_words : int

    Returns
    -------
    DataFrame
        One row per group and phoneme class: ``share_at_peaks`` (fraction of
        the phone time inside the peak frames that is of this class),
        ``share_overall`` (the same over every frame of the held-out
        windows), ``enrichment`` (their ratio), ``speech_at_peaks`` (fraction
        of peak-frame time with any phone), ``speech_overall``, ``modal_peak_s``
        (the most frequent peak frame, s before the TR end) and ``top_words``
        (most frequent words at the peaks, with counts).
    """
    import pandas as pd

    timebase = time_base_of_words(phones, tr, onset_offset)
    phones = phones.sort_values("start").reset_index(drop=True)
    labels = labels or fitter.attention_labels(_n_targets(result))
    times = fitter.sorted_times()
    width = _frame_width(times, timebase.tr)
    ends = timebase.tr_ends(result.test_trs)[:, None] - times[None, :]
    every = pd.DataFrame({"start": (ends - width / 2).ravel(), "end": (ends + width / 2).ravel()})
    overall, speech_overall, _ = _class_shares(phones, every)
    rows = []
    for label in labels:
        peaks = peak_frame_intervals(fitter, result, label, timebase)
        at_peaks, speech, touched = _class_shares(phones, peaks)
        words = phones["word"].to_numpy()
        hits = pd.Series([w.lower() for idx in touched for w in dict.fromkeys(words[idx])], dtype=object)
        common = hits.value_counts().head(top_words)
        for cls in sorted(set(phones["phone_class"])):
            share, base = at_peaks.get(cls, 0.0), overall.get(cls, 0.0)
            rows.append({"group": label, "phone_class": cls, "share_at_peaks": share, "share_overall": base,
                         "enrichment": share / base if base > 0 else np.nan, "speech_at_peaks": speech,
                         "speech_overall": speech_overall, "modal_peak_s": float(peaks["peak_s"].mode().iloc[0]),
                         "top_words": ", ".join(f"{w} ({n})" for w, n in common.items())})
    return pd.DataFrame(rows)
