"""Building blocks of notebook 09: the time-resolved encoder against ridge, attention and phoneme figures.

Each function is one notebook step, so the notebook stays a few lines per
cell; the methods live in :mod:`.time_resolved`, :mod:`.attention_tables`,
:mod:`.phoneme_analysis` and :mod:`.layer_alignment`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..encoding.cv import DEFAULT_DELAYS
from ..encoding.evaluate import evaluate_encoding
from ..encoding.time_resolved import TimeResolvedFitter
from ..features.audio_frames import MOVED_FRAMES, extract_frame_sequences, frame_times
from ..features.extraction_run import accepts_moved_keywords
from ..features.models import load_model
from .roi_analysis import finish_figure


@accepts_moved_keywords(*MOVED_FRAMES)
def frame_sequences(story, model, layer, frames_per_tr=5, window_trs=2, whisper_input="window", run=None):
    """Sub-TR frames of one layer for the story, array of shape (n_trs, frames_per_tr, dim) (stand-in offline).

    The windows end at the ends of the story's TRs (``story.timebase``); ``whisper_input`` and ``run`` (an
    :class:`~encoding_kit.features.extraction_run.ExtractionRun`) as in
    :func:`~encoding_kit.features.audio_frames.extract_frame_sequences`.
    """
    loaded = load_model(model, allow_standin=True) if isinstance(model, str) else model
    return extract_frame_sequences(story.wav, story.sr, story.n_trs, loaded, layers=[layer],
                                   frames_per_tr=frames_per_tr, window_trs=window_trs, timebase=story.timebase,
                                   whisper_input=whisper_input, run=run)[layer]


def compare_time_resolved(frames, story, delays=DEFAULT_DELAYS, pca=64, train_on="group", **fitter_kwargs):
    """Ridge and the time-resolved encoder on the same frames and the same folds.

    Three models, all through :func:`evaluate_encoding` (same outer gapped
    folds, in-fold standardisation, scored on every subject):

    * ``ridge (frames)``: ridge on the whole frame sequence of each TR
      (flattened; in-fold PCA to ``pca`` components);
    * ``ridge (mean of frames)``: ridge on the frames averaged per TR (the
      kit's usual pooled features of this window);
    * ``time-resolved``: :class:`TimeResolvedFitter` on the frame sequence.

    Parameters
    ----------
    frames : array of shape (n_trs, frames_per_tr, dim)
    story : Story
    delays : sequence of int
    pca : int
    train_on : {"group", "subject"}
        ``"group"`` fits the mean of the subjects and scores every subject
        (see :func:`evaluate_encoding`).
    **fitter_kwargs
        Settings of :class:`TimeResolvedFitter` (``hidden``, ``max_epochs``, ...).

    Returns
    -------
    results : dict {model: EncodingResult}
    fitter : TimeResolvedFitter
        Fitted (its attention is read by :mod:`.attention_tables`).
    table : DataFrame
        ``summary()`` rows of every model (scope, mean_r, std_r, ...), with ``model``.
    """
    frames = np.asarray(frames, np.float32)
    if frames.ndim != 3 or len(frames) != story.n_trs:
        raise ValueError(f"frames must be (n_trs={story.n_trs}, frames_per_tr, dim) as frame_sequences returns, "
                         f"found shape {frames.shape}")
    flat = frames.reshape(len(frames), -1)
    fitter = TimeResolvedFitter(frame_times(delays, frames.shape[1], tr=story.timebase.tr), **fitter_kwargs)
    common = dict(delays=delays, train_on=train_on)
    results = {"ridge (frames)": evaluate_encoding(flat, story.fmri, pca=pca, **common),
               "ridge (mean of frames)": evaluate_encoding(frames.mean(1), story.fmri, pca=pca, **common),
               "time-resolved": evaluate_encoding(flat, story.fmri, fitter=fitter, **common)}
    table = pd.concat([r.summary().assign(model=k) for k, r in results.items()], ignore_index=True)
    return results, fitter, table


def plot_attention_profile(profile, out=None, min_r=None, title="Attention over the window, per ROI group"):
    """Mean attention weight against seconds before the TR end, one line per group (the reference dashed).

    Parameters
    ----------
    profile : DataFrame
        :func:`encoding_kit.analysis.attention_tables.attention_profile_table`.
    min_r : float, optional
        Draw only groups whose mean r reaches this (and the reference).
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8))
    for group, part in profile.groupby("group", sort=False):
        reference = group.startswith("reference")
        if min_r is not None and not reference and part["mean_r"].iloc[0] < min_r:
            continue
        ax.plot(part["time_s"], part["weight"], "k--" if reference else "-", marker=None if reference else "o",
                markersize=3, label=f"{group} (r {part['mean_r'].iloc[0]:.3f})")
    ax.invert_xaxis()  # time runs left to right: the oldest frame (most seconds before the TR end) first
    ax.set_xlabel("seconds before the end of the predicted TR")
    ax.set_ylabel("mean attention weight")
    return finish_figure(fig, ax, title, out)


def enrichment_table(events):
    """Wide view of :func:`attention_peak_events`: groups x classes of enrichment, with speech share and top words."""
    wide = events.pivot(index="group", columns="phone_class", values="enrichment").round(2)
    first = events.groupby("group", sort=False)[["modal_peak_s", "speech_at_peaks", "speech_overall",
                                                 "top_words"]].first()
    return first.round(3).join(wide).loc[list(dict.fromkeys(events["group"]))]


def attention_centre_text(peaks, expected=(4.0, 6.0), min_r=0.02):
    """One sentence per predicted attention head: where its attention is centred, against the reference and the HRF.

    Parameters
    ----------
    peaks : DataFrame
        :func:`encoding_kit.analysis.attention_tables.attention_peaks`.
    expected : (float, float)
        Seconds before the TR end where a response to sound should be read (the HRF's peak, about 5 s after it).
    min_r : float
        Heads whose ROIs' mean r is below this are described by the reference line only (the ``reference_r`` of
        :func:`~encoding_kit.analysis.attention_tables.attention_profile_table`).

    Returns
    -------
    str
    """
    reference = peaks[peaks["group"].str.startswith("reference")]
    ref = f"{reference['centre_s'].iloc[0]:.2f} s" if len(reference) else "none (every head predicts its ROIs)"
    lines = [f"reference heads (ROIs the network cannot predict): attention centre {ref}"]
    for _, row in peaks.drop(reference.index).query("mean_r >= @min_r").iterrows():
        inside = expected[0] <= row["centre_s"] <= expected[1]
        lines.append(f"{row['group']} (r {row['mean_r']:.3f}): centre {row['centre_s']:.2f} s before the TR end, "
                     f"largest shift from the reference at {row['peak_s']:.2f} s -> centre within the "
                     f"{expected[0]:g}-{expected[1]:g} s the HRF predicts: {'yes' if inside else 'no'}")
    return "\n".join(lines)


def model_comparison_text(comparison, model="time-resolved"):
    """One sentence per ROI group: does ``model`` beat the best ridge on the same frames? From ``compare_time_resolved``'s table."""
    wide = comparison.pivot(index="scope", columns="model", values="mean_r")
    ridges = [c for c in wide.columns if c != model]
    lines = []
    for scope, row in wide.iterrows():
        best = row[ridges].idxmax()
        lines.append(f"{scope}: {model} r {row[model]:.3f}, best ridge ({best}) {row[best]:.3f} -> {model} "
                     f"better: {'yes' if row[model] > row[best] else 'no'} ({row[model] - row[best]:+.3f})")
    return "\n".join(lines)
