"""Scores of held-out predictions: Pearson r and R^2 per column, Fisher-z means, normalised r.

The encoding models (:mod:`.evaluate`) score with these; :mod:`encoding_kit.analysis.stats`
re-exports them next to the ceilings and tests.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np


def columnwise_r(a, b):
    """Pearson r of matching columns.

    Parameters
    ----------
    a, b : arrays of shape (n_samples, n_columns)

    Returns
    -------
    r : array of shape (n_columns,)
        NaN where either column is constant.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a - a.mean(0)
    b = b - b.mean(0)
    denom = np.sqrt(column_dot(a, a) * column_dot(b, b))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = column_dot(a, b) / denom
    r[~np.isfinite(r) | (denom < 1e-12)] = np.nan
    return r


def columnwise_r2(pred, y):
    """Coefficient of determination of matching columns (1 - SSE / SST), shape (n_columns,)."""
    y = np.asarray(y, dtype=np.float64)
    centred = y - y.mean(0)
    sst = column_dot(centred, centred)
    residual = y - pred
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1 - column_dot(residual, residual) / sst
    r2[sst < 1e-12] = np.nan
    return r2


def column_dot(a, b):
    """Dot product of matching columns, shape (n_columns,)."""
    return np.einsum("ij,ij->j", a, b)


def fisher_mean(r, axis=0):
    """Average correlations in Fisher z space (NaN-aware)."""
    z = np.arctanh(np.clip(np.asarray(r, dtype=np.float64), -0.999999, 0.999999))
    with np.errstate(invalid="ignore"), quiet_nan_warnings():
        return np.tanh(np.nanmean(z, axis=axis))


@contextlib.contextmanager
def quiet_nan_warnings():
    """Silence numpy's 'mean of empty slice' for all-NaN columns (they stay NaN) inside the block."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def normalized_r(r, ceiling, min_ceiling=0.05):
    """Normalised r: ``r / ceiling`` (1 = as good as a perfect model), shape of ``r``.

    ``ceiling`` is :func:`noise_ceiling`. NaN where the ceiling is NaN or
    below ``min_ceiling`` (nothing reliably explainable there).

    Examples
    --------
    >>> import numpy as np, utils
    >>> utils.normalized_r(np.array([0.1, 0.2, 0.3]), np.array([0.2, 0.01, 0.6]))
    array([0.5, nan, 0.5])
    """
    r, ceiling = np.asarray(r, dtype=np.float64), np.asarray(ceiling, dtype=np.float64)
    try:
        fits = np.broadcast_shapes(r.shape, ceiling.shape) == r.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"normalized_r: ceiling of shape {ceiling.shape} does not match r of shape {r.shape}; "
                         "expected the same shape (subjects x ROIs) or one ceiling per ROI (n_rois,)")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ceiling >= min_ceiling, r / ceiling, np.nan)
