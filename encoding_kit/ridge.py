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
  (:mod:`encoding_kit.ridge_losses`): its coefficients cost ``rank^2 *
  n_targets`` once, after which an alpha costs ``2 * rank * n_targets``,
  instead of predicting the validation block for every alpha.

Both run on himalaya's backends (numpy, torch, torch_cuda), so a GPU is used
when one is there.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .ridge_losses import SCORES, validation_losses
from .validation import check_alphas

DEFAULT_ALPHAS = np.logspace(-1, 8, 19)
"""Ridge penalties searched per target: 10^-1 .. 10^8 in half-decade steps."""

R_TIE = 1e-6
"""Correlations closer than this count as equal when choosing alpha (the larger one wins)."""


def select_backend(name="auto"):
    """Set and return a himalaya backend, falling back to numpy without a GPU."""
    from himalaya.backend import set_backend

    if name == "auto":
        try:
            import torch

            name = "torch_cuda" if torch.cuda.is_available() else "numpy"
        except ImportError:
            name = "numpy"
    return set_backend(name, on_error="warn")


def spectral_basis(X, backend):
    """Eigendecomposition of the smaller Gram matrix of ``X``, in float64.

    For ``X`` of shape (n, p) with p <= n: ``X'X = V diag(lam) V'``, and
    ``project(Y) = (X V)' Y``, ``rows(Z) = Z V``. For p > n the kernel form
    ``X X' = U diag(lam) U'`` is used, with ``project(Y) = U' Y`` and
    ``rows(Z) = Z X' U``. Either way the ridge prediction of rows ``Z`` at
    penalty ``a`` is ``rows(Z) @ (project(Y) / (lam + a)[:, None])``, the
    same as the thin-SVD formula ``Z V diag(s / (s^2 + a)) U' Y``; forming the
    Gram matrix in float64 keeps float32 inputs accurate.

    Returns
    -------
    lam : array of shape (rank,)
        Eigenvalues (squared singular values), clipped at zero.
    project : callable, (n, n_targets) -> (rank, n_targets)
    rows : callable, (m, p) -> (m, rank)
    to_coefs : callable, (rank, n_targets) -> (p, n_targets)
        Weights on the features from shrunk projections.
    """
    dtype = X.dtype
    if X.shape[1] <= X.shape[0]:
        lam, V = gram_eigh(X, backend)
        XV = backend.matmul(X, V)  # (n, p): projecting 9,000 targets is then one (p, n) x (n, t) product
        return (lam,
                lambda Y: backend.matmul(XV.T, Y),
                lambda Z: backend.matmul(Z, V),
                lambda B: backend.matmul(V, B))
    X64 = backend.asarray(X, dtype=backend.float64)
    lam, U = _eigh(backend)(backend.matmul(X64, X64.T))
    U = backend.asarray(U, dtype=dtype)
    XtU = backend.matmul(X.T, U)
    return (backend.asarray(backend.clip(lam, 0, None), dtype=dtype),
            lambda Y: backend.matmul(U.T, Y),
            lambda Z: backend.matmul(Z, XtU),
            lambda B: backend.matmul(XtU, B))


def gram_eigh(X, backend):
    """Eigenvalues and eigenvectors of ``X'X``, formed and decomposed in float64.

    Parameters
    ----------
    X : array of shape (n, p)

    Returns
    -------
    lam : array of shape (p,)
        Clipped at zero, in ``X``'s dtype.
    V : array of shape (p, p)
        In ``X``'s dtype.
    """
    X64 = backend.asarray(X, dtype=backend.float64)
    lam, V = _eigh(backend)(backend.matmul(X64.T, X64))
    return backend.asarray(backend.clip(lam, 0, None), dtype=X.dtype), backend.asarray(V, dtype=X.dtype)


def _eigh(backend):
    return np.linalg.eigh if backend.name == "numpy" else backend.eigh  # numpy's LAPACK call is ~2x scipy's here


def solve_ridge_cv_lowrank(X, Y, alphas, cv, backend, n_targets_batch=None, score="mse"):
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

    Returns
    -------
    best_alphas : array of shape (n_targets,)
    coefs : array of shape (n_features, n_targets)
    """
    XtY = targets_on_features(X, Y, backend, n_targets_batch) if X.shape[1] <= X.shape[0] else None
    loss = cv_losses(X, Y, alphas, list(cv), backend, n_targets_batch, score, XtY=XtY)
    best, _ = select_alphas(loss, alphas, backend, tie=R_TIE if score == "r" else 0.0)
    return alphas[best], refit_per_alpha(X, Y, alphas, best, backend, XtY=XtY)


def cv_losses(X, Y, alphas, splits, backend, n_targets_batch=None, score="mse", XtY=None):
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
    XtY : array of shape (n_features, n_targets), optional
        ``X' Y`` over all rows, if the caller has it (see :func:`targets_on_features`).

    Returns
    -------
    loss : array of shape (n_splits, n_alphas, n_targets)
    """
    n_targets = Y.shape[1]
    batch = n_targets_batch or n_targets
    loss = backend.zeros_like(Y, shape=(len(splits), len(alphas), n_targets))
    primal = features_narrower_than_training(X, splits)
    if primal and XtY is None:
        XtY = targets_on_features(X, Y, backend, n_targets_batch)
    for s, (train, val) in enumerate(splits):
        if primal:
            lam, V = gram_eigh(X[train], backend)
            held = np.setdiff1d(np.arange(X.shape[0]), train)  # validation and gap rows
            gap = np.setdiff1d(held, val)
            Xval = X[val]
            A = backend.matmul(Xval, V)  # (n_val, rank)
        else:
            lam, project, rows, _ = spectral_basis(X[train], backend)
            A, Ytrain = rows(X[val]), Y[train]
        Yvalid = Y[val]
        for start in range(0, n_targets, batch):
            cols = slice(start, start + batch)
            Yval, AtY = Yvalid[:, cols], None
            if primal:
                XvY = backend.matmul(Xval.T, Yval)
                XtY_train = XtY[:, cols] - XvY
                if len(gap):
                    XtY_train = XtY_train - backend.matmul(X[gap].T, Y[gap][:, cols])
                B = backend.matmul(V.T, XtY_train)  # (rank, batch)
                AtY = backend.matmul(V.T, XvY) if X.shape[1] <= len(val) else None  # else A'Y is cheaper
            else:
                B = project(Ytrain[:, cols])
            split_loss = validation_losses(A, B, Yval, lam, alphas, backend, score, AtY=AtY)
            split_loss = split_loss / len(val) if score == "mse" else split_loss
            loss[s, :, cols] = backend.asarray(split_loss, dtype=loss.dtype)
    return loss


