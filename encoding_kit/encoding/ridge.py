"""Per-target ridge with inner cross-validated alphas.

Two solvers give the same alphas and predictions (see
``tests/test_ridge.py`` and ``benchmarks/bench_encoding.py``):

* ``"himalaya"``: :func:`himalaya.ridge.solve_ridge_cv_svd`. For every inner
  split it forms the hat matrices ``X_val (X'X + a I)^-1 X'`` of all alphas,
  shape (n_alphas, n_val, n_train), and multiplies them with the 9,000
  training targets: a cost of ``n_alphas * n_val * n_train * n_targets``
  whatever the rank of the features.
* ``"svd"`` (default): the same spectral solution, computed from the
  eigendecomposition of the smaller Gram matrix (``X'X`` or ``XX'``, in
  float64), with the targets projected once (rank x n_targets). The
  validation loss of every alpha is then a sum of simple fractions of alpha
  (:mod:`encoding_kit.encoding.ridge_losses`): its coefficients cost ``rank^2 *
  n_targets`` once, after which an alpha costs ``2 * rank * n_targets``,
  instead of predicting the validation block for every alpha.

Shared products (:class:`~encoding_kit.encoding.ridge_spectral.SplitProducts`): ``X'X`` of all rows
in float64 is formed once, each split's training Gram matrix is it minus the held-out rows' (and the
refit's is it); ``X'Y`` of all rows is the sum of the validation blocks' ``X_val'Y_val``, which the
splits need anyway (gapped folds: blocks that do not overlap). On the profiles' evaluation
(``benchmarks/bench_ridge_engine.py``) this picks the same alphas as solving each split afresh.
On the CPU each split is then scored in chunks of :data:`SCORING_CHUNK` targets, with the terms that
depend on the split alone formed once (:class:`~encoding_kit.encoding.ridge_losses.FractionLosses`):
the temporaries stay in the cache instead of being allocated, paged in and converted to float64 at
the width of all 9,000 targets.

Precision: the eigendecomposition is always done in float64. When its
spectrum is ill-conditioned for float32 (largest eigenvalue over the
smallest plus the smallest alpha above :data:`FLOAT32_CONDITION`, e.g. columns
scaled from 1e-4 to 1e4), the projections and the scoring of that split, and
the refit, run in float64 too; the coefficients are cast back once. Rounding
the eigenvectors to float32 mixes the large directions into the small ones,
which then pick alphas whose inner-CV loss is tens of percent above the best
(``tests/test_ridge.py``). Well-conditioned inputs (standardised features)
keep the float32 path.

Both run on himalaya's backends (numpy, torch, torch_cuda), so a GPU is used
when one is there.
"""

from __future__ import annotations

import contextlib
from functools import partial

import numpy as np

from ..core.runtime import RIDGE_BACKENDS, ridge_backend
from .mkl_backend import ridge_numpy_backend
from .ridge_losses import FractionLosses
from .ridge_spectral import (  # noqa: F401 (re-exported: fusion and the tests import them from here)
    FLOAT32_CONDITION,
    Float64Copies,
    SplitProducts,
    gram_eigh,
    gram_eigh_of,
    rows_of,
    spectral_basis,
    targets_on_features,
    working_dtype,
)

DEFAULT_ALPHAS = np.logspace(-1, 8, 19)
"""Ridge penalties searched per target: 10^-1 .. 10^8 in half-decade steps."""

R_TIE = 1e-6
"""Correlations closer than this count as equal when choosing alpha (the larger one wins)."""


BACKENDS = RIDGE_BACKENDS
"""Backend names: ``"auto"`` (CUDA torch when a GPU is there, else numpy) and himalaya's."""
_FELL_BACK = set()


def check_backend(name):
    """``name`` if it is one of :data:`BACKENDS`, else one ``ValueError`` naming the argument."""
    if not isinstance(name, str) or name not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, found {name!r}")
    return name


