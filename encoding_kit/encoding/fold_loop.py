"""The per-fold pipeline and the one outer fold loop of the engine.

Every held-out score of the kit comes from here: encoding
(:func:`encoding_kit.encoding.evaluate.evaluate_encoding`, and through it fusion and
the networks), decoding (:func:`encoding_kit.decoding.linear.evaluate_decoding`) and
the inner held-out predictions of brain tuning. Per outer fold (contiguous
blocks with a gap by default, :class:`encoding_kit.encoding.cv.GappedKFold`, or any splitter):

1. the pipeline's transformers (StandardScaler -> optional PCA -> Delayer)
   are fitted on the training TRs only;
2. they transform the whole time series (the delays need the TRs in order);
   with a gap of at least the longest delay no training row holds a test
   TR's features;
3. the final step is fitted on the training rows, with the fold's gapped
   inner splits as its ``cv``, and predicts the held-out block.

The final step is a scikit-learn regressor (:class:`.estimators.GappedRidgeCV`,
the default, scikit-learn's ``Ridge``, ...) or one of the kit's fitters with
``fit_predict(X_train, Y_train, X_test, cv)`` (banded ridge, the networks:
per-target early stopping keeps each target's test prediction from its own
best epoch, so they predict while fitting).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..core.progress import tqdm
from .cv import DEFAULT_DELAYS, DEFAULT_N_SPLITS, GappedKFold, held_out_blocks, positions
from .estimators import Delayer, FeatureSpaceScaler, FoldPCA, GappedRidgeCV


@dataclass
class OuterFolds:
    """The outer folds of a splitter on one series, and the splitter of each training part's inner folds.

    Attributes
    ----------
    splits : list of (train, test) int arrays
        TR indices, in the order the splitter yields them.
    keep : int array
        The TRs held out by some fold, sorted (each held out once).
    inner_cv : GappedKFold
        Splits each training part (with its hole) for the model's inner CV.
    cv : splitter
        The outer splitter the splits come from.
    """

    splits: list
    keep: np.ndarray
    inner_cv: GappedKFold
    cv: object = None

    @classmethod
    def from_splitter(cls, cv, n_trs, inner_cv):
        """The folds ``cv`` gives on ``n_trs`` TRs (see :func:`.cv.held_out_blocks`)."""
        held_out_blocks(cv, n_trs)  # checks that no TR is held out twice
        splits = [(np.asarray(train, dtype=int), np.asarray(test, dtype=int))
                  for train, test in cv.split(np.zeros((n_trs, 1)))]
        return cls(splits, np.sort(np.concatenate([test for _, test in splits])), inner_cv, cv)

    @property
    def gap(self):
        """The inner splitter's gap in TRs."""
        return self.inner_cv.gap

    def inner(self, train):
        """The inner splits of a training part, as positions into ``train``."""
        try:
            splits = self.inner_cv.split_indices(train)
        except ValueError as exc:
            raise ValueError(f"inner cross-validation: {exc}") from exc
        return [positions(split, train) for split in splits]


def inner_splitter(model, outer_cv, delays=DEFAULT_DELAYS):
    """The splitter of the inner folds: the model's ``cv`` when it is a :class:`.cv.GappedKFold`.

    Otherwise (an int ``cv``, or none) as many gapped folds (default
    :data:`.cv.DEFAULT_N_SPLITS`) with the outer splitter's ``gap`` (the
    longest delay if it has none), so the inner CV is as leak-free as the
    outer one.

    Returns
    -------
    GappedKFold
    """
    params = model.get_params(deep=False) if hasattr(model, "get_params") else {}
    cv = params.get("cv", getattr(model, "cv", None))
    if isinstance(cv, GappedKFold):
        if cv.trim != (0, 0):
            raise ValueError(f"the model's inner cv {cv!r} trims TRs: trimming applies to the outer folds only")
        return cv
    n_splits = int(cv) if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool) else DEFAULT_N_SPLITS
    gap = getattr(outer_cv, "gap", None)
    return GappedKFold(n_splits, max(abs(int(d)) for d in delays) if gap is None else int(gap))


@dataclass
class FoldFit:
    """What one outer fold gives.

    Attributes
    ----------
    k : int
        Position of the fold among the splits.
    train, test : int arrays
        TR indices.
    pred : array of shape (len(test), n_targets)
        Held-out predictions (in the targets' units, their training mean added).
    alphas : array of shape (n_targets,)
        The penalty chosen per target (NaN for models without one).
    model : Pipeline or object
        The fitted pipeline (a kit fitter itself, which keeps its own state).
    """

    k: int
    train: np.ndarray
    test: np.ndarray
    pred: np.ndarray
    alphas: np.ndarray
    model: object


def feature_steps(delays=DEFAULT_DELAYS, pca=None, space_groups=None):
    """The transformers of a fold: StandardScaler -> optional PCA (per space when fused) -> Delayer.

    Parameters
    ----------
    delays : sequence of int
    pca : int, optional
        Principal components fitted on the training TRs (per feature space
        with ``space_groups``).
    space_groups : int array of shape (n_features,), optional
        Space of each column: every space is reduced separately and divided
        by the square root of its width (:class:`.estimators.FeatureSpaceScaler`).

    Returns
    -------
    list of (name, transformer)
    """
    steps = [("scale", StandardScaler())]
    if space_groups is not None:
        steps.append(("spaces", FeatureSpaceScaler(np.asarray(space_groups), pca)))
    elif pca:
        steps.append(("pca", FoldPCA(pca)))
    return steps + [("delay", Delayer(delays))]


