"""Scores, noise ceilings and significance.

* Correlations over folds are averaged in Fisher z (``arctanh``) space.
* The noise ceiling of subject s in an ROI is the correlation its data would
  have with the noise-free, stimulus-driven signal shared by all subjects: the
  r a perfect model would reach. It is estimated from the pairwise
  inter-subject correlations (:func:`noise_ceiling`), so that a perfect model
  scores a normalised r (``r / ceiling``) of 1. The leave-one-subject-out ISC
  (:func:`loso_isc`) is smaller than that, because the mean of the other
  subjects still holds noise; dividing by it inflated normalised r (a perfect
  model scored 1.06-1.46 for true r 0.5-0.2 with 25 subjects).
* Significance uses circular shifts of the held-out predictions against the
  data (which keeps the autocorrelation of both series) and, at group level,
  a one-sided t-test across subjects on Fisher z with Benjamini-Hochberg FDR
  over ROIs.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as _st

from ..encoding.scores import (  # noqa: F401 (the scores are defined with the encoding models; re-exported here)
    column_dot,
    columnwise_r,
    columnwise_r2,
    fisher_mean,
    normalized_r,
    quiet_nan_warnings,
)


def _subjects_array(fmri, trs=None):
    """(n_subjects, n_trs, n_rois) float64 array from a dict or an array, restricted to ``trs``."""
    Y = np.stack(list(fmri.values())) if isinstance(fmri, dict) else np.asarray(fmri)
    Y = np.asarray(Y if trs is None else Y[:, trs], dtype=np.float64)
    if Y.ndim != 3:
        raise ValueError(f"fmri: expected a dict of (n_trs, n_rois) arrays or an array (n_subjects, n_trs, n_rois), "
                         f"got shape {Y.shape}")
    return Y


def loso_isc(fmri, trs=None):
    """Leave-one-subject-out inter-subject correlation per ROI (not a ceiling; see :func:`noise_ceiling`).

    Parameters
    ----------
    fmri : dict {subject: array (n_trs, n_rois)} or array (n_subjects, n_trs, n_rois)
    trs : int array, optional
        TRs to use.

    Returns
    -------
    isc : array of shape (n_subjects, n_rois)
        Correlation of each subject with the mean of the other subjects.
    """
    Y = _subjects_array(fmri, trs)
    if Y.shape[0] < 2:
        raise ValueError("the leave-one-subject-out ISC needs at least 2 subjects")
    total = Y.sum(0)
    return np.stack([columnwise_r(Y[s], (total - Y[s]) / (Y.shape[0] - 1)) for s in range(Y.shape[0])])


def pairwise_isc(fmri, trs=None):
    """Correlation of every pair of subjects per ROI.

    Returns
    -------
    r : array of shape (n_rois, n_subjects, n_subjects)
        NaN on the diagonal and where a subject's ROI is constant.
    """
    Y = _subjects_array(fmri, trs)
    Y = Y - Y.mean(1, keepdims=True)
    norm = np.sqrt((Y ** 2).sum(1))  # (n_subjects, n_rois)
    with np.errstate(invalid="ignore", divide="ignore"):
        Z = np.where(norm[:, None] > 1e-12, Y / norm[:, None], np.nan).transpose(2, 0, 1)  # (rois, subj, trs)
    Z = np.ascontiguousarray(Z)  # a contiguous stack takes numpy's BLAS path for the batched product (2x faster)
    r = Z @ Z.transpose(0, 2, 1)
    r[:, np.arange(Y.shape[0]), np.arange(Y.shape[0])] = np.nan
    return r


def noise_ceiling(fmri, trs=None, blocks=None, min_z=3.0):
    """Best r a model can reach in each subject and ROI, estimated so that a perfect model scores 1.

    Model: subject s's data are ``g_s * signal + noise_s`` with a signal
    shared by all subjects and noise independent across subjects. The
    ceiling of subject s is ``rho_s = r(data_s, signal)``: the held-out r of
    a model that predicted the shared signal perfectly. Two subjects
    correlate only through the signal, so the pairwise ISC is
    ``r_sj = rho_s * rho_j``. Hence

    * the mean ISC of s with the others: ``mean_j r_sj = rho_s * mean_j rho_j``;
    * the mean ISC among the others (pairs without s): ``rbar_-s = mean_{j<k} rho_j rho_k ~ (mean_j rho_j)^2``;
    * ``ceiling_s = mean_j r_sj / sqrt(rbar_-s) = rho_s``.

    With two subjects this is ``sqrt(r_12)`` for both. It is the
    leave-one-subject-out ISC corrected for the noise left in the mean of
    the other ``m = n - 1`` subjects: that ISC is ``rho_s * sqrt(R)`` with
    ``R = m rbar / (1 + (m - 1) rbar)`` (Spearman-Brown; the demo's
    ``noise_variance_for_isc`` writes the same relation in noise variances),
    so it is below ``rho_s`` and ``r / ISC`` exceeds 1 for a perfect model
    (1.46, 1.20, 1.06 at rho 0.2, 0.3, 0.5 with 25 subjects and 2249 TRs);
    ``r / noise_ceiling`` is 1.00-1.03 there (``tests/test_stats.py``).

    Scored like the model: the kit's held-out r is computed in each outer
    fold's block and averaged in Fisher z, which drops the slow variance
    between blocks; with ``blocks`` the ceiling is estimated in each block
    and averaged the same way (:func:`encoding_kit.analysis.roi_analysis.story_ceiling`
    passes the kit's folds). On the full demo (eSpeak speech) the planted
    noise-free signal scores 0.97 against a ceiling from all TRs and 1.00
    against per-fold ceilings (ROI means 0.98-1.02; the earlier demo gave
    0.75 and 1.01; ``benchmarks/bench_ceiling.py``).

    No shared signal: where the mean pairwise ISC of all subjects (all TRs
    of ``trs`` or of the blocks) is not above zero by ``min_z`` standard
    errors (the spread of the pairwise ISCs over sqrt(number of pairs):
    without a shared signal the pairs are uncorrelated, and autocorrelation
    widens their spread, not the test), the ROI has no measurable shared
    signal and its ceiling is NaN; so is a subject whose others' mean ISC is
    not positive (in a block: that block is left out of the mean). Estimates
    are capped at 1. A negative ceiling (a subject anti-correlated with the
    group) stays negative and :func:`normalized_r` leaves it out.

    Parameters
    ----------
    fmri : dict {subject: array (n_trs, n_rois)} or array (n_subjects, n_trs, n_rois)
    trs : int array, optional
        TRs to use (e.g. the trimmed TRs the encoding model is scored on).
    blocks : list of int arrays, optional
        TR indices of each outer fold's held-out block (instead of ``trs``).
    min_z : float
        Evidence needed for a shared signal (3: about one noise ROI in 400
        passes with 25 subjects); 0 keeps every ROI with a positive mean ISC.
        With two subjects there is one pair and no test: ``r_12 > 0`` is
        required.

    Returns
    -------
    ceiling : array of shape (n_subjects, n_rois)
        Estimated r of each subject with the shared signal; NaN where none
        is measurable.

    Examples
    --------
    Three subjects sharing one signal, each with its own noise: the ceiling is each subject's r with the signal.

    >>> import numpy as np, utils
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.standard_normal((2000, 1))
    >>> fmri = np.stack([signal + rng.standard_normal((2000, 1)) for _ in range(3)])   # (subjects, TRs, ROIs)
    >>> np.round(utils.noise_ceiling(fmri), 1)          # r(data, signal) = 1 / sqrt(2)
    array([[0.7],
           [0.7],
           [0.7]])
    """
    return noise_ceilings(fmri, [min_z], trs, blocks)[0]


def noise_ceilings(fmri, min_zs, trs=None, blocks=None):
    """:func:`noise_ceiling` at several evidence levels ``min_zs`` from one pass over the pairwise ISCs.

    Only the test for a shared signal depends on ``min_z``; the estimates are the same.

    Returns
    -------
    list of arrays of shape (n_subjects, n_rois)
        One per value of ``min_zs``, in order.
    """
    if blocks is not None:
        trs = np.concatenate(blocks)
    whole = pairwise_isc(fmri, trs)
    parts = [pairwise_isc(fmri, b) for b in blocks] if blocks is not None else [whole]
    ceiling = np.minimum(fisher_mean(np.array([_ceiling_from_pairs(r) for r in parts]), axis=0), 1.0)
    out = []
    for min_z in min_zs:
        masked = ceiling.copy()
        masked[:, ~_has_shared_signal(whole, min_z)] = np.nan
        out.append(masked)
    return out


def _upper_pairs(r):
    """(n_rois, n, n) -> (n_rois, n_pairs): each pair once."""
    upper = np.triu_indices(r.shape[1], 1)
    return r[:, upper[0], upper[1]]


def _has_shared_signal(r, min_z):
    """ROIs whose mean pairwise ISC is above zero by ``min_z`` standard errors, bool (n_rois,)."""
    n = r.shape[1]
    if n < 2:
        raise ValueError(f"the noise ceiling needs at least 2 subjects (pairwise ISC); got {n}")
    pairs = _upper_pairs(r)
    with quiet_nan_warnings():
        group = np.nanmean(pairs, axis=1)
        if n == 2:
            return np.nan_to_num(group) > 0
        se = np.nanstd(pairs, axis=1, ddof=1) / np.sqrt(np.isfinite(pairs).sum(1))
    return np.nan_to_num(group - min_z * se, nan=-1.0) > 0


def _ceiling_from_pairs(r):
    """Per-subject ceiling from pairwise ISC (see :func:`noise_ceiling`), (n_rois, n, n) -> (n, n_rois)."""
    n = r.shape[1]
    pairs = _upper_pairs(r)
    with quiet_nan_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        if n == 2:
            return np.tile(np.sqrt(np.where(pairs[:, 0] > 0, pairs[:, 0], np.nan)), (2, 1))
        with_s = np.nanmean(r, axis=2).T  # (n, n_rois): mean ISC of s with the others
        others = (np.nansum(pairs, axis=1)[None, :] - with_s * (n - 1)) / ((n - 1) * (n - 2) / 2)
        return with_s / np.sqrt(np.where(others > 0, others, np.nan))


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

    Examples
    --------
    >>> import numpy as np, utils
    >>> rng = np.random.default_rng(0)
    >>> r = rng.normal(0.0, 0.02, size=(25, 360))
    >>> r[:, :10] += 0.1                     # ten ROIs predicted in every subject
    >>> test = utils.group_significance(r)
    >>> int(test["significant"][:10].sum()), int(test["significant"][10:].sum())
    (10, 0)
    """
    z = np.arctanh(np.clip(np.asarray(r, dtype=np.float64), -0.999999, 0.999999))
    with quiet_nan_warnings():
        t, p = _st.ttest_1samp(z, 0.0, axis=0, alternative="greater", nan_policy="omit")
    t, p = np.asarray(t, float), np.asarray(p, float)
    q = fdr_bh(p)
    return {"t": t, "p": p, "q": q, "significant": np.nan_to_num(q, nan=1.0) < alpha}


def prediction_significance(result, fmri, n_shifts=1000, random_state=0):
    """Circular-shift p-values of each subject's held-out predictions, on the result's own folds.

    Parameters
    ----------
    result : EncodingResult
        From ``evaluate_encoding(..., return_predictions=True)``; its splitter
        (``result.cv``) gives the held-out blocks.
    fmri : dict or array
        The data the result was fitted on.
    n_shifts : int
    random_state : int

    Returns
    -------
    dict with ``r`` (r over all held-out TRs), ``p`` and ``q`` (BH-FDR over
    ROIs within each subject), each of shape (n_subjects, n_rois)
    """
    from ..encoding.evaluate import stack_targets

    if result.predictions is None:
        raise ValueError("the result kept no predictions; use evaluate_encoding(..., return_predictions=True)")
    Y, _, _ = stack_targets(fmri)
    n_test = len(result.test_trs)
    pred = result.predictions.reshape(n_test, -1).astype(np.float64)
    data = Y[result.test_trs].astype(np.float64)
    # Each fold's predictions carry that fold's training mean; centre every
    # held-out block so block offsets do not enter the concatenated series.
    for block in result.fold_blocks():
        pred[block] -= pred[block].mean(0)
        data[block] -= data[block].mean(0)
    r, p = circular_shift_pvalues(pred, data, n_shifts=n_shifts, random_state=random_state)
    r, p = r.reshape(result.r.shape), p.reshape(result.r.shape)
    return {"r": r, "p": p, "q": np.stack([fdr_bh(row) for row in p])}
