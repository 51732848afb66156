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


def identification_permutation_test(blocks, segment_trs=10, n_permutations=1000, min_shift=None, random_state=0):
    """Permutation test of top-1 identification accuracy with circularly shifted labels.

    Each held-out block's true feature time course (the labels) is shifted
    circularly against its decoded one by a random number of TRs, at least
    ``min_shift`` from either end, so a shifted segment never lines up with
    its own or an autocorrelated neighbour's time course; the accuracy over
    all blocks is recomputed for each shift. Accuracy takes few values (a
    count of segments), so ties with the observed value are frequent; they
    are ordered by the mean correlation of the correct pairs, which keeps the
    p-value close to uniform under no signal instead of conservative.

    Parameters
    ----------
    blocks : list of (pred, true) pairs of arrays of shape (n_trs_block, n_components)
        Decoded and true features of each held-out block (e.g. one per fold).
    segment_trs : int
    n_permutations : int
        Random shifts (one per block per permutation).
    min_shift : int, optional
        Smallest shift in TRs (default: ``segment_trs``, one segment: 15 s
        at 10 TRs, beyond the autocorrelation of the BOLD response).
    random_state : int

    Returns
    -------
    dict
        ``top1`` (mean accuracy over blocks, as observed), ``p``
        (``(1 + #{null >= observed}) / (1 + n_permutations)``; NaN when the
        blocks allow fewer than :data:`MIN_DISTINCT_SHIFTS` distinct shift
        combinations), ``null_mean``, ``n_permutations`` and
        ``n_distinct_shifts``.
    """
    n_permutations = check_int(n_permutations, "n_permutations", 1)
    segment_trs = check_int(segment_trs, "segment_trs", 2)
    if not blocks:
        raise ValueError("blocks is empty; give at least one (pred, true) pair of held-out time courses")
    min_shift = segment_trs if min_shift is None else check_int(min_shift, "min_shift", 1)
    for pred, true in blocks:
        if np.shape(pred) != np.shape(true) or len(true) - 2 * min_shift < 0:
            raise ValueError(f"each block needs pred and true of one shape and at least 2 * min_shift = "
                             f"{2 * min_shift} TRs, found {np.shape(pred)} and {np.shape(true)}")
    rng = np.random.default_rng(random_state)
    shifts = rng.integers(min_shift, [len(t) - min_shift + 1 for _, t in blocks], size=(n_permutations, len(blocks)))
    observed = np.mean([shifted_identification(p, t, [0], segment_trs) for p, t in blocks], axis=0)[:, 0]
    null = np.mean([shifted_identification(p, t, shifts[:, b], segment_trs) for b, (p, t) in enumerate(blocks)],
                   axis=0)
    # accuracy first; equal accuracies are ordered by the mean similarity of the correct pairs
    at_least = (null[0] > observed[0] + 1e-12) | ((np.abs(null[0] - observed[0]) <= 1e-12) & (null[1] >= observed[1]))
    n_distinct = int(np.prod([float(len(t) - 2 * min_shift + 1) for _, t in blocks]))
    p = (1 + at_least.sum()) / (1 + n_permutations) if n_distinct >= MIN_DISTINCT_SHIFTS else np.nan
    return {"top1": float(observed[0]), "p": float(p), "null_mean": float(null[0].mean()),
            "n_permutations": n_permutations, "n_distinct_shifts": n_distinct}


MIN_DISTINCT_SHIFTS = 20
"""Fewer distinct shift combinations than this give no p-value (NaN): the null would repeat a handful of values."""


def _zscore_segments(values, n_seg, segment_trs):
    """(..., n_trs, n_components) -> (..., n_seg, segment_trs * n_components), each segment z-scored."""
    seg = values[..., : n_seg * segment_trs, :].reshape(*values.shape[:-2], n_seg, -1)
    return (seg - seg.mean(-1, keepdims=True)) / (seg.std(-1, keepdims=True) + 1e-12)


def shifted_identification(pred, true, shifts, segment_trs=10, chunk=128):
    """Identification after rolling ``true`` by each shift (as ``np.roll(true, s, axis=0)``).

    Parameters
    ----------
    pred, true : arrays of shape (n_trs, n_components)
    shifts : int array of shape (n_shifts,)
    segment_trs : int
    chunk : int
        Shifts scored at once (memory: chunk x n_trs x n_components floats).

    Returns
    -------
    array of shape (2, n_shifts)
        Row 0: top-1 accuracy (what :func:`identification_accuracy` gives for
        each shifted pair); row 1: mean correlation of each decoded segment
        with its own (shifted) true segment.
    """
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    n_seg = len(pred) // segment_trs
    p = _zscore_segments(pred, n_seg, segment_trs)
    out = np.empty((2, len(shifts)))
    for start in range(0, len(shifts), chunk):
        s = np.asarray(shifts[start:start + chunk])
        rolled = true[(np.arange(len(true))[None, :] - s[:, None]) % len(true)]  # (chunk, n_trs, n_components)
        sim = np.einsum("il,cjl->cij", p, _zscore_segments(rolled, n_seg, segment_trs)) / p.shape[1]
        match = np.diagonal(sim, axis1=1, axis2=2)
        out[0, start:start + chunk] = ((sim > match[:, :, None]).sum(-1) < 1).mean(1)
        out[1, start:start + chunk] = match.mean(1)
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
