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
  float64), with the targets projected once (rank x n_targets) so that each
  alpha only rescales the rank components: ``n_alphas * n_val * rank *
  n_targets``. Features narrower than the training set (a 64-dim layer with
  4 delays, PCA-reduced layers, baselines) cost a fraction of the
  hat-matrix path.

Both run on himalaya's backends (numpy, torch, torch_cuda), so a GPU is used
when one is there.
"""

from __future__ import annotations

import numpy as np

DEFAULT_ALPHAS = np.logspace(-1, 8, 19)
"""Ridge penalties searched per target: 10^-1 .. 10^8 in half-decade steps."""


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
    eigh = np.linalg.eigh if backend.name == "numpy" else backend.eigh  # numpy's LAPACK call is ~2x scipy's here
    X64 = backend.asarray(X, dtype=backend.float64)
    if X.shape[1] <= X.shape[0]:
        lam, V = eigh(backend.matmul(X64.T, X64))
        V = backend.asarray(V, dtype=dtype)
        XV = backend.matmul(X, V)  # (n, p): projecting 9,000 targets is then one (p, n) x (n, t) product
        return (backend.asarray(backend.clip(lam, 0, None), dtype=dtype),
                lambda Y: backend.matmul(XV.T, Y),
                lambda Z: backend.matmul(Z, V),
                lambda B: backend.matmul(V, B))
    lam, U = eigh(backend.matmul(X64, X64.T))
    U = backend.asarray(U, dtype=dtype)
    XtU = backend.matmul(X.T, U)
    return (backend.asarray(backend.clip(lam, 0, None), dtype=dtype),
            lambda Y: backend.matmul(U.T, Y),
            lambda Z: backend.matmul(Z, XtU),
            lambda B: backend.matmul(XtU, B))


def _column_sq_sum(A, backend):
    """Sum of squares of each column, without a temporary on numpy."""
    return _column_dot(A, A, backend)


class _SplitScorer:
    """Squared validation error of chosen alphas and targets on one inner split.

    ``A``: (n_val, rank) validation rows in the spectral basis; ``B``: (rank,
    n_targets) projected training targets; ``shrink``: (n_alphas, rank). Two
    exact ways, the cheaper one is used:

    * from the predictions themselves, ``|y - (A * d) b|^2``: cost ``n_val *
      rank`` per alpha and target;
    * through the validation Gram matrix, ``|y|^2 - 2 d.(A'y * b) + b' (d d' *
      A'A) b``: cost ``rank^2`` per alpha and target, cheaper when the rank is
      below the number of validation rows (narrow or PCA-reduced features).
    """

    def __init__(self, A, B, Yval, shrink, backend):
        self.A, self.B, self.Yval, self.shrink, self.backend = A, B, Yval, shrink, backend
        self.gram = A.shape[1] < A.shape[0]
        if self.gram:
            self.G = backend.matmul(A.T, A)  # (rank, rank)
            self.cross = backend.matmul(A.T, Yval) * B  # (rank, n_targets)
            self.base = _column_sq_sum(Yval, backend)

    def __call__(self, alpha_idx, targets=None):
        """Loss of shape (len(alpha_idx), n_targets), or of the ``targets`` positions only."""
        backend, pick = self.backend, (lambda a: a if targets is None else a[..., targets])
        B = pick(self.B)
        out = backend.zeros_like(B, shape=(len(alpha_idx), B.shape[1]))
        if self.gram:
            cross, base = pick(self.cross), pick(self.base)
        else:
            Yval = pick(self.Yval)
        for i, a in enumerate(alpha_idx):
            d = self.shrink[int(a)]
            if self.gram:
                M = backend.matmul(self.G * (d[:, None] * d[None, :]), B)
                out[i] = base - 2 * backend.matmul(d[None, :], cross)[0] + _column_dot(M, B, backend)
            else:
                resid = backend.matmul(self.A * d, B)
                resid -= Yval
                out[i] = _column_sq_sum(resid, backend)
        return out


def _column_dot(A, B, backend):
    """Dot product of matching columns of two arrays of one shape."""
    if backend.name == "numpy":
        return np.einsum("ij,ij->j", A, B)
    return (A * B).sum(0)


def solve_ridge_cv_lowrank(X, Y, alphas, cv, backend, n_targets_batch=None, search="refine"):
    """Per-target alpha by inner CV (mean squared error), then refit on all rows.

    The selection rule is himalaya's ``solve_ridge_cv_svd`` with
    ``local_alpha=True`` and ``fit_intercept=False``: mean validation loss
    over splits, ties broken towards the larger alpha.

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
    search : {"refine", "grid"}
        How the alpha grid is scored (see :func:`cv_losses`).

    Returns
    -------
    best_alphas : array of shape (n_targets,)
    coefs : array of shape (n_features, n_targets)
    """
    loss = cv_losses(X, Y, alphas, list(cv), backend, n_targets_batch, search)
    best, _ = select_alphas(loss, alphas, backend)
    return alphas[best], refit_per_alpha(X, Y, alphas, best, backend)


def cv_losses(X, Y, alphas, splits, backend, n_targets_batch=None, search="refine"):
    """Mean squared validation error of the alphas, per split and target.

    Parameters
    ----------
    search : {"refine", "grid"}
        ``"grid"`` scores every alpha. ``"refine"`` scores every other alpha
        first, then, per target, the two neighbours of its best one: the same
        choice as the full grid whenever the split-mean loss has a single
        minimum along the grid (checked in ``tests/test_ridge.py`` and
        ``benchmarks/bench_encoding.py``), for about 12 of 19 scorings.

    Returns
    -------
    loss : array of shape (n_splits, n_alphas, n_targets)
        ``inf`` where an alpha was not scored for a target.
    """
    if search not in ("refine", "grid"):
        raise ValueError(f"search must be 'refine' or 'grid', got {search!r}")
    n_targets = Y.shape[1]
    batch = n_targets_batch or n_targets
    loss = backend.zeros_like(Y, shape=(len(splits), len(alphas), n_targets))
    bases = [_split_basis(X, train, val, alphas, backend) for train, val in splits]
    coarse = np.arange(0, len(alphas), 2 if search == "refine" else 1)
    for start in range(0, n_targets, batch):
        cols = slice(start, min(start + batch, n_targets))
        scorers = [_split_scorer(base, Y[train, cols], Y[val, cols], backend)
                   for base, (train, val) in zip(bases, splits)]
        part = loss[:, :, cols]
        if len(coarse) < len(alphas):
            part[:] = np.inf
        for s, score in enumerate(scorers):
            part[s, backend.asarray(coarse)] = score(coarse)
        if len(coarse) < len(alphas):
            _refine_neighbours(part, scorers, coarse, alphas, backend)
    return loss


def _refine_neighbours(loss, scorers, coarse, alphas, backend):
    """Score the unscored grid neighbours of each target's best coarse alpha, in place."""
    coarse_idx = backend.asarray(coarse)
    best = coarse[backend.to_numpy(select_alphas(loss[:, coarse_idx], alphas[coarse_idx], backend)[0])]
    for a in range(loss.shape[1]):
        if a in coarse:
            continue
        idx = np.flatnonzero(np.abs(best - a) == 1)
        if len(idx):
            cols = backend.asarray(idx)
            for s, score in enumerate(scorers):
                loss[s, a, cols] = score([a], idx)[0]


def _split_basis(X, train, val, alphas, backend):
    """What one inner split needs for every target batch: shrinkage, validation rows, projector."""
    lam, project, rows, _ = spectral_basis(X[train], backend)
    return {"shrink": 1.0 / (alphas[:, None] + lam), "A": rows(X[val]), "project": project, "n_val": len(val)}


def _split_scorer(base, Ytrain, Yvalid, backend):
    """A function ``score(alpha_indices, target_positions=None) -> (n, n_targets) mean loss`` for one split."""
    scorer = _SplitScorer(base["A"], base["project"](Ytrain), Yvalid, base["shrink"], backend)

    def score(alpha_idx, targets=None):
        return scorer(alpha_idx, None if targets is None else backend.asarray(targets)) / base["n_val"]

    return score


def select_alphas(loss, alphas, backend):
    """Best alpha per target: lowest mean loss over splits, ties to the larger alpha (himalaya's rule).

    Returns
    -------
    best : int array of shape (n_targets,)
        Index into ``alphas``.
    best_loss : array of shape (n_targets,)
        Mean validation loss at the best alpha.
    """
    mean_loss = backend.mean_float64(loss, axis=0)
    best = backend.argmax(-(mean_loss - (backend.log(alphas) * 1e-10)[:, None]), 0)
    return best, backend.to_numpy(mean_loss)[backend.to_numpy(best), np.arange(mean_loss.shape[1])]


def refit_per_alpha(X, Y, alphas, best, backend):
    """Ridge weights on all rows, each target with its own alpha.

    Returns
    -------
    coefs : array of shape (n_features, n_targets)
    """
    lam, project, _, to_coefs = spectral_basis(X, backend)
    B = project(Y)
    coefs = backend.zeros_like(Y, shape=(X.shape[1], Y.shape[1]))
    best_np = backend.to_numpy(best)
    for a in np.unique(best_np):
        idx = backend.asarray(np.flatnonzero(best_np == a))
        coefs[:, idx] = to_coefs(B[:, idx] / (alphas[int(a)] + lam)[:, None])
    return coefs


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
    search : {"refine", "grid"}
        ``"svd"`` solver only: score every other alpha, then each target's
        two neighbours of its best (``"refine"``), or every alpha (``"grid"``);
        see :func:`cv_losses`.
    """

    def __init__(self, alphas=DEFAULT_ALPHAS, backend="auto", n_targets_batch=None, solver="svd", search="refine"):
        if solver not in ("svd", "himalaya"):
            raise ValueError(f"solver must be 'svd' or 'himalaya', got {solver!r}")
        if search not in ("refine", "grid"):
            raise ValueError(f"search must be 'refine' or 'grid', got {search!r}")
        self.alphas = np.asarray(alphas, dtype=np.float32)
        self.backend = backend
        self.n_targets_batch = n_targets_batch
        self.solver = solver
        self.search = search

    def cache_params(self):
        """What changes this fitter's results (the backend does not, up to float rounding)."""
        return {"alphas": [float(a) for a in self.alphas], "solver": self.solver,
                "search": self.search if self.solver == "svd" else "grid"}

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
            best, coefs = solve_ridge_cv_lowrank(Xtr, Ytr, alphas, cv, backend, self.n_targets_batch, self.search)
        else:
            from himalaya.ridge import solve_ridge_cv_svd

            best, coefs, _ = solve_ridge_cv_svd(
                Xtr, Ytr, alphas=alphas, cv=cv, local_alpha=True, n_targets_batch=self.n_targets_batch,
                n_targets_batch_refit=self.n_targets_batch, warn=False,
            )
        pred = backend.matmul(Xte, backend.asarray(coefs))
        return backend.to_numpy(pred), backend.to_numpy(best)
