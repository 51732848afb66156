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
from ..core.validation import check_delays, check_int
from ..encoding.cv import DEFAULT_DELAYS, check_splitter, splitter_params
from ..encoding.evaluate import check_fitter
from ..encoding.fold_loop import (
    OuterFolds,
    default_estimator,
    fit_predict_fold,
    fold_predictions,
    inner_splitter,
    make_decoding_pipeline,
)
from ..encoding.result_cache import CACHE_VERSION
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
    fitter : regressor
        :class:`encoding_kit.encoding.estimators.GappedRidgeCV` or another
        (see :func:`encoding_kit.encoding.fold_loop.make_decoding_pipeline`).
    cv : list of (train_positions, val_positions)
        Inner gapped folds inside ``train``.

    Returns
    -------
    array of shape (len(test), n_components)
    """
    pred, _, _ = fit_predict_fold(make_decoding_pipeline(fitter, delays), brain, targets, train, test, cv)
    return pred


class RidgeDecoderStore:
    """The ridge decoder's held-out predictions of every subject and fold, cached for the deep decoders' table.

    :func:`evaluate_decoding` and :func:`encoding_kit.decoding.evaluation.evaluate_deep_decoding` fit the same
    ridge decoder on the same folds and targets (the deep table's ``"ridge"`` rows); the first to run stores its
    predictions here (feature cache folder, prefix ``ridgedecoder-``), keyed by everything that changes them, and
    the other reads them instead of fitting again.

    Parameters
    ----------
    X, brains, n_components, delays, cv, folds, fitter
        As in :func:`evaluate_decoding`: ``brains`` a dict {subject: array (n_trs, n_rois)}, ``folds`` the
        :class:`encoding_kit.encoding.fold_loop.OuterFolds` of ``cv``.
    """

    def __init__(self, X, brains, n_components, delays, cv, folds, fitter):
        settings = {"version": CACHE_VERSION, "X": hash_array(np.asarray(X, np.float32)),
                    "subjects": list(map(str, brains)),
                    "brains": hash_array(np.stack([np.asarray(b, np.float32) for b in brains.values()])),
                    "brains_dtype": str(np.result_type(*brains.values())), "n_components": n_components,
                    "delays": list(map(int, delays)), "cv": splitter_params(cv), "inner_cv": folds.inner_cv.params(),
                    "folds": [hash_array(np.asarray(test)) for _, test in folds.splits],
                    "fitter": type(fitter).__name__, **getattr(fitter, "cache_params", lambda: {})()}
        self.path = cache_root() / f"{cache_key('ridgedecoder', settings)}.npz"
        self.subjects, self.n_folds = list(brains), len(folds.splits)

    def save(self, preds):
        """Store ``preds`` {(subject, fold): array (n_test, n_components)}, every subject and fold (atomic write)."""
        arrays = {f"pred_{i}_{k}": preds[subject, k] for i, subject in enumerate(self.subjects)
                  for k in range(self.n_folds)}
        atomic_write(self.path, lambda tmp: np.savez(tmp, **arrays))

    def load(self):
        """The stored predictions {(subject, fold): array}, or ``None`` (none stored, or set aside unreadable)."""
        if not self.path.exists():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as z:
                return {(subject, k): z[f"pred_{i}_{k}"] for i, subject in enumerate(self.subjects)
                        for k in range(self.n_folds)}
        except Exception as exc:
            set_aside(self.path, f"{type(exc).__name__}: {exc}")
            return None


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
def evaluate_decoding(X, fmri, n_components=20, delays=DEFAULT_DELAYS, cv=None, segment_trs=10, fitter=None,
                      average_subjects=False, progress=True, cache=True):
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
    cv : None, int or splitter
        The outer folds, as in :func:`encoding_kit.encoding.evaluate.evaluate_encoding`
        (default :class:`encoding_kit.encoding.cv.GappedKFold` with 5 blocks, a
        gap of ``max(delays)`` and the default trim).
    segment_trs : int
        Length of the segments identified in each held-out block.
    fitter : regressor, optional
        The decoder; default the kit's ridge
        (:class:`encoding_kit.encoding.estimators.GappedRidgeCV`, e.g.
        ``GappedRidgeCV(alphas=...)`` for other penalties).
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
    delays, cv = check_delays(delays), check_splitter(cv, delays)
    n_components, segment_trs = check_int(n_components, "n_components", 1), check_int(segment_trs, "segment_trs", 2)
    X = np.asarray(X, dtype=np.float32)
    brains = {"average": np.mean(list(fmri.values()), axis=0)} if average_subjects else dict(fmri)
    if len(X) != len(next(iter(brains.values()))):
        raise ValueError(f"X has {len(X)} TRs but fmri has {len(next(iter(brains.values())))}")
    fitter = default_estimator(delays, getattr(cv, "gap", None)) if check_fitter(fitter) is None else fitter
    folds = OuterFolds.from_splitter(cv, len(X), inner_splitter(fitter, cv, delays))
    settings = {"version": CACHE_VERSION, "X": hash_array(X), "subjects": list(map(str, brains)),
                "brains": hash_array(np.stack([np.asarray(b, np.float32) for b in brains.values()])),
                "n_components": n_components, "delays": list(map(int, delays)), "cv": splitter_params(cv),
                "inner_cv": folds.inner_cv.params(), "segment_trs": segment_trs,
                "fitter": type(fitter).__name__, **getattr(fitter, "cache_params", lambda: {})()}
    stored = cache_root() / f"{cache_key('decoding', settings)}.csv" if cache else None
    if stored is not None and stored.exists():
        table = _read_stored_table(stored, brains, len(folds.splits))
        if table is not None:
            return table
    targets = [fold_targets(X, train, n_components) for train, _ in folds.splits]
    pipeline = make_decoding_pipeline(fitter, delays)
    rows, preds = [], {}
    for subject, brain in tqdm(brains.items(), desc="decoding subjects", disable=not progress, leave=False):
        for fold in fold_predictions(pipeline, brain, targets, folds, progress=False):
            scores = decoding_scores(fold.pred, targets[fold.k][fold.test], segment_trs)
            rows.append({"subject": subject, "fold": fold.k, **scores})
            preds[subject, fold.k] = fold.pred
    if cache and hasattr(fitter, "cache_params"):  # a fitter without them has no key for its settings
        RidgeDecoderStore(X, brains, n_components, delays, cv, folds, fitter).save(preds)
    rows.sort(key=lambda row: row["fold"])  # fold by fold, subjects in the caller's order (stable sort)
    table = pd.DataFrame(rows)
    if stored is not None:
        atomic_write(stored, lambda tmp: table.to_csv(tmp, index=False))
    return table
