"""Encoding models: all subjects and ROIs in one ridge solve per fold.

The features are the same for every subject, so the 25 x 360 targets are one
multi-target problem. Per fold (contiguous, gapped, see :mod:`.cv`):

1. standardisation (and optional PCA) is fitted on the training TRs only;
2. FIR delays are applied to the transformed features;
3. ridge (:mod:`.ridge`, on himalaya's backends) picks one alpha per target
   (subject x ROI) from a wide log grid by an inner gapped contiguous CV
   inside the training part, refits, and predicts the held-out block;
4. held-out r per target; folds are combined in Fisher z space.

Steps 1-3 are a scikit-learn ``Pipeline`` (StandardScaler -> PCA -> Delayer
-> :class:`.estimators.GappedRidgeCV`) run by the one fold loop of
:mod:`.fold_loop`.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.pipeline import Pipeline

from ..core.run_log import timed
from ..core.validation import check_delays, check_int
from ..data.course_files import N_ROIS
from ..data.rois import roi_names
from .cv import DEFAULT_DELAYS, DEFAULT_TRIM, check_splitter, splitter_params
from .fold_loop import (
    OuterFolds,
    default_estimator,
    feature_steps,
    fold_predictions,
    inner_splitter,
    make_encoding_pipeline,
)
from .result_cache import (
    encoding_cache_folder,
    fitter_state_mark,
    load_cached_result,
    save_cached_result,
    settings_hash,
)
from .results import EncodingResult
from .ridge import DEFAULT_ALPHAS
from .scores import columnwise_r, columnwise_r2, fisher_mean, quiet_nan_warnings

__all__ = ["DEFAULT_TRIM", "TRAIN_ON", "evaluate_encoding", "fold_features", "stack_targets"]

TRAIN_ON = ("subject", "group")
"""What each model is fitted to: one subject's responses, or the mean of all subjects."""


def stack_targets(fmri):
    """Put every subject's ROIs side by side.

    Parameters
    ----------
    fmri : dict {subject: array (n_trs, n_rois)} or array (n_trs, n_rois)

    Returns
    -------
    Y : float32 array of shape (n_trs, n_subjects * n_rois)
    subjects : list
    n_rois : int
    """
    if isinstance(fmri, dict):
        subjects = list(fmri)
        arrays = [np.asarray(fmri[s], dtype=np.float32) for s in subjects]
    else:
        subjects, arrays = [0], [np.asarray(fmri, dtype=np.float32)]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 2:
        raise ValueError(f"every subject must be an array (n_trs, n_rois) of one shape, found {sorted(shapes)}")
    return np.concatenate(arrays, axis=1), subjects, arrays[0].shape[1]


def check_fitter(fitter):
    """``None``, a scikit-learn regressor (``fit``/``predict``) or a kit fitter (``fit_predict``); else a TypeError."""
    if fitter is None or hasattr(fitter, "fit_predict") or (hasattr(fitter, "fit") and hasattr(fitter, "predict")):
        return fitter
    raise TypeError(f"fitter must be a regressor object such as GappedRidgeCV() (or None for the "
                    f"default ridge), found {fitter!r} ({type(fitter).__name__})")


def warn_constant_targets(Y, subjects, n_rois):
    """Warn once, naming subjects and ROIs, when a response never changes: its held-out r is NaN (undefined)."""
    constant = np.flatnonzero(np.ptp(Y, axis=0) == 0)
    if not constant.size:
        return
    names = roi_names() if n_rois == len(roi_names()) else [f"ROI {k}" for k in range(n_rois)]
    found = [f"subject {subjects[c // n_rois]} {names[c % n_rois]}" for c in constant]
    warnings.warn(f"{len(found)} response(s) are constant over every TR ({', '.join(found[:5])}"
                  f"{', ...' if len(found) > 5 else ''}): no model can predict them, so their r is NaN; "
                  "check the data (a masked or empty ROI?)", stacklevel=3)


