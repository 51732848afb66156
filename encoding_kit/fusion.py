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

from .cv import DEFAULT_DELAYS
from .encoding import evaluate_encoding
from .features.cache import hash_array
from .ridge import DEFAULT_ALPHAS, select_backend


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


class BandedRidgeFitter:
    """One ridge penalty per feature space and target (himalaya ``GroupRidgeCV``).

    Parameters
    ----------
    groups : int array of shape (n_delayed_features,)
        Space index of every delayed column.
    alphas : array of shape (n_alphas,)
    n_iter : int
        Random-search samples of the space weights on the simplex.
    backend : str
    random_state : int
    """

    def __init__(self, groups, alphas=DEFAULT_ALPHAS, n_iter=20, backend="auto", random_state=0):
        self.groups = np.asarray(groups)
        self.alphas = np.asarray(alphas, dtype=np.float32)
        self.n_iter = n_iter
        self.backend = backend
        self.random_state = random_state

    def cache_params(self):
        """What changes this fitter's results (see :mod:`.result_cache`)."""
        return {"groups": hash_array(self.groups), "alphas": [float(a) for a in self.alphas], "n_iter": self.n_iter,
                "random_state": self.random_state}

    def fit_predict(self, X_train, Y_train, X_test, cv):
        """Fit with inner-CV choice of per-space penalties; predict the test rows.

        Returns
        -------
        pred : array of shape (n_test, n_targets)
        alphas : array of shape (n_targets,)
            Overall penalty ``exp(-mean(deltas))`` (for reporting only).
        """
        from himalaya.ridge import GroupRidgeCV

        backend = select_backend(self.backend)
        model = GroupRidgeCV(
            groups=self.groups, cv=cv, fit_intercept=False, random_state=self.random_state,
            solver_params=dict(n_iter=self.n_iter, alphas=self.alphas, progress_bar=False,
                               warn=False),
        )
        model.fit(backend.asarray(X_train), backend.asarray(Y_train))
        pred = backend.to_numpy(model.predict(backend.asarray(X_test)))
        deltas = backend.to_numpy(model.deltas_)
        self.deltas_ = deltas
        return pred, np.exp(-deltas.mean(0))


def evaluate_fusion(spaces, fmri, method="banded", delays=DEFAULT_DELAYS, n_iter=20, **kwargs):
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
    **kwargs
        Passed to :func:`evaluate_encoding` (``n_folds``, ``alphas``, ``pca``
        - applied to each space separately - ...).

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
                                   backend=kwargs.pop("backend", "auto"))
        result = evaluate_encoding(X, fmri, delays=delays, fitter=fitter, space_groups=groups, **kwargs)
    elif method == "concat":
        result = evaluate_encoding(X, fmri, delays=delays, alphas=alphas, space_groups=groups, **kwargs)
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
        Passed to every evaluation (``pca`` per space, ``n_folds``, ...).

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
    res_a = evaluate_encoding(xa, fmri, **kwargs)
    res_b = evaluate_encoding(xb, fmri, **kwargs)
    res_ab = evaluate_fusion(spaces, fmri, method=method, n_iter=n_iter, **kwargs)
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
