"""FIR delays and leak-free time-series cross-validation.

BOLD is autocorrelated over several TRs and delayed features reach
``max(delays)`` TRs back, so a training TR next to a test block shares noise
and stimulus with it. Every split here drops a ``gap`` of TRs (default: the
largest delay) on each side of each held-out block, for the outer folds and
for the inner folds that choose the ridge penalty alike.

The fold scheme is one value, a scikit-learn splitter (:class:`GappedKFold`,
or any object with ``split(X)`` and ``get_n_splits()``, e.g.
:class:`sklearn.model_selection.TimeSeriesSplit`): the encoding loop, the
ridge's inner CV, the noise ceiling, the significance tests, decoding and the
demo's checks all receive it, and every result records it. Nothing else
computes held-out blocks (:func:`held_out_blocks` reads them from the splitter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.validation import check_cv, check_delays, check_int, check_trim

DEFAULT_DELAYS = (1, 2, 3, 4)
"""FIR delays in TRs: 1.5-6 s of hemodynamic lag."""

DEFAULT_GAP = max(DEFAULT_DELAYS)
"""TRs dropped on each side of a held-out block by default: the longest default delay."""

DEFAULT_TRIM = (10, 10)
"""TRs dropped at the start and end of the story before the outer cross-validation."""

DEFAULT_N_SPLITS = 5
"""Outer (and inner) folds by default."""


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


@dataclass(frozen=True)
class GappedKFold:
    """Contiguous K-fold over time with a gap around each held-out block: the kit's fold scheme as one value.

    A scikit-learn splitter (``split``, ``get_n_splits``) that can be handed
    to :func:`encoding_kit.encoding.evaluate.evaluate_encoding` (``cv=``),
    :class:`encoding_kit.encoding.estimators.GappedRidgeCV` (``cv=``, the
    inner folds), the noise ceiling, decoding and scikit-learn's own tools
    (``cross_val_score(..., cv=GappedKFold())``). Two splitters with the same
    settings are equal, and its repr names them.

    Parameters
    ----------
    n_splits : int
        Contiguous held-out blocks (nearly equal in length).
    gap : int
        TRs dropped from training on each side of every held-out block,
        counted in TRs (time), not in rows: at least the longest FIR delay.
    trim : (int, int)
        TRs left out at the start and the end of the series before it is
        split (the outer folds of the kit use :data:`DEFAULT_TRIM`).
    folds : sequence of int, optional
        Yield only these blocks (positions among the ``n_splits``, which stay
        the same blocks): for features that are valid for one fold only, such
        as a model fine-tuned on that fold's training TRs.

    Examples
    --------
    >>> import numpy as np, utils
    >>> cv = utils.GappedKFold(n_splits=3, gap=2, trim=(1, 1))
    >>> cv
    GappedKFold(n_splits=3, gap=2, trim=(1, 1), folds=None)
    >>> train, test = next(cv.split(np.zeros((14, 1))))     # 14 TRs, the first and last left out
    >>> test.tolist(), train.tolist()                       # TRs 5 and 6 are the gap
    ([1, 2, 3, 4], [7, 8, 9, 10, 11, 12])
    """

    n_splits: int = DEFAULT_N_SPLITS
    gap: int = DEFAULT_GAP
    trim: tuple = (0, 0)
    folds: tuple | None = None

    def __post_init__(self):
        n_splits = check_int(self.n_splits, "n_splits", 2)
        object.__setattr__(self, "n_splits", n_splits)
        object.__setattr__(self, "gap", check_int(self.gap, "gap", 0))
        object.__setattr__(self, "trim", tuple(check_trim(self.trim)))
        if self.folds is not None:
            object.__setattr__(self, "folds", tuple(check_fold_subset(self.folds, n_splits)))

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of (train, test) pairs :meth:`split` yields."""
        return self.n_splits if self.folds is None else len(self.folds)

    def split(self, X, y=None, groups=None):
        """(train, test) positions into the rows of ``X``, consecutive TRs of one run.

        Parameters
        ----------
        X : array of shape (n_trs, ...)
        y, groups : ignored

        Yields
        ------
        train, test : int arrays
        """
        yield from self.split_indices(trimmed_indices(len(X), self.trim))

    def split_indices(self, indices):
        """(train, test) TR indices of a sorted set of TRs that may have holes (no trimming).

        The inner folds inside an outer training set use this: the gap is
        measured in TRs, so training TRs on the far side of the outer test
        block's hole are not counted as neighbours.

        Parameters
        ----------
        indices : int array of shape (n,)

        Returns
        -------
        list of (train, test) int arrays
        """
        splits = gapped_splits(indices, self.n_splits, self.gap)
        return splits if self.folds is None else [splits[k] for k in self.folds]

    def params(self):
        """The settings as plain values (results, cache keys, JSON)."""
        return {"splitter": type(self).__name__, "n_splits": self.n_splits, "gap": self.gap, "trim": list(self.trim),
                "folds": None if self.folds is None else list(self.folds)}