def check_features(X, n_trs):
    """Validate the TR-level feature matrix; returns float32 (n_trs, n_features)."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"X must be (n_trs, n_features), found shape {X.shape}")
    if X.shape[0] != n_trs:
        raise ValueError(f"X has {X.shape[0]} TRs but fmri has {n_trs} TRs; both must be on the same TR grid")
    if X.shape[1] == 0:
        raise ValueError(f"X has no feature columns (shape {X.shape}); expected at least one feature per TR "
                         "(an empty layer list or feature selection?)")
    bad = ~np.isfinite(X)
    if bad.any():
        raise ValueError(f"X has {int(bad.sum())} NaN/inf values in {int(bad.any(0).sum())} feature columns")
    constant = int((X.std(0) == 0).sum())
    if constant:
        warnings.warn(f"X has {constant} constant feature columns; they carry no information and are zeroed",
                      stacklevel=3)
    return X


def fold_features(X, train, delays, pca=None, space_groups=None):
    """Standardise (and reduce) features using training TRs only, then delay.

    The transformers of the engine's pipeline (:func:`.fold_loop.feature_steps`).

    Parameters
    ----------
    X : array of shape (n_trs, n_features)
    train : int array
        Training TR indices of this fold.
    delays : sequence of int
    pca : int, optional
        Number of principal components, fitted on the training TRs.
    space_groups : int array of shape (n_features,), optional
        Feature space of each column; each space is reduced separately by
        ``pca`` (if given) and divided by the square root of its width so
        that spaces weigh equally.

    Returns
    -------
    delayed : float32 array of shape (n_trs, n_components * len(delays))
    """
    features = Pipeline(feature_steps(delays, pca, space_groups)).fit(X[train])
    return features.transform(X).astype(np.float32, copy=False)


def evaluate_encoding(X, fmri, delays=DEFAULT_DELAYS, cv=None, pca=None, fitter=None, train_on="subject",
                      return_predictions=False, progress=True, cache=True, *, space_groups=None):
    """Held-out encoding performance of TR-level features for every subject and ROI.

    Parameters
    ----------
    X : array of shape (n_trs, n_features)
        Stimulus features on the TR grid (not yet delayed).
    fmri : dict {subject: array (n_trs, n_rois)} or array (n_trs, n_rois)
    delays : sequence of int
        FIR delays in TRs.
    cv : None, int or splitter
        The outer folds over time: a splitter such as
        :class:`.cv.GappedKFold` (``n_splits``, ``gap``, ``trim``, ``folds``)
        or :class:`sklearn.model_selection.TimeSeriesSplit`; an int is that
        many gapped contiguous blocks; default 5 blocks of the TRs left
        after :data:`.cv.DEFAULT_TRIM`, with a gap of ``max(delays)`` TRs on
        each side (:func:`.cv.check_splitter`). The result records it
        (``result.cv``), and the noise ceiling and the significance tests
        read their blocks from there. ``GappedKFold(..., folds=[k])`` scores
        only some blocks: for features that are valid for one fold only,
        such as a model fine-tuned on that fold's training TRs
        (:mod:`encoding_kit.brain_tuning`); not with ``return_predictions``.
    pca : int, optional
        Principal components fitted inside each fold.
    fitter : regressor or kit fitter, optional
        The last step of the per-fold pipeline
        (:func:`.fold_loop.make_encoding_pipeline`): a scikit-learn
        regressor (default :class:`.estimators.GappedRidgeCV`, whose
        ``alphas``, ``solver``, ``solver_params`` and ``backend`` set the
        ridge; ``sklearn`` ``Ridge``, ...; a ``cv`` parameter is set to the
        fold's gapped inner splits, :func:`.fold_loop.inner_splitter`), or an
        object with ``fit_predict(X_train, Y_train, X_test, cv)`` returning
        ``(pred, alphas)`` for centred ``Y_train`` (banded ridge, the
        networks).
    train_on : {"subject", "group"}
        ``"subject"`` (default): one model per subject and ROI, fitted to
        that subject's training TRs. ``"group"``: one model per ROI, fitted
        to the mean response of all subjects over the training TRs, and
        scored on every subject's held-out block like the per-subject models
        (no held-out TR of any subject enters the fit). Averaging the
        subjects removes most of the noise from the weights, so weak but
        shared responses are estimated far better; the per-subject alphas
        are then one alpha per ROI, repeated.
    return_predictions : bool
        Keep the held-out predictions (needed for circular-shift tests).
    progress : bool
        Show a progress bar over folds.
    cache : bool
        Reuse a stored result of the same features, data and settings, and
        store new ones (see :mod:`.result_cache`; fitters with
        ``cache_params()``: ridge, banded ridge and the seeded networks).
    space_groups : int array of shape (n_features,), optional
        Feature space of each column, for fused spaces (see :mod:`.fusion`).

    Returns
    -------
    EncodingResult

    Examples
    --------
    The acoustic envelope of the story predicts the early auditory ROIs better than the rest of the cortex:

    >>> import utils
    >>> story = utils.load_story()
    >>> X = utils.audio_features(story.wav, story.sr, story.n_trs)["envelope"]     # (n_trs, 1)
    >>> result = utils.evaluate_encoding(X, story.fmri, cv=3, progress=False)
    >>> result.r.shape                       # held-out r per subject and ROI
    (3, 360)
    >>> table = result.summary().set_index("scope")
    >>> bool(table.loc["early_auditory", "mean_r"] > table.loc["all", "mean_r"])
    True
    """
    if train_on not in TRAIN_ON:
        raise ValueError(f"train_on must be one of {TRAIN_ON}, got {train_on!r}")
    delays = check_delays(delays)
    Y, subjects, n_rois = stack_targets(fmri)
    X = check_features(X, Y.shape[0])
    pca = None if pca is None else check_int(pca, "pca", 1)
    check_fitter(fitter)
    warn_constant_targets(Y, subjects, n_rois)
    longest = max(abs(int(d)) for d in delays)
    if longest >= Y.shape[0]:
        raise ValueError(f"delays reach {longest} TRs back but the data have only {Y.shape[0]} TRs")
    cv = check_splitter(cv, delays)
    if return_predictions and getattr(cv, "folds", None) is not None:
        raise ValueError(f"cv={cv!r} scores a subset of the outer folds and keeps no predictions; "
                         "use return_predictions=False")
    fitter = default_estimator(delays, getattr(cv, "gap", None)) if fitter is None else fitter
    outer = OuterFolds.from_splitter(cv, Y.shape[0], inner_splitter(fitter, cv, delays))
    settings = {"delays": list(map(int, delays)), "cv": splitter_params(cv), "inner_cv": outer.inner_cv.params(),
                "pca": pca, "return_predictions": bool(return_predictions),
                "space_groups": settings_hash(space_groups), "train_on": train_on}
    with timed(getattr(fitter, "run_log_kind", "ridge"), fitter=type(fitter).__name__, features=int(X.shape[1]),
               subjects=len(subjects)) as step:
        folder = encoding_cache_folder(X, Y, subjects, settings, fitter) if cache else None
        cached = load_cached_result(folder, fitter)
        step["cache"] = "off" if folder is None else "miss" if cached is None else "hit"
        step["key"] = None if folder is None else folder.name  # which notebook's fit a hit reuses (run logs)
        if cached is not None:
            cached.cv = cv  # the object itself (its settings are in the key)
            return cached
        mark = fitter_state_mark(fitter)
        pipeline = make_encoding_pipeline(fitter, delays, pca, space_groups)
        result = _cross_validate(pipeline, X, Y, subjects, outer, return_predictions, progress,
                                 group=train_on == "group")
        result.params.update(train_on=train_on, pca=pca, n_alphas=_n_alphas(fitter),
                             fitter=getattr(fitter, "cache_params", lambda: {})())
        save_cached_result(folder, result, fitter, mark)
    return result


def _n_alphas(fitter):
    """Penalties the fitter searches (0 for models without a list; ``alphas=None`` means the default grid)."""
    alphas = getattr(fitter, "alphas", [])
    return len(DEFAULT_ALPHAS if alphas is None else alphas)


def _cross_validate(pipeline, X, Y, subjects, folds, return_predictions, progress, group=False):
    """The outer loop of :func:`evaluate_encoding` (arguments already checked): scores of every fold.

    Parameters
    ----------
    pipeline : Pipeline
        From :func:`.fold_loop.make_encoding_pipeline`.
    X : float32 array of shape (n_trs, n_features)
    Y : float32 array of shape (n_trs, n_subjects * n_rois)
    subjects : list
    folds : OuterFolds
    return_predictions : bool
    progress : bool
    group : bool
        Fit the mean of the subjects (n_trs, n_rois) and score its
        predictions against every subject.

    Returns
    -------
    EncodingResult
    """
    n_rois = Y.shape[1] // len(subjects)
    Y_fit = Y
    if group:  # each fold's subject mean, centred on its training TRs; the subjects' own means are added below
        mean = Y.reshape(Y.shape[0], len(subjects), n_rois).mean(1)
        Y_fit = [mean - mean[train].mean(0) for train, _ in folds.splits]
    n_folds, n_targets, keep = len(folds.splits), Y.shape[1], folds.keep
    r_folds = np.full((n_folds, n_targets), np.nan)
    r2_folds = np.full((n_folds, n_targets), np.nan)
    alpha_folds = np.full((n_folds, n_targets), np.nan)
    predictions = np.zeros((len(keep), n_targets), np.float32) if return_predictions else None
    for fold in fold_predictions(pipeline, X, Y_fit, folds, progress, desc="encoding folds", centred=group):
        pred, test = fold.pred, fold.test
        if group:  # the group model's prediction, scored against each subject (around its own training mean)
            pred = np.tile(pred, len(subjects)) + Y[fold.train].mean(0)
            fold.alphas = np.tile(fold.alphas, len(subjects))
        Y_test = Y[test]
        r_folds[fold.k] = columnwise_r(pred, Y_test)
        r2_folds[fold.k] = columnwise_r2(pred, Y_test)
        alpha_folds[fold.k] = fold.alphas
        if predictions is not None:
            predictions[np.searchsorted(keep, test)] = pred
    shape = (len(subjects), n_rois)
    with quiet_nan_warnings():  # constant ROIs are NaN in every fold (documented, reported by the caller)
        r2 = np.nanmean(r2_folds, axis=0).reshape(shape)
    delays = pipeline.named_steps["delay"].delays
    return EncodingResult(
        r=fisher_mean(r_folds, axis=0).reshape(shape),
        r_folds=r_folds.reshape((n_folds, *shape)),
        r2=r2,
        alphas=alpha_folds.reshape((n_folds, *shape)),
        subjects=subjects,
        roi_names=roi_names() if n_rois == N_ROIS else [f"roi_{i}" for i in range(n_rois)],
        test_trs=keep,
        predictions=None if predictions is None else predictions.reshape((len(keep), *shape)),
        params={"delays": list(map(int, delays)), "cv": splitter_params(folds.cv),
                "inner_cv": folds.inner_cv.params(), "n_trs": int(Y.shape[0]), "n_features": int(X.shape[1])},
        cv=folds.cv,
    )