def select_backend(name="auto"):
    """The himalaya backend module for ``name``; himalaya's global backend is left as it was.

    ``"auto"`` is resolved by :func:`encoding_kit.core.runtime.ridge_backend`
    (``torch_cuda`` with a GPU, else ``numpy``). A backend that cannot load
    here (no GPU, no cupy) gives the numpy backend and one warning per name.
    The numpy backend does its products and eigendecompositions on MKL where
    that is faster (:mod:`encoding_kit.encoding.mkl_backend`).

    Returns
    -------
    module
        A himalaya backend (``asarray``, ``matmul``, ``to_numpy``, ...).
    """
    import importlib
    import warnings

    name = ridge_backend(check_backend(name))
    try:
        module = importlib.import_module(f"himalaya.backend.{name}")
    except Exception as exc:  # ImportError (no cupy), RuntimeError (no CUDA), ...
        if name not in _FELL_BACK:  # asked for every fold: said once
            _FELL_BACK.add(name)
            warnings.warn(f"backend {name!r} is not available here ({exc}); using the numpy backend", stacklevel=2)
        module = importlib.import_module("himalaya.backend.numpy")
    return ridge_numpy_backend(module) if module.name == "numpy" else module


@contextlib.contextmanager
def himalaya_backend(backend):
    """himalaya's global backend set to ``backend`` (a module) inside the block, and restored after it.

    Only himalaya's own solvers (``solve_ridge_cv_svd``, ``GroupRidgeCV``)
    read the global backend; the kit passes its backend explicitly.
    """
    from himalaya.backend import get_backend, set_backend

    before = get_backend()
    set_backend(backend)
    try:
        yield backend
    finally:
        set_backend(before)


def solve_ridge_cv_lowrank(X, Y, alphas, cv, backend, n_targets_batch=None, score="mse", return_loss=False):
    """Per-target alpha by inner CV, then refit on all rows.

    The selection rule is himalaya's ``solve_ridge_cv_svd`` with
    ``local_alpha=True`` and ``fit_intercept=False``: mean validation score
    over splits (``score="r"``: its ``correlation_score``; ``"mse"``: its
    default ``l2_neg_loss``), ties broken towards the larger alpha.

    Parameters
    ----------
    X : backend array of shape (n_samples, n_features)
    Y : backend array of shape (n_samples, n_targets)
        Centred by the caller.
    alphas : backend array of shape (n_alphas,)
    cv : iterable of (train, val) integer index arrays into the rows
    backend : himalaya backend module
    n_targets_batch : int, optional
        Targets scored at once (bounds memory on a GPU).
    score : {"mse", "r"}
    return_loss : bool
        Also return the mean validation loss at each target's alpha.

    Returns
    -------
    best_alphas : array of shape (n_targets,)
    coefs : array of shape (n_features, n_targets)
    best_loss : float64 array of shape (n_targets,)
        Only with ``return_loss``.
    """
    splits = list(cv)
    products = (SplitProducts(X, Y, splits, backend, n_targets_batch)
                if features_narrower_than_training(X, splits) else None)
    loss = cv_losses(X, Y, alphas, splits, backend, n_targets_batch, score, products=products)
    best, best_loss = select_alphas(loss, alphas, backend, tie=R_TIE if score == "r" else 0.0)
    coefs = (refit_per_alpha(X, Y, alphas, best, backend, XtY=products.XtY, gram=products.gram)
             if products is not None else refit_per_alpha(X, Y, alphas, best, backend))
    return (alphas[best], coefs, np.asarray(best_loss, np.float64)) if return_loss else (alphas[best], coefs)


def solve_ridge_cv(X, Y, alphas, cv, backend, solver="svd", score="mse", n_targets_batch=None):
    """Per-target alphas by inner CV and the refitted weights, with either solver.

    Parameters
    ----------
    X : backend array of shape (n_samples, n_features)
    Y : backend array of shape (n_samples, n_targets)
        Centred by the caller.
    alphas : backend array of shape (n_alphas,)
    cv : list of (train, val) integer index arrays into the rows
    backend : himalaya backend module
    solver : {"svd", "himalaya"}
        The kit's rank-space path (:func:`solve_ridge_cv_lowrank`) or
        :func:`himalaya.ridge.solve_ridge_cv_svd`.
    score : {"mse", "r"}
    n_targets_batch : int, optional

    Returns
    -------
    best_alphas : backend array of shape (n_targets,)
    coefs : backend array of shape (n_features, n_targets)
    cv_scores : float64 array of shape (n_targets,)
        Mean inner validation score at each target's alpha, higher is better
        (minus the mean squared error, or the correlation), as himalaya's
        ``cv_scores_``.
    """
    if solver == "svd":
        best, coefs, loss = solve_ridge_cv_lowrank(X, Y, alphas, cv, backend, n_targets_batch, score,
                                                   return_loss=True)
        return best, coefs, -loss
    from himalaya.ridge import solve_ridge_cv_svd
    from himalaya.scoring import correlation_score, l2_neg_loss

    with himalaya_backend(backend):
        best, coefs, scores = solve_ridge_cv_svd(
            X, Y, alphas=alphas, cv=cv, local_alpha=True, n_targets_batch=n_targets_batch,
            score_func=correlation_score if score == "r" else l2_neg_loss,
            n_targets_batch_refit=n_targets_batch, warn=False,
        )
    return best, coefs, np.asarray(backend.to_numpy(scores), np.float64).reshape(-1)


