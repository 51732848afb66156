"""Float64 spectral bases of the ridge solver, and when float32 is precise enough.

The eigendecomposition of a Gram matrix is always done in float64. Its
spectrum then decides the working dtype of the projections and scoring
(:func:`working_dtype`): the inputs' own dtype (float32, fast) when it is
well conditioned, float64 otherwise.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

FLOAT32_CONDITION = 1e5
"""Condition number ``lam_max / (lam_min + min(alphas))`` of a Gram matrix above which the solve runs in float64.

Measured on random designs of the tests' size (250 rows, 40-200 columns
scaled or rotated, 100 targets, noise of R^2 <= 0.9) with the float32 path
forced: no target picked a worse alpha than the float64 brute force up to
1.5e6; from 2.4e6 some did (1 % of targets, loss +6e-4), at 2e8 - 2e9 up to
26 % of them (loss up to +26 %). The benchmark's standardised, delayed
columns (``benchmarks/time_kit_ridge.py``) are near 1e4.
"""


def spectral_basis(X, backend, alphas=None):
    """Eigendecomposition of the smaller Gram matrix of ``X``, computed in float64.

    For ``X`` of shape (n, p) with p <= n: ``X'X = V diag(lam) V'``, and
    ``project(Y) = (X V)' Y``, ``rows(Z) = Z V``. For p > n the kernel form
    ``X X' = U diag(lam) U'`` is used, with ``project(Y) = U' Y`` and
    ``rows(Z) = Z X' U``. Either way the ridge prediction of rows ``Z`` at
    penalty ``a`` is ``rows(Z) @ (project(Y) / (lam + a)[:, None])``, the
    same as the thin-SVD formula ``Z V diag(s / (s^2 + a)) U' Y``; forming the
    Gram matrix in float64 keeps float32 inputs accurate.

    Parameters
    ----------
    X : array of shape (n, p)
    backend : himalaya backend module
    alphas : array of shape (n_alphas,), optional
        If given, the basis stays in float64 when the spectrum is too
        ill-conditioned for ``X``'s dtype (see :func:`working_dtype`).

    Returns
    -------
    lam : array of shape (rank,)
        Eigenvalues (squared singular values), clipped at zero, in the working dtype.
    project : callable, (n, n_targets) -> (rank, n_targets)
    rows : callable, (m, p) -> (m, rank)
    to_coefs : callable, (rank, n_targets) -> (p, n_targets)
        Weights on the features from shrunk projections.
    Each callable casts its argument to the working dtype.
    """
    if X.shape[1] <= X.shape[0]:
        lam, V = gram_eigh(X, backend, alphas)
        XV = backend.matmul(backend.asarray(X, dtype=V.dtype), V)  # projecting 9,000 targets: one (p, n) x (n, t)
        return (lam,
                lambda Y: backend.matmul(XV.T, backend.asarray(Y, dtype=V.dtype)),
                lambda Z: backend.matmul(backend.asarray(Z, dtype=V.dtype), V),
                lambda B: backend.matmul(V, B))
    X64 = backend.asarray(X, dtype=backend.float64)
    lam, U = _eigh(backend)(backend.matmul(X64, X64.T))
    lam = backend.clip(lam, 0, None)
    dtype = X.dtype if alphas is None else working_dtype(lam, alphas, X.dtype, backend)
    U = backend.asarray(U, dtype=dtype)
    XtU = backend.matmul(backend.asarray(X64, dtype=dtype).T, U)
    return (backend.asarray(lam, dtype=dtype),
            lambda Y: backend.matmul(U.T, backend.asarray(Y, dtype=dtype)),
            lambda Z: backend.matmul(backend.asarray(Z, dtype=dtype), XtU),
            lambda B: backend.matmul(XtU, B))


def gram_eigh(X, backend, alphas=None):
    """Eigenvalues and eigenvectors of ``X'X``, formed and decomposed in float64.

    Parameters
    ----------
    X : array of shape (n, p)
    backend : himalaya backend module
    alphas : array of shape (n_alphas,), optional
        If given, the result stays in float64 when the spectrum is too
        ill-conditioned for ``X``'s dtype (see :func:`working_dtype`).

    Returns
    -------
    lam : array of shape (p,)
        Clipped at zero, in ``X``'s dtype or float64.
    V : array of shape (p, p)
        In the same dtype as ``lam``.
    """
    X64 = backend.asarray(X, dtype=backend.float64)
    return gram_eigh_of(backend.matmul(X64.T, X64), X.dtype, backend, alphas)


def gram_eigh_of(gram, dtype, backend, alphas=None):
    """Eigenvalues and eigenvectors of a float64 Gram matrix ``X'X`` already formed (see :func:`gram_eigh`).

    Parameters
    ----------
    gram : float64 array of shape (p, p)
    dtype : the dtype of ``X`` (the working dtype when the spectrum allows it)
    backend : himalaya backend module
    alphas : array of shape (n_alphas,), optional

    Returns
    -------
    lam : array of shape (p,)
    V : array of shape (p, p)
    """
    lam, V = _eigh(backend)(gram)
    lam = backend.clip(lam, 0, None)
    dtype = dtype if alphas is None else working_dtype(lam, alphas, dtype, backend)
    return backend.asarray(lam, dtype=dtype), backend.asarray(V, dtype=dtype)


def working_dtype(lam, alphas, dtype, backend):
    """``dtype``, or float64 when the spectrum ``lam`` is too ill-conditioned for it.

    The condition number that matters for ridge is ``max(lam) / (min(lam) +
    min(alphas))``: directions far below the smallest penalty are shrunk away
    and cannot spoil the others. Above :data:`FLOAT32_CONDITION` the float32
    eigenvectors leak the large directions into the small ones.

    Parameters
    ----------
    lam : array of shape (rank,)
        Eigenvalues, clipped at zero.
    alphas : array of shape (n_alphas,)
    dtype : dtype of the inputs
    backend : himalaya backend module

    Returns
    -------
    dtype or ``backend.float64``
    """
    lam_np = backend.to_numpy(lam).astype(np.float64)
    floor = lam_np.min() + float(backend.to_numpy(alphas).astype(np.float64).min())
    if lam_np.max() <= FLOAT32_CONDITION * floor:
        return dtype
    return backend.float64


def _eigh(backend):
    """The backend's symmetric eigendecomposition: MKL's (``mkl_backend``), numpy's LAPACK (~2x scipy's here), or the
    backend's own."""
    if getattr(backend, "kit_blas", None) == "mkl":
        return backend.eigh
    return np.linalg.eigh if backend.name == "numpy" else backend.eigh


