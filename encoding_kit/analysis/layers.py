"""Choosing a model's best layer on some subjects and reporting it on the others (no selection bias)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import quiet_nan_warnings


def summarize_layers(table):
    """Mean +- std across subjects per model and layer (the runner's ``layer_scores.csv`` format).

    Examples
    --------
    >>> import pandas as pd, utils
    >>> table = pd.DataFrame({"model": "toy", "layer": [0, 0, 1, 1], "subject": [1, 2, 1, 2],
    ...                       "mean_r": [0.01, 0.03, 0.05, 0.07], "norm_r": [0.1, 0.3, 0.5, 0.7]})
    >>> print(utils.summarize_layers(table)[["model", "layer", "mean_r"]].round(2).to_string(index=False))
    model  layer  mean_r
      toy      0    0.02
      toy      1    0.06
    """
    grouped = table.groupby(["model", "layer"])
    out = grouped["mean_r"].agg(mean_r="mean", std_r="std").join(grouped["norm_r"].agg(norm_r="mean"))
    return out.reset_index()


def split_subjects(subjects):
    """Split subjects into a layer-selection half and a reporting half.

    Alternate subjects in their given order: positions 0, 2, 4, ... select,
    positions 1, 3, 5, ... report (12 and 13 of the course's 25). Choosing
    the best layer on the same scores that are then reported biases them
    upward (the maximum of noisy estimates); choosing on one half and
    reporting the other half does not.

    Parameters
    ----------
    subjects : sequence, length n_subjects >= 2

    Returns
    -------
    selection, reporting : lists

    Examples
    --------
    >>> import utils
    >>> utils.split_subjects([1, 2, 3, 4, 5])
    ([1, 3, 5], [2, 4])
    """
    subjects = list(subjects)
    if len(subjects) < 2:
        raise ValueError(f"choosing a layer on one half of the subjects and reporting it on the other needs at "
                         f"least 2 subjects; got {len(subjects)}")
    return subjects[0::2], subjects[1::2]


def best_layers_held_out(table, score="mean_r"):
    """Each model's best layer, chosen on the selection half of the subjects, scored on the reporting half.

    Parameters
    ----------
    table : DataFrame
        Rows of :func:`layer_sweep` (model, layer, subject, mean_r, norm_r).
    score : str
        Column the layer is chosen by (its mean over the selection half).

    Returns
    -------
    DataFrame
        One row per model: ``layer`` (chosen), ``mean_r``, ``std_r`` and
        ``norm_r`` (mean / std across the reporting half's subjects only),
        ``n_report``, and ``selection_score`` (the chosen layer's mean
        ``score`` over the selection half, not a result to report).

    Examples
    --------
    Layer 1 is best on the selection half (subjects 1 and 3); its score is that of the reporting half (2 and 4):

    >>> import pandas as pd, utils
    >>> table = pd.DataFrame({"model": "toy", "layer": [0] * 4 + [1] * 4, "subject": [1, 2, 3, 4] * 2,
    ...                       "mean_r": [0.02, 0.02, 0.02, 0.02, 0.06, 0.04, 0.06, 0.04], "norm_r": 0.0})
    >>> best = utils.best_layers_held_out(table)
    >>> int(best.layer[0]), round(float(best.mean_r[0]), 2), int(best.n_report[0])
    (1, 0.04, 2)
    """
    rows = []
    for model, part in table.groupby("model", sort=False):
        selection, reporting = split_subjects(pd.unique(part["subject"]))
        chosen = part[part["subject"].isin(selection)].groupby("layer")[score].mean()
        layer = chosen.idxmax()
        reported = part[(part["layer"] == layer) & part["subject"].isin(reporting)]
        rows.append({"model": model, "layer": layer, "mean_r": reported["mean_r"].mean(),
                     "std_r": reported["mean_r"].std(ddof=1) if len(reported) > 1 else 0.0,
                     "norm_r": reported["norm_r"].mean() if "norm_r" in reported else np.nan,
                     "n_report": len(reported), "selection_score": chosen[layer]})
    return pd.DataFrame(rows)


def best_layer_of(r_by_layer):
    """The best layer of ``{layer: r (n_subjects, n_rois)}``, chosen on the selection half of the subjects.

    Returns
    -------
    layer
        Highest mean (over the selection half) of each subject's ROI-mean r.
    reporting : int array
        Positions of the reporting half: report ``r_by_layer[layer][reporting]``.
    """
    n = next(iter(r_by_layer.values())).shape[0]
    selection, reporting = (np.array(half, dtype=int) for half in split_subjects(range(n)))
    with quiet_nan_warnings():
        score = {k: np.nanmean(np.nanmean(np.atleast_2d(r)[selection], axis=1)) for k, r in r_by_layer.items()}
    return max(score, key=lambda k: -np.inf if np.isnan(score[k]) else score[k]), reporting
