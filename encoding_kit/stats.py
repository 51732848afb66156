"""Scores, noise ceilings and significance.

* Correlations over folds are averaged in Fisher z (``arctanh``) space.
* The noise ceiling is the leave-one-subject-out inter-subject correlation:
  each subject against the mean of the others, per ROI.
* Significance uses circular shifts of the held-out predictions against the
  data (which keeps the autocorrelation of both series) and, at group level,
  a one-sided t-test across subjects on Fisher z with Benjamini-Hochberg FDR
  over ROIs.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as _st


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
    with np.errstate(invalid="ignore"), _quiet():
        return np.tanh(np.nanmean(z, axis=axis))


class _quiet:
    """Silence numpy's 'mean of empty slice' for all-NaN columns (they stay NaN)."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def noise_ceiling(fmri, trs=None):
    """Leave-one-subject-out inter-subject correlation per ROI.

    Parameters
    ----------
    fmri : dict {subject: array (n_trs, n_rois)} or array (n_subjects, n_trs, n_rois)
    trs : int array, optional
        TRs to use (e.g. the trimmed TRs the encoding model is scored on).

    Returns
    -------
    ceiling : array of shape (n_subjects, n_rois)
        Correlation of each subject with the mean of the other subjects.
    """
    Y = np.stack(list(fmri.values())) if isinstance(fmri, dict) else np.asarray(fmri)
    if Y.shape[0] < 2:
        raise ValueError("the noise ceiling needs at least 2 subjects (leave-one-subject-out ISC)")
    if trs is not None:
        Y = Y[:, trs]
    total = Y.sum(0)
    return np.stack([columnwise_r(Y[s], (total - Y[s]) / (Y.shape[0] - 1)) for s in range(Y.shape[0])])


def normalized_r(r, ceiling, min_ceiling=0.05):
    """``r / ceiling``, NaN where the ceiling is below ``min_ceiling`` (nothing explainable)."""
    ceiling = np.asarray(ceiling, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ceiling >= min_ceiling, np.asarray(r) / ceiling, np.nan)


def circular_shift_pvalues(pred, y, n_shifts=1000, min_shift=None, random_state=0):
    """One-sided p-values of r(pred, y) against a circular-shift null.

    Parameters
    ----------
    pred, y : arrays of shape (n_samples, n_targets)
        Held-out predictions and data, in time order.
    n_shifts : int
        Number of random circular shifts (without replacement).
    min_shift : int, optional
        Smallest shift in samples (default 10 % of the series), so that the
        shifted series is not aligned with the original by autocorrelation.
    random_state : int

    Returns
    -------
    r : array of shape (n_targets,)
    p : array of shape (n_targets,)
        ``(1 + #{null >= r}) / (1 + n_shifts)``; NaN where r is NaN.
    """
    pred = np.asarray(pred, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = pred.shape[0]
    min_shift = int(min_shift if min_shift is not None else max(1, n // 10))
    candidates = np.arange(min_shift, n - min_shift + 1)
    if candidates.size == 0:
        raise ValueError(f"{n} samples leave no circular shift of at least {min_shift}")
    rng = np.random.default_rng(random_state)
    shifts = rng.choice(candidates, size=min(n_shifts, candidates.size), replace=False)
    a = (pred - pred.mean(0)) / (pred.std(0) + 1e-12)
    b = (y - y.mean(0)) / (y.std(0) + 1e-12)
    # All circular lags at once by FFT: xcorr[k] = mean_t a[t] * b[(t + k) % n].
    xcorr = np.fft.irfft(np.conj(np.fft.rfft(a, axis=0)) * np.fft.rfft(b, axis=0), n=n, axis=0) / n
    r = columnwise_r(pred, y)
    null = xcorr[shifts]
    p = (1 + (null >= r[None, :] - 1e-12).sum(0)) / (1 + len(shifts))
    p[np.isnan(r)] = np.nan
    return r, p


def fdr_bh(p):
    """Benjamini-Hochberg adjusted p-values (NaN kept), same shape as ``p``."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = _st.false_discovery_control(p[ok], method="bh")
    return out


def group_significance(r, alpha=0.05):
    """Test across subjects whether each ROI's r is above zero.

    Parameters
    ----------
    r : array of shape (n_subjects, n_rois)
    alpha : float
        FDR level.

    Returns
    -------
    dict with ``t``, ``p`` (one-sided t-test on Fisher z), ``q``
    (Benjamini-Hochberg over ROIs) and ``significant`` (``q < alpha``), each
    of shape (n_rois,)
    """
    z = np.arctanh(np.clip(np.asarray(r, dtype=np.float64), -0.999999, 0.999999))
    with _quiet():
        t, p = _st.ttest_1samp(z, 0.0, axis=0, alternative="greater", nan_policy="omit")
    t, p = np.asarray(t, float), np.asarray(p, float)
    q = fdr_bh(p)
    return {"t": t, "p": p, "q": q, "significant": np.nan_to_num(q, nan=1.0) < alpha}
