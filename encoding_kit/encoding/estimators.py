"""The engine as scikit-learn objects: a FIR ``Delayer`` and the kit's ridge, ``GappedRidgeCV``.

Both follow scikit-learn's estimator API (``get_params``/``set_params``,
``fit``, ``transform`` or ``predict``/``score``, fitted attributes ending in
``_``), like himalaya's ``RidgeCV`` and voxelwise_tutorials' ``Delayer``, so
they go into a :class:`sklearn.pipeline.Pipeline` with any scaler, PCA or
other estimator::

    make_pipeline(StandardScaler(), Delayer(delays=[1, 2, 3, 4]), GappedRidgeCV())

:func:`encoding_kit.encoding.fold_loop.make_encoding_pipeline` builds that pipeline
and :func:`encoding_kit.encoding.fold_loop.fold_predictions` runs it over the outer
gapped folds.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted, validate_data

from ..core.validation import check_alphas, check_delays
from .cv import DEFAULT_DELAYS, inner_splits, make_delays
from .ridge import DEFAULT_ALPHAS, check_backend, select_backend, solve_ridge_cv
from .ridge_losses import SCORES

DEFAULT_GAP = max(DEFAULT_DELAYS)
"""TRs dropped around each inner validation block by default: the longest default delay."""


class Delayer(TransformerMixin, BaseEstimator):
    """Time-shifted copies of the features: a finite impulse response (FIR) model.

    Row ``t`` of the block of delay ``d`` holds ``X[t - d]``, zeros where
    ``t - d`` falls outside the rows (causal for ``d >= 0``: the response
    at TR ``t`` sees the stimulus ``d`` TRs earlier). The same as
    :func:`encoding_kit.encoding.cv.make_delays`. Rows must be consecutive TRs of one
    run: delay the whole time series, then select training or test rows.

    Parameters
    ----------
    delays : sequence of int
        Delays in TRs (negative ones shift the features earlier, as a decoder
        reading the responses after the stimulus does).

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : array of str
        Only when ``X`` had column names.
    """

    def __init__(self, delays=DEFAULT_DELAYS):
        self.delays = delays

    def fit(self, X, y=None):
        """Check the delays and record the number of features; nothing is learned.

        Parameters
        ----------
        X : array of shape (n_trs, n_features)
        y : ignored

        Returns
        -------
        self
        """
        check_delays(self.delays, allow_negative=True)
        validate_data(self, X, dtype="numeric")
        return self

    def transform(self, X):
        """Delayed features.

        Parameters
        ----------
        X : array of shape (n_trs, n_features)

        Returns
        -------
        array of shape (n_trs, n_features * len(delays))
            Blocks in the order of ``delays``; the dtype of ``X``.
        """
        check_is_fitted(self, "n_features_in_")
        X = validate_data(self, X, dtype="numeric", reset=False)
        return make_delays(X, self.delays)

    def get_feature_names_out(self, input_features=None):
        """Names ``<feature>_delay<d>``, blocks in the order of ``delays``.

        Returns
        -------
        array of str of shape (n_features * len(delays),)
        """
        check_is_fitted(self, "n_features_in_")
        if input_features is None:
            input_features = getattr(self, "feature_names_in_", [f"x{i}" for i in range(self.n_features_in_)])
        if len(input_features) != self.n_features_in_:
            raise ValueError(f"input_features has {len(input_features)} names, expected {self.n_features_in_}")
        return np.asarray([f"{name}_delay{d}" for d in check_delays(self.delays, allow_negative=True)
                           for name in input_features], dtype=object)


class GappedRidgeCV(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Ridge with one penalty per target, chosen by a gapped contiguous inner CV.

    The kit's solver (:mod:`encoding_kit.encoding.ridge`): every target (subject x
    ROI) gets the alpha of its best mean inner validation score over
    ``alphas``, then all targets are refitted on every row in one solve. All
    targets share the features, so thousands of them cost little more than
    one. Rows are consecutive TRs: each inner validation block is a
    contiguous stretch with ``gap`` rows dropped on each side, so the
    training rows share no delayed stimulus or slow noise with it.

    Parameters
    ----------
    alphas : array of shape (n_alphas,), optional
        Penalties searched per target; default :data:`encoding_kit.encoding.ridge.DEFAULT_ALPHAS`
        (10^-1 .. 10^8, 19 values).
    cv : int or iterable of (train, val) index arrays
        Number of gapped contiguous inner folds over the rows, or the splits
        themselves (positions into the rows, as
        :func:`encoding_kit.encoding.cv.inner_splits` gives for training sets with a
        hole where the outer test block was).
    gap : int
        Rows dropped on each side of each inner validation block when ``cv``
        is an int; the longest delay in TRs (default 4).
    fit_intercept : bool
        Centre the targets on their training mean (``intercept_``) before
        the fit; the features are used as given, so centre them first (the
        kit's pipeline standardises them before delaying).
    backend : {"auto", "numpy", "torch", "torch_cuda"}
        himalaya backend; ``"auto"``: ``torch_cuda`` when a GPU is there.
    solver : {"svd", "himalaya"}
        The kit's rank-space solver, or :func:`himalaya.ridge.solve_ridge_cv_svd`
        (same alphas and predictions).
    scoring : {"mse", "r"}
        What the inner CV optimises per target (``score`` of :class:`encoding_kit.encoding.ridge.RidgeFitter`).
    n_targets_batch : int, optional
        Targets solved at once (bounds memory on a GPU).
    dtype : {"float32", "float64"}
        Working precision of ``X`` and ``y``. Splits whose spectrum is
        ill-conditioned for float32 are scored and refitted in float64 anyway.

    Attributes
    ----------
    best_alphas_ : array of shape (n_targets,)
    cv_scores_ : float64 array of shape (n_targets,)
        Mean inner validation score at each target's alpha (minus the mean
        squared error, or the correlation for ``scoring="r"``).
    coef_ : array of shape (n_features, n_targets)
        ``(n_features,)`` when ``y`` was 1-D.
    intercept_ : array of shape (n_targets,)
        The training mean of each target (zeros without ``fit_intercept``).
    n_features_in_ : int
    """

    def __init__(self, alphas=None, cv=5, gap=DEFAULT_GAP, fit_intercept=True, backend="auto",
                 solver="svd", scoring="mse", n_targets_batch=None, dtype="float32"):
        self.alphas = alphas
        self.cv = cv
        self.gap = gap
        self.fit_intercept = fit_intercept
        self.backend = backend
        self.solver = solver
        self.scoring = scoring
        self.n_targets_batch = n_targets_batch
        self.dtype = dtype

    def _check_params(self):
        for name, value, allowed in (("solver", self.solver, ("svd", "himalaya")), ("scoring", self.scoring, SCORES),
                                     ("dtype", self.dtype, ("float32", "float64"))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        check_backend(self.backend)
        return check_alphas(DEFAULT_ALPHAS if self.alphas is None else self.alphas).astype(self.dtype)

    def _inner_splits(self, X):
        """The inner (train, val) position arrays of this fit."""
        if isinstance(self.cv, (int, np.integer)) and not isinstance(self.cv, bool):
            return inner_splits(np.arange(len(X)), int(self.cv), self.gap)
        splits = list(self.cv.split(X) if hasattr(self.cv, "split") else self.cv)
        if not splits or any(np.max(np.r_[tr, va]) >= len(X) for tr, va in splits):
            raise ValueError(f"cv must be an int or (train, val) positions into the {len(X)} rows, found {self.cv!r}")
        return splits

    def fit(self, X, y):
        """Choose each target's alpha by the inner CV and refit on all rows.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        y : array of shape (n_samples, n_targets) or (n_samples,)

        Returns
        -------
        self
        """
        alphas = self._check_params()
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.dtype(self.dtype))
        if len(X) < 2:
            raise ValueError(f"GappedRidgeCV needs at least 2 samples for its inner CV, got n_samples={len(X)}")
        y = np.asarray(y, dtype=self.dtype)
        Y = y[:, None] if y.ndim == 1 else y
        splits = self._inner_splits(X)
        self.intercept_ = Y.mean(0) if self.fit_intercept else np.zeros(Y.shape[1], Y.dtype)
        if self.fit_intercept:
            Y = Y - self.intercept_
        backend = select_backend(self.backend)
        best, coefs, self.cv_scores_ = solve_ridge_cv(backend.asarray(X), backend.asarray(Y), backend.asarray(alphas),
                                                      splits, backend, self.solver, self.scoring, self.n_targets_batch)
        self.best_alphas_ = backend.to_numpy(best)
        self.coef_ = backend.to_numpy(coefs)
        if y.ndim == 1:
            self.coef_, self.intercept_ = self.coef_[:, 0], self.intercept_[0]
            self.best_alphas_, self.cv_scores_ = self.best_alphas_[0], self.cv_scores_[0]
        return self

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)

        Returns
        -------
        array of shape (n_samples, n_targets), or (n_samples,) when fitted on a 1-D ``y``
        """
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, dtype=np.dtype(self.dtype), reset=False)
        backend = select_backend(self.backend)
        pred = backend.to_numpy(backend.matmul(backend.asarray(X), backend.asarray(self.coef_)))
        return pred + self.intercept_

    def cache_params(self):
        """What changes the results (for :mod:`encoding_kit.encoding.result_cache`); the backend does not, up to rounding."""
        return {"alphas": [float(a) for a in self._check_params()], "solver": self.solver, "score": self.scoring,
                "fit_intercept": bool(self.fit_intercept), "dtype": self.dtype}


class FoldPCA(TransformerMixin, BaseEstimator):
    """Principal components fitted on the rows given to ``fit`` (a fold's training TRs).

    Features no wider than ``n_components``, or fitted on no more rows than
    that, are passed through whole (there is nothing to reduce).

    Parameters
    ----------
    n_components : int
    random_state : int

    Attributes
    ----------
    pca_ : sklearn.decomposition.PCA or None
        ``None`` when the features are passed through.
    """

    def __init__(self, n_components=50, random_state=0):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit the PCA on ``X`` (array of shape (n_samples, n_features)); returns self."""
        X = validate_data(self, X, dtype=[np.float32, np.float64])
        reduce = self.n_components < min(X.shape)
        self.pca_ = PCA(n_components=self.n_components, random_state=self.random_state).fit(X) if reduce else None
        return self

    def transform(self, X):
        """Components, array of shape (n_samples, n_components), or ``X`` unchanged."""
        check_is_fitted(self, "pca_")
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        return X if self.pca_ is None else self.pca_.transform(X)


class FeatureSpaceScaler(TransformerMixin, BaseEstimator):
    """Fused feature spaces weighed equally: per-space PCA, then each space divided by sqrt(its width).

    Under one ridge penalty a 768-column text space would drown a 128-column
    audio space; scaling every space to the same total variance (after
    standardising the columns) gives each the same weight. The PCA of each
    space is fitted on the rows given to ``fit`` only.

    Parameters
    ----------
    groups : int array of shape (n_features,)
        Space index (0, 1, ...) of every column.
    n_components : int, optional
        Components kept per space (spaces no wider are used whole).
    random_state : int

    Attributes
    ----------
    pcas_ : list of (PCA or None)
        One per space.
    """

    def __init__(self, groups, n_components=None, random_state=0):
        self.groups = groups
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit each space's PCA on ``X`` (array of shape (n_samples, n_features)); returns self."""
        X = validate_data(self, X, dtype=[np.float32, np.float64])
        groups = np.asarray(self.groups)
        if groups.shape != (X.shape[1],):
            raise ValueError(f"groups must give the space of each of the {X.shape[1]} columns, found shape "
                             f"{groups.shape}")
        self.pcas_ = []
        for g in range(int(groups.max()) + 1):
            # C order (column selection gives Fortran order): LAPACK's last bits depend on the layout, and the
            # engine has always fitted on rows selected from the column block, which are C-ordered
            block = np.ascontiguousarray(X[:, groups == g])
            wide = self.n_components and block.shape[1] > self.n_components
            self.pcas_.append(PCA(n_components=self.n_components, random_state=self.random_state).fit(block)
                              if wide else None)
        return self

    def transform(self, X):
        """Reduced, equally weighted spaces side by side: float32 array of shape (n_samples, n_out)."""
        check_is_fitted(self, "pcas_")
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        groups = np.asarray(self.groups)
        blocks = []
        for g, pca in enumerate(self.pcas_):
            block = X[:, groups == g] if pca is None else pca.transform(X[:, groups == g])
            blocks.append(block / np.sqrt(block.shape[1]))
        return np.concatenate(blocks, axis=1).astype(np.float32)
