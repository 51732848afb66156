"""Demo only: compare what a notebook found with the planted ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .generate import topic_columns


def planted_check(r, truth, label):
    """Mean r in ROIs planted with acoustic, language or no signal (demo only).

    Returns
    -------
    DataFrame with one row: label, acoustic_rois, language_rois, noise_rois
    """
    weights, names = truth["weights"], list(truth["driver_names"])
    acoustic = weights[:, names.index("acoustic_energy")] > 0.5
    language = np.abs(weights[:, topic_columns(names)]).sum(1) > 0
    noise = ~truth["driven"]
    mean = np.nanmean(np.atleast_2d(r), axis=0)
    return pd.DataFrame([{"features": label, "acoustic_rois": np.nanmean(mean[acoustic]),
                          "language_rois": np.nanmean(mean[language & ~acoustic]),
                          "noise_rois": np.nanmean(mean[noise])}])


def planted_verdict(scores, truth, text="text", noise_tolerance=0.02):
    """Check the planted structure of the demo against held-out scores, with numbers.

    Parameters
    ----------
    scores : dict {feature set: array (n_subjects, 360) or (360,)}
        Held-out r of each feature set; ``text`` names the text one, every
        other set counts as acoustic (audio models, low-level features).
    truth : dict
        The demo's ground truth (``Story.truth``).
    text : str
    noise_tolerance : float
        Largest absolute mean r accepted in noise-only ROIs.

    Returns
    -------
    DataFrame
        One row per planted ROI class (acoustic, language, noise-only): the
        number of ROIs, mean r of every feature set, the best set, what the
        truth expects and ``as_planted`` (bool).
    """
    weights, names = truth["weights"], list(truth["driver_names"])
    acoustic = weights[:, names.index("acoustic_energy")] > 0.5
    classes = {"acoustic ROIs": (acoustic, "an acoustic set"),
               "language ROIs": ((np.abs(weights[:, topic_columns(names)]).sum(1) > 0) & ~acoustic, text),
               "noise-only ROIs": (~truth["driven"], f"none (|r| < {noise_tolerance})")}
    means = {k: np.nanmean(np.atleast_2d(v), axis=0) for k, v in scores.items()}
    rows = []
    for label, (mask, expected) in classes.items():
        row = {"roi_class": label, "n_rois": int(mask.sum()), **{k: float(np.nanmean(m[mask])) for k, m in means.items()}}
        values = {k: row[k] for k in means}
        row["best"] = max(values, key=values.get)
        if label.startswith("noise"):
            row["as_planted"] = bool(max(abs(v) for v in values.values()) < noise_tolerance)
        else:
            row["as_planted"] = (row["best"] == text) == (expected == text)
        rows.append({**row, "expected": expected})
    return pd.DataFrame(rows)


def verdict_text(verdict):
    """One sentence per row of :func:`planted_verdict`, with the numbers."""
    lines = []
    for _, row in verdict.iterrows():
        sets = [c for c in verdict.columns if c not in ("roi_class", "n_rois", "best", "as_planted", "expected")]
        numbers = ", ".join(f"{k} {row[k]:+.3f}" for k in sorted(sets, key=lambda k: -row[k]))
        status = "as planted" if row["as_planted"] else "NOT as planted"
        lines.append(f"{row['roi_class']} ({row['n_rois']}): mean r {numbers}; expected best: {row['expected']} "
                     f"-> {status}")
    return "\n".join(lines)
