"""Phoneme selectivity: which phoneme class each ROI responds to, from unique held-out variance.

An encoding model of the per-TR phoneme-class features
(:func:`encoding_kit.features.phonemes.phoneme_class_features`) is fitted
with the kit's ridge on its gapped folds; then, for every class, the same
model without that class. The class's **unique variance** in a ROI is the
held-out R^2 the full model loses when the class is left out (variance
partitioning, de Heer et al., 2017). Phoneme counts of a TR all grow with the
speech rate, so most of the explained variance is shared; the unique parts
are what tell the classes apart. A ROI's **dominant class** is the one with
the largest unique variance (subject mean), if any is positive.

As in the Whisper-ECoG study, the table of interest is the best-predicted
ROIs (top quartile of held-out r of the full model) with their dominant
class and ROI group.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.progress import tqdm
from ..data.course_files import N_ROIS
from ..data.rois import roi_table
from ..encoding.estimators import GappedRidgeCV
from ..encoding.evaluate import evaluate_encoding


def class_unique_variance(features, names, fmri, alphas=None, progress=True, **kwargs):
    """Held-out R^2 of the full phoneme-class model and each class's unique part.

    Parameters
    ----------
    features : array of shape (n_trs, n_classes)
        Per-TR phoneme-class features (not yet delayed).
    names : list of str, length n_classes
    fmri : dict {subject: array (n_trs, n_rois)} or array
    alphas : array, optional
        Ridge grid; default :data:`encoding_kit.encoding.ridge.DEFAULT_ALPHAS`.
    progress : bool
    **kwargs
        Passed to every :func:`evaluate_encoding` (``delays``, ``cv``, ``train_on``, ...); ``backend``
        goes to the ridge (:class:`encoding_kit.encoding.estimators.GappedRidgeCV`).

    Returns
    -------
    dict
        ``full`` (EncodingResult of all classes), ``r2_full`` (n_subjects, n_rois),
        ``unique`` (n_classes, n_subjects, n_rois) = R^2(all) - R^2(all but
        the class), ``names``.
    """
    features = np.asarray(features, np.float32)
    if features.ndim != 2 or features.shape[1] != len(names):
        raise ValueError(f"features must be (n_trs, {len(names)}) for the {len(names)} class names, "
                         f"found shape {features.shape}")
    if len(names) < 2:
        raise ValueError(f"unique variance needs at least 2 classes, got {names}")
    # R^2 is what is partitioned, so alphas are chosen for squared error (as in fusion.variance_partitioning)
    fitter = GappedRidgeCV(alphas, backend=kwargs.pop("backend", "auto"), solver_params={"scoring": "mse"})
    full = evaluate_encoding(features, fmri, fitter=fitter, progress=False, **kwargs)
    unique = np.empty((len(names), *full.r2.shape))
    for c in tqdm(range(len(names)), desc="leave-one-class-out models", disable=not progress, leave=False):
        rest = evaluate_encoding(np.delete(features, c, axis=1), fmri, fitter=fitter, progress=False, **kwargs)
        unique[c] = full.r2 - rest.r2
    return {"full": full, "r2_full": full.r2, "unique": unique, "names": list(names)}


def selectivity_table(partition, groups=None):
    """Per ROI: held-out r of the full model, dominant class and its unique variance.

    Parameters
    ----------
    partition : dict
        From :func:`class_unique_variance`.
    groups : array of shape (n_rois,), optional
        ROI group labels; default the kit's groups (360 ROIs).

    Returns
    -------
    DataFrame
        One row per ROI: ``roi`` (index), ``name``, ``group``, ``mean_r``,
        ``r2_full``, ``dominant_class`` (``"none"`` if no class has positive
        unique variance), ``dominant_unique``, ``runner_up``, ``margin``
        (dominant minus runner-up unique variance) and ``unique_<class>``
        for every class (subject means).
    """
    full, names = partition["full"], partition["names"]
    with np.errstate(all="ignore"):
        unique = np.nanmean(partition["unique"], axis=1)  # (n_classes, n_rois)
        mean_r = np.nanmean(full.r, axis=0)
        r2 = np.nanmean(partition["r2_full"], axis=0)
    n_rois = unique.shape[1]
    if groups is None:
        groups = roi_table()["group"].to_numpy() if n_rois == N_ROIS else np.array(["all"] * n_rois)
    order = np.argsort(-np.nan_to_num(unique, nan=-np.inf), axis=0)
    best, second = order[0], order[1]
    best_value = unique[best, np.arange(n_rois)]
    table = pd.DataFrame({"roi": np.arange(n_rois), "name": full.roi_names, "group": groups, "mean_r": mean_r,
                          "r2_full": r2,
                          "dominant_class": np.where(best_value > 0, np.asarray(names)[best], "none"),
                          "dominant_unique": best_value, "runner_up": np.asarray(names)[second],
                          "margin": best_value - unique[second, np.arange(n_rois)]})
    for name, values in zip(names, unique):
        table[f"unique_{name}"] = values
    return table


def top_quartile_table(selectivity, quantile=0.75):
    """The best-predicted ROIs (mean r at or above the ``quantile``), sorted by r.

    Returns
    -------
    DataFrame
        Rows of :func:`selectivity_table` for those ROIs (name, group,
        mean_r, dominant_class, dominant_unique, margin).
    """
    cut = np.nanquantile(selectivity["mean_r"], quantile)
    top = selectivity[selectivity["mean_r"] >= cut].sort_values("mean_r", ascending=False)
    return top[["name", "group", "mean_r", "dominant_class", "dominant_unique", "margin"]].reset_index(drop=True)


def dominant_class_counts(top):
    """How often each class dominates in each ROI group, from :func:`top_quartile_table` (group x class counts)."""
    return pd.crosstab(top["group"], top["dominant_class"])


def dominant_class_map(selectivity, names):
    """Index into ``names`` of each ROI's dominant class, NaN where none (for ``plot_preference``).

    Returns
    -------
    float array of shape (n_rois,)
    """
    lookup = {name: i for i, name in enumerate(names)}
    return np.array([lookup.get(c, np.nan) for c in selectivity["dominant_class"]], float)


def planted_recovery(selectivity, planted):
    """Does the dominant class recover the planted one? One row per planted ROI, plus a summary.

    Parameters
    ----------
    selectivity : DataFrame
        From :func:`selectivity_table`.
    planted : dict {roi index: class}
        E.g. :func:`encoding_kit.demo.planted_phonemes.phoneme_rois` of the demo's truth.

    Returns
    -------
    rows : DataFrame
        ``name``, ``planted``, ``recovered`` (the dominant class),
        ``correct``, ``unique_planted`` (unique variance of the planted class
        there), ``rank`` (1 = largest unique variance of all classes).
    summary : dict
        ``n_planted``, ``n_correct``, ``accuracy``, ``chance`` (1 / number
        of classes), ``unique_planted_mean`` (planted class, planted ROIs)
        and ``unique_elsewhere_mean`` (the same classes in every other ROI).
    """
    classes = [c[len("unique_"):] for c in selectivity.columns if c.startswith("unique_")]
    missing = sorted({c for c in planted.values()} - set(classes))
    if missing:
        raise ValueError(f"planted classes {missing} are not among the analysed classes {classes}")
    rows = []
    for roi, cls in sorted(planted.items()):
        row = selectivity.loc[selectivity["roi"] == roi].iloc[0]
        values = row[[f"unique_{c}" for c in classes]].to_numpy(float)
        rank = int((values > row[f"unique_{cls}"]).sum()) + 1
        rows.append({"roi": roi, "name": row["name"], "planted": cls, "recovered": row["dominant_class"],
                     "correct": row["dominant_class"] == cls, "unique_planted": row[f"unique_{cls}"], "rank": rank})
    rows = pd.DataFrame(rows)
    others = ~selectivity["roi"].isin(list(planted))
    used = sorted(set(planted.values()))
    elsewhere = selectivity.loc[others, [f"unique_{c}" for c in used]].to_numpy(float)
    summary = {"n_planted": len(rows), "n_correct": int(rows["correct"].sum()) if len(rows) else 0,
               "accuracy": float(rows["correct"].mean()) if len(rows) else np.nan, "chance": 1.0 / len(classes),
               "unique_planted_mean": float(rows["unique_planted"].mean()) if len(rows) else np.nan,
               "unique_elsewhere_mean": float(np.nanmean(elsewhere)) if elsewhere.size else np.nan}
    return rows, summary