class Float64Copies:
    """``X``, ``Y`` and ``X'Y`` in float64, each made on first use (for ill-conditioned splits only).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    Y : array of shape (n_samples, n_targets)
    backend : himalaya backend module
    n_targets_batch : int, optional
    """

    def __init__(self, X, Y, backend, n_targets_batch=None):
        self._X, self._Y, self._backend, self._batch = X, Y, backend, n_targets_batch

    @cached_property
    def X(self):
        """array of shape (n_samples, n_features)"""
        return self._backend.asarray(self._X, dtype=self._backend.float64)

    @cached_property
    def Y(self):
        """array of shape (n_samples, n_targets)"""
        return self._backend.asarray(self._Y, dtype=self._backend.float64)

    @cached_property
    def XtY(self):
        """array of shape (n_features, n_targets)"""
        return targets_on_features(self.X, self.Y, self._backend, self._batch)


def rows_of(A, rows):
    """``A[rows]``: a view when ``rows`` is a run of consecutive indices (a validation block), else a copy.

    Parameters
    ----------
    A : array of shape (n_samples, ...)
    rows : int array of shape (n_rows,)

    Returns
    -------
    array of shape (n_rows, ...)
    """
    rows = np.asarray(rows)
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and (np.diff(rows) == 1).all():
        return A[int(rows[0]):int(rows[-1]) + 1]
    return A[rows]


def targets_on_features(X, Y, backend, n_targets_batch=None):
    """``X' Y``, batch of targets by batch, array of shape (n_features, n_targets)."""
    batch = n_targets_batch or Y.shape[1]
    return backend.concatenate([backend.matmul(X.T, Y[:, start:start + batch])
                                for start in range(0, Y.shape[1], batch)], 1)


class SplitProducts:
    """The products of the features with themselves and the targets that every inner split reuses.

    ``gram`` (``X'X`` of all rows, float64) gives each split's training Gram
    matrix by subtracting its held-out rows' (``p^2 * n_held`` instead of
    ``p^2 * n_train``) and is the refit's Gram matrix itself. When the
    validation blocks do not overlap (gapped K-fold) and every target is
    solved at once, ``X'Y`` of all rows is the sum of the validation blocks'
    ``X_val' Y_val`` (which each split needs anyway) and of the rows in no
    block, instead of a product over all rows.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    Y : array of shape (n_samples, n_targets)
    splits : list of (train, val) integer index arrays into the rows
    backend : himalaya backend module
    n_targets_batch : int, optional

    Attributes
    ----------
    gram : float64 array of shape (n_features, n_features)
    XtY : array of shape (n_features, n_targets)
    XvY : list of arrays of shape (n_features, n_targets), or None
        ``X_val' Y_val`` of each split (None when the blocks overlap or the targets come in batches).
    float64 : Float64Copies
        ``X``, ``Y`` and ``X'Y`` in float64, made on first use (by splits ill-conditioned for float32).
    """

    def __init__(self, X, Y, splits, backend, n_targets_batch=None):
        X64 = backend.asarray(X, dtype=backend.float64)
        self.gram = backend.matmul(X64.T, X64)
        self.float64 = Float64Copies(X, Y, backend, n_targets_batch)
        vals = [np.asarray(val) for _, val in splits]
        every = np.concatenate(vals) if vals else np.zeros(0, int)
        disjoint = len(np.unique(every)) == len(every)
        if disjoint and (n_targets_batch or Y.shape[1]) >= Y.shape[1] and splits:
            self.XvY = [backend.matmul(rows_of(X, val).T, rows_of(Y, val)) for val in vals]
            XtY = backend.copy(self.XvY[0])
            for part in self.XvY[1:]:
                XtY += part
            rest = np.setdiff1d(np.arange(X.shape[0]), every)
            if len(rest):
                XtY += backend.matmul(X[rest].T, Y[rest])
            self.XtY = XtY
        else:
            self.XvY = None
            self.XtY = targets_on_features(X, Y, backend, n_targets_batch)

    def training_gram(self, X64_held):
        """``X_train' X_train`` in float64 from the held-out rows ``X64_held`` (float64, shape (n_held, p))."""
        return self.gram - X64_held.T @ X64_held if len(X64_held) else self.gram
