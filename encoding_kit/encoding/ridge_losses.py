"""Validation losses of every ridge penalty from one eigendecomposition.

The inner CV of :mod:`encoding_kit.encoding.ridge` scores 19 alphas for 9,000
targets on every split. Predicting the validation block for each alpha
(:func:`validation_losses_direct`, the reference) costs ``n_alphas * n_val
* rank * n_targets``; :func:`validation_losses` gets the same numbers from
simple fractions of alpha, at ``rank^2 * n_targets`` once plus ``2 * rank *
n_targets`` per alpha.
"""

from __future__ import annotations

import numpy as np

from .scores import column_dot

SCORES = ("mse", "r")
"""How the inner CV scores an alpha: held-out correlation (the number reported) or squared error (for R^2)."""


def validation_losses_direct(A, B, Yval, shrink, backend):
    """Squared validation error of every alpha from the predictions themselves (the reference).

    ``A``: (n_val, rank) validation rows in the spectral basis; ``B``: (rank,
    n_targets) projected training targets; ``shrink``: (n_alphas, rank), the
    factors ``1 / (lam + alpha)``. Cost ``n_alphas * n_val * rank * n_targets``.

    Returns
    -------
    loss : array of shape (n_alphas, n_targets)
    """
    out = backend.zeros_like(B, shape=(len(shrink), B.shape[1]))
    for a in range(len(shrink)):
        resid = backend.matmul(A * shrink[a], B)
        resid -= Yval
        out[a] = _column_sq_sum(resid, backend)
    return out


def validation_losses(A, B, Yval, lam, alphas, backend, score="mse", tol=1e-7, close=1e-3, AtY=None):
    """Squared validation error of every alpha at once, from simple fractions of alpha.

    With ``d_k = 1 / (lam_k + alpha)``, ``c = (A' y) * b`` and ``G = A' A``::

        |y - A diag(d) b|^2 = |y|^2 - 2 sum_k d_k c_k + sum_kl d_k d_l G_kl b_k b_l

    and for ``lam_k != lam_l``, ``d_k d_l = (d_k - d_l) / (lam_l - lam_k)``, so
    the last sum is ``sum_k d_k u_k + ...`` with ``u = 2 b * (H b)`` and
    ``H_kl = G_kl / (lam_l - lam_k)``: ``u`` and ``c`` cost one product each
    (``rank^2 * n_targets`` and ``n_val * rank * n_targets``), after which
    every alpha costs ``2 * rank * n_targets``, instead of predicting the
    validation block for every alpha (:func:`validation_losses_direct`,
    ``n_val * rank * n_targets`` per alpha).

    Precision: the fractions of a pair of eigenvalues cancel, amplifying
    rounding by ``(lam + alpha) / |lam_k - lam_l|``. Pairs closer than
    ``close`` are summed exactly as ``d_k d_l`` in float64. Equal eigenvalues
    (runs within ``tol`` of each other: duplicated columns, or a whole
    feature space that banded ridge weights down to nothing, far below the
    smallest alpha) share one ``d``, so each run is one block
    ``d^2 |A_C b_C|^2`` (one product per run, not one per pair). For
    ``"mse"``, ``H b`` is computed in float32 (the quadratic term only
    matters where it is not tiny next to ``|y|^2``); for ``"r"``, which
    divides by it, in float64. On the demo's layers the result is
    within 3e-6 of the float64 predictions and picks the same alphas for every
    target, where the direct way in float32 differs for 0.3 % of them
    (``tests/test_ridge.py``).

    The terms that depend on the split only (``G``, ``H``, ``d``, the close
    pairs and equal runs) are :class:`FractionLosses`, which the inner CV
    forms once per split and calls on one chunk of targets after another.

    Parameters
    ----------
    A : array of shape (n_val, rank)
        Validation rows in the spectral basis.
    B : array of shape (rank, n_targets)
        Projected training targets.
    Yval : array of shape (n_val, n_targets)
    lam : array of shape (rank,)
        Eigenvalues of the training Gram matrix.
    alphas : array of shape (n_alphas,)
    backend : himalaya backend module
    score : {"mse", "r"}
        ``"mse"``: squared error; ``"r"``: minus the Pearson correlation of
        the predictions with the data over the validation rows (the same
        fractions, with rows centred: ``A'y`` and ``|A d b|^2`` of centred
        ``A`` and ``y``). Targets without variance score 0.
    tol, close : float
        Relative gaps (to ``max(lam_k, lam_l) + min(alphas)``) below which two
        eigenvalues count as equal, or as close.
    AtY : array of shape (rank, n_targets), optional
        ``A' Yval`` when the caller has it already (uncentred rows).

    Returns
    -------
    loss : float64 array of shape (n_alphas, n_targets)
    """
    return FractionLosses(A, lam, alphas, backend, score, tol, close)(B, Yval, AtY)


