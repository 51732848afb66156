"""Fusing feature spaces: scaled concatenation, banded ridge, variance partitioning.

* Concatenation: each space is standardised and divided by the square root
  of its width inside each fold, so a 768-d text space does not drown a
  128-d audio space under one shared ridge penalty.
* Banded ridge (himalaya ``GroupRidgeCV``): one penalty per feature space and
  target, chosen by the same inner gapped CV (Nunez-Elizalde et al., 2019).
* Variance partitioning: held-out R^2 of A, B and A+B give the variance each
  space explains uniquely and the shared part (de Heer et al., 2017).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.storage import hash_array
from ..core.validation import check_alphas
from .cv import DEFAULT_DELAYS
from .estimators import GappedRidgeCV
from .evaluate import evaluate_encoding
from .ridge import (
    DEFAULT_ALPHAS,
    R_TIE,
    SplitProducts,
    cv_losses,
    features_narrower_than_training,
    himalaya_backend,
    refit_per_alpha,
    select_alphas,
    select_backend,
)


def concat_spaces(spaces):
    """Concatenate feature spaces given as {name: array (n_trs, n_i)}.

    Returns
    -------
    X : float32 array of shape (n_trs, sum(n_i))
    groups : int array of shape (sum(n_i),)
        Index of the space of each column (in the order of ``spaces``).
    """
    arrays = [np.asarray(a, dtype=np.float32).reshape(len(a), -1) for a in spaces.values()]
    n_trs = {a.shape[0] for a in arrays}
    if len(n_trs) != 1:
        raise ValueError(f"feature spaces have different TR counts: { {k: len(a) for k, a in spaces.items()} }")
    groups = np.concatenate([np.full(a.shape[1], i) for i, a in enumerate(arrays)])
    return np.concatenate(arrays, axis=1), groups


def solve_banded_ridge_cv(X, Y, groups, alphas, cv, backend, n_iter=20, concentration=(0.1, 1.0), random_state=0,
                          n_targets_batch=None, score="mse"):
    """Banded ridge by random search over the space weights, scored with the kit's ridge CV.

    The algorithm of himalaya's ``solve_group_ridge_random_search``: space
    weights ``gamma`` are drawn on the simplex (himalaya's Dirichlet samples,
    the first one uniform); for each, the columns of space ``i`` are scaled by
    ``sqrt(gamma_i)`` and every alpha is scored by the inner CV; each target
    keeps the (gamma, alpha) of its lowest mean validation loss, improved
    only by more than float32 epsilon. Unlike himalaya, weights are refitted
    once at the end (per used gamma and alpha), not after every sample, and
    the CV uses :func:`.ridge.cv_losses`, every sample from the products of the
    unscaled columns (``X'X``, ``X'Y`` and the validation blocks' ``X_val'
    Y_val``, formed once: its ``scale``). Scaled columns whose Gram spectrum
    is ill-conditioned for float32 (spaces on scales from 1e-4 to 1e4) are
    scored and refitted in float64 (:mod:`.ridge_spectral`), so every target
    keeps its best (gamma, alpha) (``tests/test_ridge.py``).

    Parameters
    ----------
    X : backend array of shape (n_samples, n_features)
    Y : backend array of shape (n_samples, n_targets)
        Centred by the caller.
    groups : int array of shape (n_features,)
        Space index of every column.
    alphas : backend array of shape (n_alphas,)
    cv : iterable of (train, val) index arrays
    backend : himalaya backend module
    n_iter : int
    concentration : tuple of float
    random_state : int
    n_targets_batch : int, optional
    score : {"mse", "r"}
        Inner-CV score (see :func:`.ridge.cv_losses`).

    Returns
    -------
    deltas : array of shape (n_spaces, n_targets)
        ``log(gamma / alpha)`` of each space and target (himalaya's convention).
    coefs : array of shape (n_features, n_targets)
    """
    from himalaya.kernel_ridge import generate_dirichlet_samples

    groups = np.asarray(groups)
    n_spaces, n_targets = int(groups.max()) + 1, Y.shape[1]
    gammas = backend.to_numpy(generate_dirichlet_samples(n_samples=n_iter, n_kernels=n_spaces,
                                                         concentration=list(concentration),
                                                         random_state=random_state)).astype(np.float64)
    gammas[0] = 1.0 / n_spaces
    splits = list(cv)
    # X'X and X'Y of the unscaled columns, shared by every sample of space weights (cv_losses' scale)
    products = (SplitProducts(X, Y, splits, backend, n_targets_batch)
                if features_narrower_than_training(X, splits) else None)
    best_loss, best_gamma, best_alpha = np.full(n_targets, np.inf), np.zeros(n_targets, int), np.zeros(n_targets, int)
    eps = R_TIE if score == "r" else np.finfo(np.float32).eps
    for g, gamma in enumerate(gammas):
        scale = backend.asarray(np.sqrt(gamma[groups]).astype(np.float32))
        loss = cv_losses(X, Y, alphas, splits, backend, n_targets_batch, score, products=products, scale=scale)
        idx, loss = select_alphas(loss, alphas, backend, tie=R_TIE if score == "r" else 0.0)
        better = loss < best_loss - eps
        best_loss[better], best_gamma[better], best_alpha[better] = loss[better], g, backend.to_numpy(idx)[better]
    coefs = backend.zeros_like(Y, shape=(X.shape[1], n_targets))
    for g in np.unique(best_gamma):
        scale = backend.asarray(np.sqrt(gammas[g][groups]).astype(np.float32))
        cols = np.flatnonzero(best_gamma == g)
        # not from the shared X'Y: the weights (and held-out predictions) stay those of the scaled columns' own
        # products; a float32 X'Y of another rounding moves r by up to 2e-4 where alpha is at the top of the grid,
        # the predictions ~1e-7 and the fold loop adds the training mean in float32 (saving 1 % of the time)
        weights = refit_per_alpha(X * scale, Y[:, backend.asarray(cols)], alphas, backend.asarray(best_alpha[cols]),
                                  backend)
        coefs[:, backend.asarray(cols)] = weights * scale[:, None]  # back to the unscaled columns
    alpha_values = backend.to_numpy(alphas)[best_alpha]
    return np.log(gammas[best_gamma].T / alpha_values[None, :]), coefs


class BandedRidgeFitter:
    """One ridge penalty per feature space and target (banded ridge).

    Parameters
    ----------
    groups : int array of shape (n_delayed_features,)
        Space index of every delayed column.
    alphas : array of shape (n_alphas,)
    n_iter : int
        Random-search samples of the space weights on the simplex.
    backend : str
    random_state : int
    solver : {"kit", "himalaya"}
        ``"kit"``: :func:`solve_banded_ridge_cv` (the same search, scored by
        the kit's ridge CV, refitted once); ``"himalaya"``: himalaya's
        ``GroupRidgeCV``.
    score : {"mse", "r"}
        Inner-CV score, as ``solver_params["scoring"]`` of :class:`.estimators.GappedRidgeCV`.
    """

    def __init__(self, groups, alphas=DEFAULT_ALPHAS, n_iter=20, backend="auto", random_state=0, solver="kit",
                 score="mse"):
        if solver not in ("kit", "himalaya"):
            raise ValueError(f"solver must be 'kit' or 'himalaya', got {solver!r}")
        self.groups = np.asarray(groups)
        self.alphas = check_alphas(alphas).astype(np.float32)
        self.n_iter = n_iter
        self.backend = backend
        self.random_state = random_state
        self.solver = solver
        self.score = score

    def cache_params(self):
        """What changes this fitter's results (see :mod:`.result_cache`)."""
        return {"groups": hash_array(self.groups), "alphas": [float(a) for a in self.alphas], "n_iter": self.n_iter,
                "random_state": self.random_state, "solver": self.solver, "score": self.score}

    def fit_predict(self, X_train, Y_train, X_test, cv):
        """Fit with inner-CV choice of per-space penalties; predict the test rows.

        Returns
        -------
        pred : array of shape (n_test, n_targets)
        alphas : array of shape (n_targets,)
            Overall penalty ``exp(-mean(deltas))`` (for reporting only).
        """
        backend = select_backend(self.backend)
        Xtr, Ytr, Xte = (backend.asarray(a) for a in (X_train, Y_train, X_test))
        if self.solver == "kit":
            deltas, coefs = solve_banded_ridge_cv(Xtr, Ytr, self.groups, backend.asarray(self.alphas), cv, backend,
                                                  n_iter=self.n_iter, random_state=self.random_state,
                                                  score=self.score)
            pred = backend.to_numpy(backend.matmul(Xte, coefs))
        else:
            from himalaya.ridge import GroupRidgeCV
            from himalaya.scoring import correlation_score, l2_neg_loss

            model = GroupRidgeCV(groups=self.groups, cv=cv, fit_intercept=False, random_state=self.random_state,
                                 solver_params=dict(n_iter=self.n_iter, alphas=self.alphas, progress_bar=False,
                                                    warn=False,
                                                    score_func=correlation_score if self.score == "r" else l2_neg_loss))
            with himalaya_backend(backend):  # GroupRidgeCV reads himalaya's global backend; restored after
                model.fit(Xtr, Ytr)
                pred = backend.to_numpy(model.predict(Xte))
            deltas = backend.to_numpy(model.deltas_)
        self.deltas_ = np.asarray(deltas)
        return pred, np.exp(-self.deltas_.mean(0))


def evaluate_fusion(spaces, fmri, method="banded", delays=DEFAULT_DELAYS, n_iter=20, score="mse", **kwargs):
    """Encoding performance of several feature spaces together.

    Parameters
    ----------
    spaces : dict {name: array (n_trs, n_i)}
    fmri : dict or array
    method : {"banded", "concat"}
        Banded ridge (one penalty per space) or scaled concatenation.
    delays : sequence of int
    n_iter : int
        Random-search iterations of banded ridge.
    score : {"mse", "r"}
        What the inner CV optimises (``solver_params["scoring"]`` of :class:`.estimators.GappedRidgeCV`).
    **kwargs
        Passed to :func:`evaluate_encoding` (``cv``, ``pca`` - applied to each
        space separately - ...); ``alphas`` and ``backend`` go to the ridge.

    Returns
    -------
    EncodingResult
        ``params["spaces"]`` lists the space names.
    """
    X, groups = concat_spaces(spaces)
    alphas = kwargs.pop("alphas", None)
    alphas = DEFAULT_ALPHAS if alphas is None else alphas
    if method == "banded":
        pca = kwargs.get("pca")
        widths = [min(int(w), pca) if pca else int(w) for w in np.bincount(groups)]
        reduced = np.repeat(np.arange(len(widths)), widths)  # column layout after per-space PCA
        fitter = BandedRidgeFitter(np.tile(reduced, len(delays)), alphas, n_iter=n_iter,
                                   backend=kwargs.pop("backend", "auto"), score=score)
        result = evaluate_encoding(X, fmri, delays=delays, fitter=fitter, space_groups=groups, **kwargs)
    elif method == "concat":
        fitter = GappedRidgeCV(alphas, backend=kwargs.pop("backend", "auto"), solver_params={"scoring": score})
        result = evaluate_encoding(X, fmri, delays=delays, fitter=fitter, space_groups=groups, **kwargs)
    else:
        raise ValueError(f"method must be 'banded' or 'concat', got {method!r}")
    result.params.update(spaces=list(spaces), fusion=method)
    return result


def variance_partitioning(spaces, fmri, method="banded", n_iter=20, **kwargs):
    """Unique and shared held-out variance of two feature spaces.

    Parameters
    ----------
    spaces : dict with two entries {name: array (n_trs, n_i)}
    fmri : dict or array
    method : {"banded", "concat"}
        How the joint model is fitted.
    n_iter : int
        Banded-ridge random-search iterations.
    **kwargs
        Passed to every evaluation (``pca`` per space, ``cv``, ...).

    Every model picks its alphas for held-out squared error (``score="mse"``),
    since R^2 is what is partitioned (correlation-chosen alphas shrink
    predictions without penalty and would bias R^2 towards zero).

    Returns
    -------
    DataFrame
        One row per subject and ROI: ``r2_<A>``, ``r2_<B>``, ``r2_joint``,
        ``unique_<A>`` = R2(A+B) - R2(B), ``unique_<B>``, ``shared`` =
        R2(A) + R2(B) - R2(A+B).
    """
    if len(spaces) != 2:
        raise ValueError(f"variance partitioning takes two feature spaces, got {len(spaces)}")
    (name_a, xa), (name_b, xb) = spaces.items()
    alphas = kwargs.pop("alphas", None)
    single = GappedRidgeCV(alphas, backend=kwargs.pop("backend", "auto"), solver_params={"scoring": "mse"})
    res_a = evaluate_encoding(xa, fmri, fitter=single, **kwargs)
    res_b = evaluate_encoding(xb, fmri, fitter=single, **kwargs)
    res_ab = evaluate_fusion(spaces, fmri, method=method, n_iter=n_iter, score="mse", alphas=alphas,
                             backend=single.backend, **kwargs)
    n_subj, n_rois = res_a.r.shape
    table = pd.DataFrame({
        "subject": np.repeat(res_a.subjects, n_rois),
        "roi": np.tile(np.arange(n_rois), n_subj),
        "name": np.tile(res_a.roi_names, n_subj),
        f"r2_{name_a}": res_a.r2.ravel(), f"r2_{name_b}": res_b.r2.ravel(), "r2_joint": res_ab.r2.ravel(),
    })
    table[f"unique_{name_a}"] = table["r2_joint"] - table[f"r2_{name_b}"]
    table[f"unique_{name_b}"] = table["r2_joint"] - table[f"r2_{name_a}"]
    table["shared"] = table[f"r2_{name_a}"] + table[f"r2_{name_b}"] - table["r2_joint"]
    return table