def cv_losses(X, Y, alphas, splits, backend, n_targets_batch=None, score="mse", products=None, scale=None):
    """Validation loss of every alpha, split and target.

    When the features are narrower than every inner training set (the usual
    case), the training targets are projected from ``X'Y`` of all rows minus
    the rows each split holds out (validation and gap): ``p * n_held *
    n_targets`` per split instead of ``p * n_train * n_targets``.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    Y : array of shape (n_samples, n_targets)
    alphas : array of shape (n_alphas,)
    splits : list of (train, val) integer index arrays into the rows
    backend : himalaya backend module
    n_targets_batch : int, optional
    score : {"mse", "r"}
        Mean squared error, or minus the correlation (see :func:`validation_losses`).
    products : SplitProducts, optional
        ``X'X`` and ``X'Y`` over all rows (and the validation blocks' ``X_val' Y_val``), if the caller has them
        (features narrower than every training set only).
    scale : array of shape (n_features,), optional
        Score the columns of ``X`` multiplied by ``scale`` (banded ridge's
        space weights). With ``products`` (of the unscaled ``X``) nothing of
        the size of the targets is recomputed: the scaled Gram matrix is
        ``diag(s) X'X diag(s)``, and its eigenvectors ``V`` act on the scaled
        columns as ``diag(s) V`` does on the unscaled ones, so ``X'Y`` and the
        validation blocks' ``X_val' Y_val`` of the unscaled columns serve
        every scale.

    Splits whose training Gram matrix is ill-conditioned for ``X``'s dtype
    (:func:`working_dtype`) are projected and scored in float64.

    Returns
    -------
    loss : float64 array of shape (n_splits, n_alphas, n_targets)
    """
    n_targets = Y.shape[1]
    step = scoring_chunk(backend, n_targets_batch or n_targets)
    loss = backend.zeros_like(Y, shape=(len(splits), len(alphas), n_targets), dtype=backend.float64)
    primal = features_narrower_than_training(X, splits)
    if not primal and scale is not None:
        X, scale = X * scale, None
    if primal and products is None:
        products = SplitProducts(X, Y, splits, backend, n_targets_batch)
    exact = products.float64 if primal else Float64Copies(X, Y, backend, n_targets_batch)  # ill-conditioned splits
    for s, (train, val) in enumerate(splits):
        if primal:
            held = np.setdiff1d(np.arange(X.shape[0]), train)  # validation and gap rows
            gap = np.setdiff1d(held, val)
            gram = products.training_gram(backend.asarray(X[held], dtype=backend.float64))
            lam, V = gram_eigh_of(gram if scale is None else scaled_gram(gram, scale, backend), X.dtype, backend,
                                  alphas)
            well = lam.dtype == X.dtype
            Xs, Ys, XtYs = (X, Y, products.XtY) if well else (exact.X, exact.Y, exact.XtY)
            if scale is not None:  # the scaled columns' basis, on the unscaled ones: diag(s) V
                V = V * backend.asarray(scale, dtype=V.dtype)[:, None]
            Xval, Xgap, Ygap = rows_of(Xs, val), Xs[gap].T, Ys[gap]
            A = backend.matmul(Xval, V)  # (n_val, rank)
            XvY_all = products.XvY[s] if well and products.XvY is not None else None
        else:
            lam, project, rows, _ = spectral_basis(X[train], backend, alphas)
            Xs, Ys = (X, Y) if lam.dtype == X.dtype else (exact.X, exact.Y)
            A, Ytrain = rows(Xs[val]), Ys[train]
        losses = FractionLosses(A, lam, alphas, backend, score)
        Yvalid = rows_of(Ys, val)  # a view of the block: no copy of 9,000 targets
        for start in range(0, n_targets, step):
            cols = slice(start, start + step)
            Yval, AtY = Yvalid[:, cols], None
            if primal:
                XvY = XvY_all[:, cols] if XvY_all is not None else backend.matmul(Xval.T, Yval)
                XtY_train = XtYs[:, cols] - XvY
                if len(gap):
                    XtY_train -= backend.matmul(Xgap, Ygap[:, cols])
                B = backend.matmul(V.T, XtY_train)  # (rank, step)
                AtY = backend.matmul(V.T, XvY) if X.shape[1] <= len(val) else None  # else A'Y is cheaper
            else:
                B = project(Ytrain[:, cols])
            split_loss = losses(B, Yval, AtY)
            if score == "mse":
                split_loss /= len(val)
            loss[s, :, cols] = split_loss
    return loss