class FractionLosses:
    """The losses of :func:`validation_losses` on one split, for any chunk of its targets.

    Everything that depends on the validation rows and the spectrum alone
    (``G = A'A``, ``H``, the factors ``d`` of every alpha, the close pairs and
    the runs of equal eigenvalues) is formed here once; each call then costs
    the products of its own targets, so the inner CV can score a split in
    chunks of targets small enough to stay in the CPU's cache.

    Parameters
    ----------
    A : array of shape (n_val, rank)
        Validation rows in the spectral basis.
    lam : array of shape (rank,)
    alphas : array of shape (n_alphas,)
    backend : himalaya backend module
    score : {"mse", "r"}
    tol, close : float
        See :func:`validation_losses`.
    """

    def __init__(self, A, lam, alphas, backend, score="mse", tol=1e-7, close=1e-3):
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        self.backend, self.score = backend, score
        f64 = backend.float64
        lam64 = backend.to_numpy(lam).astype(np.float64)
        alpha64 = backend.to_numpy(alphas).astype(np.float64)
        if score == "r":  # correlation: centre the validation rows, prediction and data alike
            self._A_sum = A.sum(0)[:, None]
            A = A - A.mean(0)
        self.A = A
        A64 = backend.to_numpy(A).astype(np.float64)
        G = A64.T @ A64
        gap = lam64[None, :] - lam64[:, None]
        cluster = _equal_eigenvalue_clusters(lam64, tol * alpha64.min(), tol)
        same = cluster[:, None] == cluster[None, :]
        near = ~same & (np.abs(gap) <= close * (np.maximum.outer(lam64, lam64) + alpha64.min()))
        H = np.where(same | near, 0.0, G / np.where(same | near, 1.0, gap))
        # "r" divides by the quadratic term: H b in float64, since at alphas far above the eigenvalues the
        # fractions of every pair cancel to ~1 / alpha^2
        self._exact = score == "r"
        self._H = backend.asarray(H, dtype=f64 if self._exact else A.dtype)
        d = 1.0 / (alpha64[:, None] + lam64[None, :])  # (n_alphas, rank)
        self._d = backend.asarray(d, dtype=f64)
        self._d2 = backend.asarray(2 * d, dtype=f64)  # u = 2 b * (H b): the 2 rides on d (exact)
        # the diagonal terms G_kk b_k^2 d_k^2 are all positive: float32 is enough
        self._d_sq_g = backend.asarray(d ** 2 * np.diag(G)[None, :], dtype=A.dtype)
        ks, ls = np.nonzero(np.triu(near))  # close pairs, exactly in float64: 2 G_kl b_k b_l d_k d_l
        self._pairs = []
        for start in range(0, len(ks), 256):  # 256 at a time
            k, l_ = ks[start:start + 256], ls[start:start + 256]
            self._pairs.append((k, l_, backend.asarray(2 * G[k, l_], dtype=f64)[:, None],
                                backend.asarray(d[:, k] * d[:, l_], dtype=f64)))
        work = f64 if self._exact else A.dtype
        self._runs = [(backend.asarray(members), backend.asarray(A64[:, members], dtype=work),
                       backend.asarray(np.diag(G)[members], dtype=f64)[:, None],
                       backend.asarray(d[:, members[0]] ** 2, dtype=f64)[:, None])
                      for members in _cluster_members(cluster)]

    def __call__(self, B, Yval, AtY=None):
        """Loss of every alpha for the targets of ``B`` and ``Yval``.

        Parameters
        ----------
        B : array of shape (rank, n_targets)
            Projected training targets.
        Yval : array of shape (n_val, n_targets)
        AtY : array of shape (rank, n_targets), optional
            ``A' Yval`` (uncentred rows), when the caller has it.

        Returns
        -------
        loss : float64 array of shape (n_alphas, n_targets)
        """
        backend, f64 = self.backend, self.backend.float64
        if self.score == "r":
            if AtY is not None:  # (A - 1 mean(A))'(Y - 1 mean(Y)) = A'Y - sum(A)' mean(Y)
                AtY = AtY - self._A_sum * Yval.mean(0)[None, :]
            Yval = Yval - Yval.mean(0)
        AtY = backend.matmul(self.A.T, Yval) if AtY is None else AtY
        y_sq = _column_sq_sum(backend.asarray(Yval, dtype=f64), backend)[None, :]
        if self.score == "mse":  # |y|^2 - 2 d.c + d.u = |y|^2 + 2 d.(b * (H b - A'y)), in place
            u = backend.matmul(self._H, B)
            u -= AtY
            u *= B
            loss = backend.matmul(self._d2, backend.asarray(u, dtype=f64))
            loss += self._quadratic_rest(B, B)
            loss += y_sq
            return loss
        cross = backend.matmul(self._d, backend.asarray(AtY * B, dtype=f64))  # (n_alphas, n_targets)
        B64 = backend.asarray(B, dtype=f64)
        u = backend.matmul(self._H, B64)
        u *= B64
        quad = backend.matmul(self._d2, u)
        quad += self._quadratic_rest(B, B64)
        r = cross / backend.sqrt(backend.clip(quad * y_sq, 1e-300, None))
        return -backend.asarray(r, dtype=f64)

    def _quadratic_rest(self, B, Bh):
        """The terms of ``|A diag(d) b|^2`` besides ``d . u``: the diagonal, the close pairs, the equal runs.

        ``B`` in the working dtype, ``Bh`` in the dtype of ``H``; float64 array of shape (n_alphas, n_targets).
        """
        backend, f64 = self.backend, self.backend.float64
        rest = backend.asarray(backend.matmul(self._d_sq_g, B * B), dtype=f64)
        for k, l_, coef, dd in self._pairs:
            rest += backend.matmul(dd, coef * backend.asarray(B[k] * B[l_], dtype=f64))
        for idx, A_run, g_run, d_sq in self._runs:  # equal eigenvalues share d_k: d^2 (|A_C b_C|^2 - sum G_kk b_k^2)
            Bc = Bh[idx]
            off = backend.asarray(_column_sq_sum(backend.matmul(A_run, Bc), backend), dtype=f64)
            Bc64 = backend.asarray(Bc, dtype=f64)
            off = off - backend.asarray(_column_dot(g_run * Bc64, Bc64, backend), dtype=f64)
            rest += d_sq * off[None, :]
        return rest


def _equal_eigenvalue_clusters(lam64, floor, tol):
    """Cluster label of every eigenvalue: runs of sorted eigenvalues within ``tol`` (relative) of the run's first.

    Relative to ``lam + floor``, so eigenvalues far below the smallest alpha
    (rank-deficient directions, a space weighted down to nothing in banded
    ridge) form one cluster.
    """
    order = np.argsort(lam64)
    labels = np.empty(len(lam64), int)
    label, first = -1, -np.inf
    for k in order:
        if lam64[k] - first > tol * lam64[k] + floor:
            label, first = label + 1, lam64[k]
        labels[k] = label
    return labels


def _cluster_members(labels):
    """Index arrays of the clusters with more than one member."""
    counts = np.bincount(labels)
    return [np.flatnonzero(labels == c) for c in np.flatnonzero(counts > 1)]


def _column_sq_sum(A, backend):
    """Sum of squares of each column, without a temporary on numpy."""
    return _column_dot(A, A, backend)


def _column_dot(A, B, backend):
    """Dot product of matching columns of two arrays of one shape."""
    if backend.name == "numpy":
        return column_dot(A, B)
    return (A * B).sum(0)
