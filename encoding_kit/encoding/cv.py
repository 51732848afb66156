"""FIR delays and leak-free time-series cross-validation.

BOLD is autocorrelated over several TRs and delayed features reach
``max(delays)`` TRs back, so a training TR next to a test block shares noise
and stimulus with it. Every split here drops a ``gap`` of TRs (default: the
largest delay) on each side of each held-out block, for the outer folds and
for the inner folds that choose the ridge penalty alike.
"""

from __future__ import annotations

import numpy as np

from ..core.validation import check_cv, check_delays, check_trim

DEFAULT_DELAYS = (1, 2, 3, 4)


def make_delays(X, delays=DEFAULT_DELAYS):
    """Stack time-shifted copies of the features (a finite impulse response model).

    Parameters
    ----------
    X : array of shape (n_trs, n_features)
    delays : sequence of int
        Delays in TRs; row ``t`` of block ``j`` holds ``X[t - delays[j]]`` and
        zeros where ``t - delays[j] < 0`` (or ``>= n_trs`` for negative delays).
        The default 1..4 TRs covers 1.5-6 s of hemodynamic lag.

    Returns
    -------
    delayed : array of shape (n_trs, n_features * len(delays))
        Blocks in the order of ``delays``.
    """
    X = np.asarray(X)
    if X.ndim == 1:
        X = X[:, None]
    delays = check_delays(delays, allow_negative=True)
    n = X.shape[0]
    if max(abs(d) for d in delays) >= n:
        raise ValueError(f"delays {delays} reach {max(abs(d) for d in delays)} TRs back but X has only {n} TRs")
    out = np.zeros((n, X.shape[1] * len(delays)), dtype=X.dtype)
    for j, d in enumerate(delays):
        block = out[:, j * X.shape[1]:(j + 1) * X.shape[1]]
        if d >= 0:
            block[d:] = X[: n - d]
        else:
            block[:d] = X[-d:]
    return out


def contiguous_blocks(indices, n_blocks):
    """Split sorted indices into ``n_blocks`` contiguous, nearly equal blocks."""
    return np.array_split(np.asarray(indices), n_blocks)


def gapped_splits(indices, n_folds, gap):
    """Contiguous K-fold over time with a gap around each held-out block.

    Parameters
    ----------
    indices : int array of shape (n,)
        Sorted TR indices available for this split (may have holes).
    n_folds : int
    gap : int
        TRs dropped from training on each side of the held-out block,
        measured in time (TR index), not in positions.

    Returns
    -------
    list of (train, test) int arrays
        TR indices; no training TR lies within ``gap`` TRs of its test block.
    """
    indices = np.asarray(indices)
    n_folds, gap, _ = check_cv(n_folds, gap)
    if len(indices) < n_folds * (gap + 2):
        raise ValueError(
            f"{len(indices)} TRs are too few for {n_folds} folds with a gap of {gap} TRs; "
            "use fewer folds, a smaller gap or more TRs"
        )
    splits = []
    for test in contiguous_blocks(indices, n_folds):
        lo, hi = test[0] - gap, test[-1] + gap
        train = indices[(indices < lo) | (indices > hi)]
        splits.append((train, test))
    return splits


def positions(split, indices):
    """Map a (train, test) pair of TR indices to positions within ``indices``."""
    lookup = np.searchsorted(indices, split[0]), np.searchsorted(indices, split[1])
    return lookup


def inner_splits(train, n_folds, gap):
    """Inner gapped folds inside a training set, as positions into ``train``.

    himalaya's solvers take the training rows only, so the folds are returned
    as positions in ``train`` while the gap is measured in TRs.

    Returns
    -------
    list of (train_positions, val_positions)
    """
    try:
        splits = gapped_splits(train, n_folds, gap)
    except ValueError as exc:
        raise ValueError(f"inner cross-validation: {exc}") from exc
    return [positions(split, train) for split in splits]


def trimmed_indices(n_trs, trim):
    """TR indices left after trimming ``trim = (start, end)`` TRs from the edges."""
    start, end = check_trim(trim)
    if start + end >= n_trs:
        raise ValueError(f"trim={trim} removes all {n_trs} TRs")
    return np.arange(start, n_trs - end)
