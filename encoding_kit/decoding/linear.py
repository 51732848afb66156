"""Decoding (brain -> stimulus) and segment identification.

A ridge decoder predicts the principal components of the stimulus features
at TR ``t`` from the ROI responses at TRs ``t + 1 .. t + 4`` (the response
follows the stimulus). Folds, gaps, in-fold PCA/standardisation and the
per-target alpha search are those of the encoding engine. Held-out TRs are
cut into segments; a segment is identified when its decoded feature
time course correlates best with its own true time course among all
segments of the same fold (top-1), or ranks among the 10 best (top-10).
The table is cached like encoding results (see :mod:`.result_cache`), under
a hash of the features, the responses and every setting.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from ..core.progress import tqdm
from ..core.run_log import timed_call
from ..core.storage import atomic_write, cache_key, cache_root, hash_array, set_aside
from ..core.validation import check_cv, check_delays, check_int, check_trim
from ..encoding.cv import DEFAULT_DELAYS
from ..encoding.evaluate import DEFAULT_TRIM
from ..encoding.fold_loop import OuterFolds, fit_predict_fold, fold_predictions, make_decoding_pipeline
from ..encoding.result_cache import CACHE_VERSION
from ..encoding.ridge import DEFAULT_ALPHAS, RidgeFitter
from .identification import identification_permutation_test  # noqa: F401 (re-exported: the decoders' test)


def identification_accuracy(pred, true, segment_trs=10, top=(1, 10)):
    """Identify held-out segments from decoded feature time courses.

    Parameters
    ----------
    pred, true : arrays of shape (n_trs, n_components)
        Decoded and true features of one contiguous held-out block.
    segment_trs : int
        Segment length in TRs.
    top : tuple of int
        Ranks counted as correct.

    Returns
    -------
    dict {"top1": accuracy, ..., "n_segments": n}
    """
    n_seg = len(pred) // segment_trs
    if n_seg < 2:
        raise ValueError(f"{len(pred)} held-out TRs give fewer than 2 segments of {segment_trs} TRs")
    p = pred[: n_seg * segment_trs].reshape(n_seg, -1)
    t = true[: n_seg * segment_trs].reshape(n_seg, -1)
    p = (p - p.mean(1, keepdims=True)) / (p.std(1, keepdims=True) + 1e-12)
    t = (t - t.mean(1, keepdims=True)) / (t.std(1, keepdims=True) + 1e-12)
    sim = p @ t.T / p.shape[1]  # (decoded segment, candidate true segment)
    rank = (sim > np.diag(sim)[:, None]).sum(1)  # 0 = correct segment is the best match
    out = {f"top{k}": float(np.mean(rank < k)) for k in top}
    out["n_segments"] = n_seg
    return out


def fold_targets(X, train, n_components):
    """Decoding targets: principal components of the standardised features, both fitted on training TRs.

    Parameters
    ----------
    X : array of shape (n_trs, n_features)
    train : int array
        Training TR indices of the fold.
    n_components : int

    Returns
    -------
    array of shape (n_trs, min(n_components, n_features))
    """
    pca = PCA(n_components=min(n_components, X.shape[1]), random_state=0)
    scaler = StandardScaler().fit(X[train])
    return pca.fit(scaler.transform(X[train])).transform(scaler.transform(X))


def ridge_decode(brain, targets, train, test, delays, fitter, cv):
    """The ridge decoder of one fold: targets at TR t from the ROIs at TRs ``t + delays``.

    Parameters
    ----------
    brain : array of shape (n_trs, n_rois)
    targets : array of shape (n_trs, n_components)
    train, test : int arrays of TR indices
    delays : list of int
    fitter : RidgeFitter or regressor
    cv : list of (train_positions, val_positions)
        Inner gapped folds inside ``train``.

    Returns
    -------
    array of shape (len(test), n_components)
    """
    pred, _, _ = fit_predict_fold(make_decoding_pipeline(fitter, delays), brain, targets, train, test, cv)
    return pred


def decoding_scores(pred, true, segment_trs):
    """Mean r over components, identification accuracy and chance levels of one held-out block."""
    acc = identification_accuracy(pred, true, segment_trs)
    r = np.mean([np.corrcoef(pred[:, c], true[:, c])[0, 1] for c in range(pred.shape[1])])
    return {"r": r, **acc, "chance_top1": 1 / acc["n_segments"], "chance_top10": min(1.0, 10 / acc["n_segments"])}


TABLE_COLUMNS = ("subject", "fold", "r", "top1", "top10", "n_segments", "chance_top1", "chance_top10")


def _read_stored_table(stored, brains, n_folds):
    """The cached table, or ``None`` after setting an unreadable or incomplete one aside."""
    try:
        table = pd.read_csv(stored, dtype={"subject": str})
        missing = sorted(set(TABLE_COLUMNS) - set(table.columns))
        if missing or len(table) != len(brains) * n_folds or table[["fold", "top1", "top10", "n_segments"]].isna().any().any():
            raise ValueError(f"expected {len(brains) * n_folds} complete rows with columns {TABLE_COLUMNS}, found "
                             f"{len(table)} rows" + (f", missing {missing}" if missing else ""))
    except Exception as exc:
        set_aside(stored, f"{type(exc).__name__}: {exc}")
        return None
    return table.assign(subject=table["subject"].map({str(k): k for k in brains}))


@timed_call("ridge")
def evaluate_decoding(X, fmri, n_components=20, delays=DEFAULT_DELAYS, n_folds=5, segment_trs=10,
                      alphas=None, trim=DEFAULT_TRIM, inner_folds=5, average_subjects=False, progress=True,
                      cache=True):
    """Decode stimulus feature PCs from ROI responses and identify held-out segments.

    Parameters
    ----------
    X : array of shape (n_trs, n_features)
        Stimulus features (the decoding targets, reduced by PCA in each fold).
    fmri : dict {subject: array (n_trs, n_rois)}
    n_components : int
        Feature principal components decoded (fitted on training TRs).
    delays : sequence of int
        Response delays in TRs; TR ``t`` is decoded from ROIs at ``t + d``.
    average_subjects : bool
        Decode from the subject-average response instead of each subject.
    progress : bool
    cache : bool
        Reuse the stored table of the same inputs and settings, and store new
        ones (under the feature cache folder, prefix ``decoding-``).

    Returns
    -------
    DataFrame
        One row per subject (or ``"average"``) and fold: ``r`` (mean held-out
        r over components), ``top1``, ``top10``, ``chance_top1``,
        ``chance_top10``, ``n_segments``.
    """
    delays, trim, (n_folds, _, inner_folds) = check_delays(delays), check_trim(trim), check_cv(n_folds, None, inner_folds)
    n_components, segment_trs = check_int(n_components, "n_components", 1), check_int(segment_trs, "segment_trs", 2)
    X = np.asarray(X, dtype=np.float32)
    brains = {"average": np.mean(list(fmri.values()), axis=0)} if average_subjects else dict(fmri)
    if len(X) != len(next(iter(brains.values()))):
        raise ValueError(f"X has {len(X)} TRs but fmri has {len(next(iter(brains.values())))}")
    gap = max(delays)
    fitter = RidgeFitter(DEFAULT_ALPHAS if alphas is None else alphas)
    settings = {"version": CACHE_VERSION, "X": hash_array(X), "subjects": list(map(str, brains)),
                "brains": hash_array(np.stack([np.asarray(b, np.float32) for b in brains.values()])),
                "n_components": n_components, "delays": list(map(int, delays)), "n_folds": n_folds,
                "segment_trs": segment_trs, "trim": list(trim), "inner_folds": inner_folds, **fitter.cache_params()}
    stored = cache_root() / f"{cache_key('decoding', settings)}.csv" if cache else None
    if stored is not None and stored.exists():
        table = _read_stored_table(stored, brains, n_folds)
        if table is not None:
            return table
    folds = OuterFolds.gapped(len(X), n_folds, gap, trim, inner_folds)
    targets = [fold_targets(X, train, n_components) for train, _ in folds.splits]
    pipeline = make_decoding_pipeline(fitter, delays, inner_folds)
    rows = []
    for subject, brain in tqdm(brains.items(), desc="decoding subjects", disable=not progress, leave=False):
        for fold in fold_predictions(pipeline, brain, targets, folds, progress=False):
            scores = decoding_scores(fold.pred, targets[fold.k][fold.test], segment_trs)
            rows.append({"subject": subject, "fold": fold.k, **scores})
    rows.sort(key=lambda row: row["fold"])  # fold by fold, subjects in the caller's order (stable sort)
    table = pd.DataFrame(rows)
    if stored is not None:
        atomic_write(stored, lambda tmp: table.to_csv(tmp, index=False))
    return table
