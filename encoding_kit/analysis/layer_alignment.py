"""Layer alignment profile: which layer of a speech model the brain follows best, with its uncertainty.

From the per-subject scores of every layer (:func:`encoding_kit.run.sweeps.layer_sweep`):

* :func:`layer_scores`: each subject's mean held-out r over a set of ROIs
  (all ROIs, or a group such as the auditory ROIs), per layer;
* :func:`bootstrap_peak_layer`: the peak layer, chosen on one half of the
  subjects and its r reported on the other half
  (:func:`encoding_kit.analysis.layers.best_layers_held_out`, as notebooks
  01, 02 and 06 do), and how the peak of the all-subject profile moves when
  the subjects are resampled with replacement (percentile interval of the
  peak layer, share of resamples per layer);
* :func:`middle_layer_test`: the "middle layers align best" question in
  numbers: mean r of the early, middle and late thirds of the layers, and
  the middle third minus each outer third, paired over subjects, with
  bootstrap intervals.

What the bootstrap covers: every subject heard the same story and is scored
on the same held-out blocks, so resampling subjects describes how the peak
moves between listeners *of this story*; the interval does not cover a new
story (or new stimuli), whose own features and noise would move it further.
The thirds are fixed before looking at the scores (by depth), so the
middle-layer test chooses nothing on the subjects it reports.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.rois import roi_table
from .layers import best_layers_held_out

THIRDS = ("early", "middle", "late")


def layer_scores(results, model, mask=None, scope="all ROIs"):
    """Each subject's mean r over the ROIs in ``mask``, per layer (tidy).

    Parameters
    ----------
    results : dict {layer: EncodingResult}
        From :func:`encoding_kit.run.sweeps.layer_sweep`.
    model : str
        Label of the model (e.g. ``"whisper-encoder"``).
    mask : bool array of shape (n_rois,), optional
        ROIs to average; default all.
    scope : str
        Label of the ROI set.

    Returns
    -------
    DataFrame with columns ``model``, ``scope``, ``layer``, ``depth`` (layer / last layer), ``subject``, ``mean_r``
    """
    layers = sorted(results)
    rows = []
    for layer in layers:
        r = np.asarray(results[layer].r)
        keep = np.ones(r.shape[1], bool) if mask is None else np.asarray(mask, bool)
        with np.errstate(all="ignore"):
            per_subject = np.nanmean(r[:, keep], axis=1)
        for subject, value in zip(results[layer].subjects, per_subject):
            rows.append({"model": model, "scope": scope, "layer": layer, "depth": layer / max(layers[-1], 1),
                         "subject": subject, "mean_r": float(value)})
    return pd.DataFrame(rows)


def group_mask(group, n_rois=360):
    """ROIs of one (or several, comma-separated) kit ROI group(s), bool array of shape (360,)."""
    names = [g.strip() for g in group.split(",")]
    groups = roi_table()["group"].to_numpy()[:n_rois]
    unknown = sorted(set(names) - set(groups))
    if unknown:
        raise ValueError(f"unknown ROI group(s) {unknown}; the groups are {sorted(set(groups))}")
    return np.isin(groups, names)


def _profile_matrix(part):
    """Subjects x layers matrix of ``mean_r`` and the layer numbers (sorted)."""
    wide = part.pivot_table(index="subject", columns="layer", values="mean_r", sort=True)
    if wide.isna().any().any():
        raise ValueError("every subject needs a score for every layer; some are missing")
    return wide.to_numpy(float), wide.columns.to_numpy()


def thirds(layers):
    """Early / middle / late third of each layer by relative depth (layer / last layer): array of labels.

    Depth <= 1/3 is early, >= 2/3 late, in between middle (layer 0, the
    input to the first block, is the earliest).
    """
    layers = np.asarray(layers, float)
    depth = layers / max(layers.max(), 1)
    return np.where(depth <= 1 / 3 + 1e-9, "early", np.where(depth >= 2 / 3 - 1e-9, "late", "middle"))


def bootstrap_peak_layer(table, n_boot=1000, ci=0.95, random_state=0):
    """Peak layer chosen on half of the subjects, its r on the other half, and a bootstrap over subjects.

    Parameters
    ----------
    table : DataFrame
        Rows of :func:`layer_scores` (one or several model/scope pairs).
    n_boot : int
    ci : float
        Width of the percentile interval.
    random_state : int

    Returns
    -------
    DataFrame
        One row per model and scope: ``peak_layer`` (highest mean over the
        selection half of the subjects, :func:`~encoding_kit.analysis.layers.split_subjects`),
        ``peak_depth``, ``peak_r`` (its mean r over the reporting half only:
        subjects that did not choose it), ``n_select``, ``n_report``,
        ``selection_r`` (the chosen layer's mean on the selection half,
        biased upward: not a result), ``ci_low`` / ``ci_high`` (percentile
        interval of the peak layer of the all-subject mean when the subjects
        are resampled: listeners of this one story, see the module
        docstring), ``p_middle`` (share of resamples whose peak is in the
        middle third), ``modal_share`` (share of resamples whose peak is
        ``peak_layer``), ``n_subjects``, ``n_layers``.
    """
    rng = np.random.default_rng(random_state)
    rows = []
    for (model, scope), part in table.groupby(["model", "scope"], sort=False):
        scores, layers = _profile_matrix(part)
        n = scores.shape[0]
        held_out = best_layers_held_out(part).iloc[0]
        peak = held_out["layer"]
        draws = rng.integers(0, n, size=(n_boot, n))
        peaks = layers[np.argmax(scores[draws].mean(1), axis=1)]
        tail = (1 - ci) / 2
        labels = dict(zip(layers, thirds(layers)))
        rows.append({"model": model, "scope": scope, "peak_layer": peak,
                     "peak_depth": peak / max(layers.max(), 1), "peak_r": float(held_out["mean_r"]),
                     "n_select": n - int(held_out["n_report"]), "n_report": int(held_out["n_report"]),
                     "selection_r": float(held_out["selection_score"]),
                     "ci_low": float(np.quantile(peaks, tail, method="inverted_cdf")),
                     "ci_high": float(np.quantile(peaks, 1 - tail, method="inverted_cdf")),
                     "p_middle": float(np.mean([labels[p] == "middle" for p in peaks])),
                     "modal_share": float(np.mean(peaks == peak)), "n_subjects": n,
                     "n_layers": len(layers)})
    return pd.DataFrame(rows)


def middle_layer_test(table, n_boot=1000, ci=0.95, random_state=0):
    """Do the middle layers align better than the early and the late ones?

    Per subject: the mean r of the layers in each third (:func:`thirds`);
    then the paired differences middle - early and middle - late, their
    subject means and bootstrap percentile intervals over subjects (the same
    resamples for both).

    Returns
    -------
    DataFrame
        One row per model and scope: ``r_early``, ``r_middle``, ``r_late``
        (subject means), ``vs_early``, ``vs_early_low``, ``vs_early_high``,
        ``vs_late``, ``vs_late_low``, ``vs_late_high``, ``middle_layers``
        (the layers of the middle third) and ``answer``: ``"yes"`` when both
        intervals lie above 0, ``"no"`` when either lies below 0 (an outer
        third aligns better), else ``"undecided"``.
    """
    rng = np.random.default_rng(random_state)
    tail = (1 - ci) / 2
    rows = []
    for (model, scope), part in table.groupby(["model", "scope"], sort=False):
        scores, layers = _profile_matrix(part)
        labels = thirds(layers)
        if len(set(labels)) < 3:
            raise ValueError(f"{model}: layers {list(layers)} do not fill three thirds; it needs at least 3 layers")
        per_third = {t: scores[:, labels == t].mean(1) for t in THIRDS}
        draws = rng.integers(0, len(scores), size=(n_boot, len(scores)))
        row = {"model": model, "scope": scope, **{f"r_{t}": float(per_third[t].mean()) for t in THIRDS}}
        verdicts = []
        for other in ("early", "late"):
            diff = per_third["middle"] - per_third[other]
            low, high = np.quantile(diff[draws].mean(1), [tail, 1 - tail])
            row.update({f"vs_{other}": float(diff.mean()), f"vs_{other}_low": float(low),
                        f"vs_{other}_high": float(high)})
            verdicts.append("above" if low > 0 else ("below" if high < 0 else "overlaps"))
        row["middle_layers"] = ", ".join(str(x) for x in layers[labels == "middle"])
        row["answer"] = "no" if "below" in verdicts else ("yes" if verdicts == ["above", "above"] else "undecided")
        rows.append(row)
    return pd.DataFrame(rows)


def answer_text(peaks, middle):
    """One sentence per model and scope with the numbers of both tables."""
    lines = []
    merged = peaks.merge(middle, on=["model", "scope"])
    for _, row in merged.iterrows():
        lines.append(
            f"{row['model']} ({row['scope']}): peak at layer {row['peak_layer']} of {row['n_layers'] - 1} "
            f"(depth {row['peak_depth']:.2f}; chosen on {row['n_select']} subjects, r {row['peak_r']:.3f} on the "
            f"other {row['n_report']}; resampling the {row['n_subjects']} listeners of this story puts the peak at "
            f"layers {row['ci_low']:g}-{row['ci_high']:g} (95%), in the middle third in {row['p_middle']:.0%} of "
            f"resamples); "
            f"middle third (layers {row['middle_layers']}) minus early {row['vs_early']:+.4f} "
            f"[{row['vs_early_low']:+.4f}, {row['vs_early_high']:+.4f}], minus late {row['vs_late']:+.4f} "
            f"[{row['vs_late_low']:+.4f}, {row['vs_late_high']:+.4f}] -> middle layers best: {row['answer']}")
    return "\n".join(lines)