SCORING_CHUNK = 1024
"""Targets scored at once on the CPU (numpy backend): each split's products and losses come in chunks of this
many targets, whose temporaries stay in the cache instead of being allocated (and paged in) at full width."""


def scoring_chunk(backend, batch):
    """Targets per chunk of the inner CV's scoring: ``batch``, at most :data:`SCORING_CHUNK` on numpy."""
    return min(batch, SCORING_CHUNK) if backend.name == "numpy" else batch


def scaled_gram(gram, scale, backend):
    """``diag(s) X'X diag(s)``: the float64 Gram matrix of the columns of ``X`` multiplied by ``scale`` (shape (p,))."""
    s64 = backend.asarray(scale, dtype=backend.float64)
    return gram * s64[:, None] * s64[None, :]


def features_narrower_than_training(X, splits):
    """Whether every split trains on at least as many rows as ``X`` has columns (the ``X'X`` form applies)."""
    return all(X.shape[1] <= len(train) for train, _ in splits)


def select_alphas(loss, alphas, backend, tie=0.0):
    """Best alpha per target: lowest mean loss over splits, ties to the larger alpha (himalaya's rule).

    Parameters
    ----------
    loss : array of shape (n_splits, n_alphas, n_targets)
    alphas : array of shape (n_alphas,)
    tie : float
        Mean losses within ``tie`` of the lowest count as equal, and the
        largest of those alphas is taken. A correlation flattens out at large
        alphas (the predictions only shrink), where float rounding would
        otherwise decide; ``0`` keeps himalaya's rule exactly.

    Returns
    -------
    best : int array of shape (n_targets,)
        Index into ``alphas``.
    best_loss : array of shape (n_targets,)
        Mean validation loss at the best alpha.
    """
    mean_loss = backend.mean_float64(loss, axis=0)
    if tie > 0:
        mean_np, alpha_np = backend.to_numpy(mean_loss), backend.to_numpy(alphas).astype(np.float64)
        tied = mean_np <= mean_np.min(0, keepdims=True) + tie
        best_np = np.where(tied, alpha_np[:, None], -np.inf).argmax(0)
        return backend.asarray(best_np), mean_np[best_np, np.arange(mean_np.shape[1])]
    best = backend.argmax(-(mean_loss - (backend.log(alphas) * 1e-10)[:, None]), 0)
    return best, backend.to_numpy(mean_loss)[backend.to_numpy(best), np.arange(mean_loss.shape[1])]


def refit_per_alpha(X, Y, alphas, best, backend, XtY=None, gram=None):
    """Ridge weights on all rows, each target with its own alpha.

    Parameters
    ----------
    XtY : array of shape (n_features, n_targets), optional
        ``X' Y``, if the caller has it (features narrower than the rows only).
    gram : float64 array of shape (n_features, n_features), optional
        ``X' X`` in float64, if the caller has it (with ``XtY`` only).

    An ill-conditioned ``X`` (:func:`working_dtype`) is solved in float64.

    Returns
    -------
    coefs : array of shape (n_features, n_targets)
        In ``X``'s dtype.
    """
    if XtY is not None:
        lam, V = gram_eigh(X, backend, alphas) if gram is None else gram_eigh_of(gram, X.dtype, backend, alphas)
        if lam.dtype != XtY.dtype:  # ill-conditioned: X'Y again, in float64
            XtY = targets_on_features(backend.asarray(X, dtype=lam.dtype), backend.asarray(Y, dtype=lam.dtype),
                                      backend)
        B = backend.matmul(V.T, XtY)
        to_coefs = partial(backend.matmul, V)
    else:
        lam, project, _, to_coefs = spectral_basis(X, backend, alphas)
        B = project(Y)
    chosen = backend.asarray(alphas[backend.asarray(best)], dtype=lam.dtype)
    shrink = 1.0 / (lam[:, None] + chosen[None, :])  # (rank, n_targets): each its own alpha
    return backend.asarray(to_coefs(B * shrink), dtype=X.dtype)