def check_fold_subset(folds, n_splits):
    """Blocks to yield, as a sorted list of distinct ints in ``0..n_splits - 1``."""
    chosen = [folds] if np.isscalar(folds) else list(folds)
    if not chosen or any(isinstance(k, bool) or not float(k).is_integer() or not 0 <= k < n_splits for k in chosen):
        raise ValueError(f"folds must be fold numbers in 0..{n_splits - 1} (n_splits={n_splits}), found {folds!r}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"folds lists a fold twice: {folds!r}")
    return sorted(int(k) for k in chosen)


def splitter_from_params(params):
    """The :class:`GappedKFold` that :meth:`GappedKFold.params` describes, or ``None`` for another splitter."""
    if not isinstance(params, dict) or params.get("splitter") != "GappedKFold":
        return None
    return GappedKFold(params["n_splits"], params["gap"], tuple(params["trim"]), params.get("folds"))


def check_splitter(cv, delays=DEFAULT_DELAYS, trim=DEFAULT_TRIM):
    """The outer fold scheme: ``cv`` if it is a splitter, else a :class:`GappedKFold`.

    Parameters
    ----------
    cv : None, int or splitter
        ``None``: :data:`DEFAULT_N_SPLITS` blocks; an int: that many blocks
        (both with a gap of the longest delay and ``trim``); an object with
        ``split`` and ``get_n_splits``: used as it is.
    delays : sequence of int
    trim : (int, int)

    Returns
    -------
    splitter
    """
    if cv is None or (isinstance(cv, (int, np.integer)) and not isinstance(cv, bool)):
        n_splits = DEFAULT_N_SPLITS if cv is None else check_int(cv, "cv", 2)
        return GappedKFold(n_splits, max(abs(int(d)) for d in check_delays(delays, allow_negative=True)), trim)
    if not (hasattr(cv, "split") and hasattr(cv, "get_n_splits")):
        raise TypeError(f"cv must be None, a number of folds or a splitter such as GappedKFold(n_splits=5, gap=4), "
                        f"found {cv!r} ({type(cv).__name__})")
    return cv


def held_out_blocks(cv, n_trs):
    """The held-out blocks of a splitter on a series of ``n_trs`` TRs, in the order it yields them.

    Parameters
    ----------
    cv : splitter
    n_trs : int

    Returns
    -------
    list of int arrays
        TR indices; no TR is held out twice.
    """
    blocks = [np.asarray(test, dtype=int) for _, test in cv.split(np.zeros((n_trs, 1)))]
    if not blocks:
        raise ValueError(f"the splitter {cv!r} gave no folds for {n_trs} TRs")
    held = np.concatenate(blocks)
    if len(np.unique(held)) != len(held):
        raise ValueError(f"the splitter {cv!r} holds some TRs out more than once; its test blocks must not overlap")
    return blocks


def splitter_params(cv):
    """A splitter's settings for results and cache keys: :meth:`GappedKFold.params`, or its repr."""
    return cv.params() if hasattr(cv, "params") and callable(cv.params) else {"splitter": repr(cv)}