def features_narrower_than_training(X, splits):
    """Whether every split trains on at least as many rows as ``X`` has columns (the ``X'X`` form applies)."""
    return all(X.shape[1] <= len(train) for train, _ in splits)


def targets_on_features(X, Y, backend, n_targets_batch=None):
    """``X' Y``, batch of targets by batch, array of shape (n_features, n_targets)."""
    batch = n_targets_batch or Y.shape[1]
    return backend.concatenate([backend.matmul(X.T, Y[:, start:start + batch])
                                for start in range(0, Y.shape[1], batch)], 1)


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


def refit_per_alpha(X, Y, alphas, best, backend, XtY=None):
    """Ridge weights on all rows, each target with its own alpha.

    Parameters
    ----------
    XtY : array of shape (n_features, n_targets), optional
        ``X' Y``, if the caller has it (features narrower than the rows only).

    Returns
    -------
    coefs : array of shape (n_features, n_targets)
    """
    if XtY is not None:
        lam, V = gram_eigh(X, backend)
        B = backend.matmul(V.T, XtY)
        to_coefs = partial(backend.matmul, V)
    else:
        lam, project, _, to_coefs = spectral_basis(X, backend)
        B = project(Y)
    shrink = 1.0 / (lam[:, None] + alphas[backend.asarray(best)][None, :])  # (rank, n_targets): each its own alpha
    return to_coefs(B * backend.asarray(shrink, dtype=B.dtype))


class RidgeFitter:
    """Per-target ridge with inner-CV alpha choice.

    Parameters
    ----------
    alphas : array of shape (n_alphas,)
    backend : {"auto", "numpy", "torch", "torch_cuda"}
        ``"auto"`` uses ``torch_cuda`` when a GPU is available, else numpy.
    n_targets_batch : int, optional
        Targets solved at once (memory bound on a GPU).
    solver : {"svd", "himalaya"}
        ``"svd"``: the kit's rank-space path (same result, cheaper for
        features narrower than the training set); ``"himalaya"``:
        :func:`himalaya.ridge.solve_ridge_cv_svd`.
    score : {"mse", "r"}
        What the inner CV optimises per target: the squared error (default,
        himalaya's rule; also right for R^2 and variance partitioning), or
        the held-out correlation (``"r"``, the rule of the Gallant lab's
        bootstrap ridge). Measured on the demo: ``"r"`` raises the mean r of
        the benchmark's 1,000 mostly-distractor columns (0.0202 -> 0.0222)
        but lowers it on the stand-in layers (whisper layer 2: 0.0145 ->
        0.0142), so it is not the default.
    """

    def __init__(self, alphas=DEFAULT_ALPHAS, backend="auto", n_targets_batch=None, solver="svd", score="mse"):
        if solver not in ("svd", "himalaya"):
            raise ValueError(f"solver must be 'svd' or 'himalaya', got {solver!r}")
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        self.alphas = check_alphas(alphas).astype(np.float32)
        self.backend = backend
        self.n_targets_batch = n_targets_batch
        self.solver = solver
        self.score = score

    def cache_params(self):
        """What changes this fitter's results (the backend does not, up to float rounding)."""
        return {"alphas": [float(a) for a in self.alphas], "solver": self.solver, "score": self.score}

    def fit_predict(self, X_train, Y_train, X_test, cv):
        """Fit on training rows (centred), choose alphas by ``cv``, predict test rows.

        Parameters
        ----------
        X_train : array of shape (n_train, n_features)
        Y_train : array of shape (n_train, n_targets)
        X_test : array of shape (n_test, n_features)
        cv : list of (train, val) index arrays into the training rows

        Returns
        -------
        pred : array of shape (n_test, n_targets)
        alphas : array of shape (n_targets,)
        """
        backend = select_backend(self.backend)
        Xtr, Ytr, Xte = (backend.asarray(a) for a in (X_train, Y_train, X_test))
        alphas = backend.asarray(self.alphas)
        if self.solver == "svd":
            best, coefs = solve_ridge_cv_lowrank(Xtr, Ytr, alphas, cv, backend, self.n_targets_batch, self.score)
        else:
            from himalaya.ridge import solve_ridge_cv_svd
            from himalaya.scoring import correlation_score, l2_neg_loss

            best, coefs, _ = solve_ridge_cv_svd(
                Xtr, Ytr, alphas=alphas, cv=cv, local_alpha=True, n_targets_batch=self.n_targets_batch,
                score_func=correlation_score if self.score == "r" else l2_neg_loss,
                n_targets_batch_refit=self.n_targets_batch, warn=False,
            )
        pred = backend.matmul(Xte, backend.asarray(coefs))
        return backend.to_numpy(pred), backend.to_numpy(best)