def make_encoding_pipeline(estimator=None, delays=DEFAULT_DELAYS, pca=None, space_groups=None):
    """The per-fold encoding model as a :class:`sklearn.pipeline.Pipeline`.

    Parameters
    ----------
    estimator : regressor or kit fitter, optional
        The last step; default :class:`.estimators.GappedRidgeCV` with
        :data:`.cv.DEFAULT_N_SPLITS` inner folds and a gap of the longest delay.
    delays, pca, space_groups
        See :func:`feature_steps`.

    Returns
    -------
    Pipeline
        Steps ``scale``, optional ``pca`` or ``spaces``, ``delay``, ``model``.
    """
    if estimator is None:
        estimator = default_estimator(delays)
    return Pipeline(feature_steps(delays, pca, space_groups) + [("model", estimator)])


def default_estimator(delays=DEFAULT_DELAYS, gap=None):
    """The kit's ridge: :class:`.estimators.GappedRidgeCV` with gapped inner folds (``gap``: the longest delay)."""
    gap = max(abs(int(d)) for d in delays) if gap is None else gap
    return GappedRidgeCV(cv=GappedKFold(DEFAULT_N_SPLITS, gap))


def make_decoding_pipeline(estimator=None, delays=DEFAULT_DELAYS):
    """Brain -> stimulus: standardised ROI responses at TRs ``t + delays`` predict features at TR ``t``.

    Returns
    -------
    Pipeline
        Steps ``scale``, ``delay`` (the negated delays), ``model``.
    """
    if estimator is None:
        estimator = default_estimator(delays)
    steps = [("scale", StandardScaler()), ("delay", Delayer([-int(d) for d in delays]))]
    return Pipeline(steps + [("model", estimator)])


def uses_fit_predict(model):
    """Whether ``model`` is a kit fitter (``fit_predict`` with inner splits) rather than a regressor."""
    return hasattr(model, "fit_predict") and not hasattr(model, "predict")


def fit_predict_fold(pipeline, X, Y, train, test, cv, centred=False):
    """Fit the pipeline on the training TRs of one fold and predict its test TRs.

    Parameters
    ----------
    pipeline : Pipeline
        Transformers, then the model (see :func:`make_encoding_pipeline`).
    X : array of shape (n_trs, n_features)
        The whole time series, in TR order.
    Y : array of shape (n_trs, n_targets)
        Only the ``train`` rows are read.
    train, test : int arrays
        TR indices.
    cv : list of (train, val) positions into ``train``
        Inner gapped splits, the model's ``cv``.
    centred : bool
        ``Y`` is already centred on the training rows: the model is fitted
        without an intercept (``fit_intercept=False`` where it has one) and
        ``pred`` is centred too.

    Returns
    -------
    pred : array of shape (len(test), n_targets)
    alphas : array of shape (n_targets,)
    model : the fitted pipeline, or the kit fitter
    """
    features = clone(pipeline[:-1]).fit(X[train])  # scaler, PCA: training TRs only
    Z = features.transform(X)
    model = pipeline[-1]
    if uses_fit_predict(model):  # stateful across folds (learned epochs, attention): not cloned
        Y_train = Y[train]
        y_mean = 0.0 if centred else Y_train.mean(0)
        Y_train -= y_mean  # a copy (fancy indexing), centred in place
        pred, alphas = model.fit_predict(Z[train], Y_train, Z[test], cv)
        return pred + y_mean, np.asarray(alphas), model
    model = clone(model)
    params = model.get_params()
    if "cv" in params:
        model.set_params(cv=cv)
    if centred and "fit_intercept" in params:
        model.set_params(fit_intercept=False)
    model.fit(Z[train], Y[train])
    pred = np.asarray(model.predict(Z[test])).reshape(len(test), -1)
    alphas = getattr(model, "best_alphas_", None)
    alphas = np.full(pred.shape[1], np.nan) if alphas is None else np.asarray(alphas, float).reshape(-1)
    return pred, alphas, Pipeline(features.steps + [(pipeline.steps[-1][0], model)])


def fold_predictions(pipeline, X, Y, folds, progress=True, desc="folds", centred=False):
    """The one outer fold loop: fit on each fold's training TRs, predict its held-out block.

    Parameters
    ----------
    pipeline : Pipeline
        See :func:`make_encoding_pipeline`.
    X : array of shape (n_trs, n_features)
    Y : array of shape (n_trs, n_targets), or list of such arrays
        The targets; a list gives each fold its own (one per split, e.g.
        stimulus components fitted on that fold's training TRs).
    folds : OuterFolds
    progress : bool
    desc : str
        Label of the progress bar.
    centred : bool
        Each fold's targets are centred on its training rows (see :func:`fit_predict_fold`).

    Yields
    ------
    FoldFit
    """
    for k, (train, test) in enumerate(tqdm(folds.splits, desc=desc, disable=not progress, leave=False)):
        targets = Y[k] if isinstance(Y, (list, tuple)) else Y
        pred, alphas, model = fit_predict_fold(pipeline, X, targets, train, test, folds.inner(train), centred)
        yield FoldFit(k, train, test, pred, alphas, model)
