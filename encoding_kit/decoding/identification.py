"""Permutation test of segment identification: decoded blocks paired with other blocks' true time courses.

The null distribution of top-1 identification accuracy comes from *block
pairings*: every held-out block's decoded time course is scored against the
true time course of another held-out block (the blocks' order permuted), and
the accuracy over all blocks is recomputed for each pairing. Both series keep
their own autocorrelation, nothing is cut or wrapped, and a decoded block is
independent of another block's truth whenever the decoder carries no
information. The test is exact (p uniform under no signal) when the blocks
are exchangeable - decoded (or true) blocks of one length drawn alike - which
the circular-shift null it replaces was not for short autocorrelated blocks:
pitfall 26, and ``benchmarks/bench_identification_null.py`` for the
calibration of both.
"""

from __future__ import annotations

import math
from itertools import permutations

import numpy as np

from ..core.validation import check_int

MIN_PAIRINGS = 20
"""Fewer distinct block pairings than this (fewer than 4 blocks) give no p-value (NaN)."""


def _zscore_segments(values, n_seg, segment_trs):
    """(..., n_trs, n_components) -> (..., n_seg, segment_trs * n_components), each segment z-scored."""
    seg = values[..., : n_seg * segment_trs, :].reshape(*values.shape[:-2], n_seg, -1)
    return (seg - seg.mean(-1, keepdims=True)) / (seg.std(-1, keepdims=True) + 1e-12)


def pairing_scores(pred, true, segment_trs=10):
    """Identification of every decoded block against every block's true time course.

    Parameters
    ----------
    pred, true : arrays of shape (..., n_blocks, n_trs, n_components)
        Decoded and true features of the held-out blocks (leading axes: e.g.
        simulations). Only the first ``n_trs // segment_trs`` whole segments
        are scored.
    segment_trs : int

    Returns
    -------
    array of shape (2, ..., n_blocks, n_blocks)
        ``[0][..., i, j]``: top-1 accuracy of decoded block ``i`` against true
        block ``j`` (the share of its segments whose best match among block
        ``j``'s segments is the segment at the same position, as
        :func:`.linear.identification_accuracy` scores one block);
        ``[1][..., i, j]``: the mean correlation of those same-position pairs.
    """
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    n_seg = pred.shape[-2] // segment_trs
    p, t = _zscore_segments(pred, n_seg, segment_trs), _zscore_segments(true, n_seg, segment_trs)
    sim = np.einsum("...isl,...jtl->...ijst", p, t) / p.shape[-1]  # (..., pred block, true block, seg, seg)
    match = np.diagonal(sim, axis1=-2, axis2=-1)  # (..., i, j, seg)
    accuracy = ((sim > match[..., None]).sum(-1) < 1).mean(-1)
    return np.stack([accuracy, match.mean(-1)])


def block_pairings(n_blocks, n_permutations, rng):
    """Pairings of decoded blocks with true blocks, the identity (the observed pairing) first.

    All ``n_blocks!`` orders when there are at most ``n_permutations`` of them,
    else the identity and ``n_permutations`` orders drawn at random.

    Returns
    -------
    (int array of shape (n_pairings, n_blocks), exact)
        Row ``k`` pairs decoded block ``i`` with true block ``pairings[k, i]``;
        ``exact`` is True when every order is listed.
    """
    if math.factorial(n_blocks) <= n_permutations:
        return np.array(list(permutations(range(n_blocks)))), True
    drawn = np.argsort(rng.random((n_permutations, n_blocks)), axis=1)
    return np.vstack([np.arange(n_blocks), drawn]), False


def pairing_pvalues(scores, pairings):
    """p of the identity pairing among ``pairings``, for scores from :func:`pairing_scores`.

    Accuracy first; equal accuracies (frequent: it counts segments) are
    ordered by the mean correlation of the paired segments.

    Parameters
    ----------
    scores : array of shape (2, ..., n_blocks, n_blocks)
    pairings : int array of shape (n_pairings, n_blocks), row 0 the identity

    Returns
    -------
    (p, null_accuracy) : arrays of shape (...)
        ``p = #{pairings scoring at least the identity} / n_pairings`` (the
        identity counts itself, so the smallest p is ``1 / n_pairings``);
        ``null_accuracy``: the mean accuracy of decoded blocks against the
        other blocks' truths (chance measured on the data).
    """
    n = pairings.shape[1]
    stats = scores[..., np.arange(n), pairings].mean(-1)  # (2, ..., n_pairings)
    observed = stats[..., :1]
    at_least = (stats[0] > observed[0] + 1e-12) | ((np.abs(stats[0] - observed[0]) <= 1e-12)
                                                   & (stats[1] >= observed[1] - 1e-12))
    off = ~np.eye(n, dtype=bool)
    null = scores[0][..., off].mean(-1) if n > 1 else np.full(scores.shape[1:-2], np.nan)
    return at_least.mean(-1), null


def identification_permutation_test(blocks, segment_trs=10, n_permutations=1000, random_state=0):
    """Permutation test of top-1 identification accuracy, decoded blocks paired with other blocks' truths.

    Null: each held-out block's decoded time course scored against the true
    time course of another held-out block, for every order of the blocks
    (all ``n_blocks!`` of them when there are at most ``n_permutations``, 120
    for 5 folds; otherwise that many random orders). Under no signal a decoded
    block is independent of every true block, and pairing whole blocks keeps
    the autocorrelation of both series with no cut or wrap, so the p-value is
    exact when the blocks are exchangeable (same length, drawn alike, as the
    equal held-out folds of one story nearly are). Circular shifts within a
    short autocorrelated block, the test's former null, reject up to twice too
    often (pitfall 26). Blocks are cut to the shortest block's whole segments.

    Parameters
    ----------
    blocks : list of (pred, true) pairs of arrays of shape (n_trs_block, n_components)
        Decoded and true features of each held-out block (e.g. one per fold),
        with the same components in every block.
    segment_trs : int
    n_permutations : int
        Most block orders scored (all of them when there are fewer).
    random_state : int
        Seed of the random orders (unused when all are scored).

    Returns
    -------
    dict
        ``top1`` (mean accuracy over blocks, as observed on the cut blocks),
        ``p`` (``#{orders with accuracy >= observed} / #orders``, the observed
        order included; ties in accuracy ordered by the mean correlation of
        the paired segments; NaN when fewer than :data:`MIN_PAIRINGS` orders
        exist), ``null_mean`` (mean accuracy of the decoded blocks against
        the other blocks' truths), ``n_permutations`` (orders scored, the
        observed one included), ``n_pairings`` (distinct orders,
        ``n_blocks!``), ``exact`` (all orders scored) and ``n_segments`` (per
        block).
    """
    n_permutations = check_int(n_permutations, "n_permutations", 1)
    segment_trs = check_int(segment_trs, "segment_trs", 2)
    if not blocks:
        raise ValueError("blocks is empty; give at least one (pred, true) pair of held-out time courses")
    shapes = [(np.shape(p), np.shape(t)) for p, t in blocks]
    if any(len(sp) != 2 or sp != st or sp[1] != shapes[0][0][1] for sp, st in shapes):
        raise ValueError(f"each block needs pred and true of one shape (n_trs, n_components), the same components "
                         f"in every block; found {shapes}")
    n_seg = min(sp[0] for sp, _ in shapes) // segment_trs
    if n_seg < 2:
        raise ValueError(f"the shortest block has {min(sp[0] for sp, _ in shapes)} TRs: fewer than 2 segments of "
                         f"segment_trs = {segment_trs} TRs")
    cut = n_seg * segment_trs
    pred = np.stack([np.asarray(p, np.float64)[:cut] for p, _ in blocks])
    true = np.stack([np.asarray(t, np.float64)[:cut] for _, t in blocks])
    scores = pairing_scores(pred, true, segment_trs)
    pairings, exact = block_pairings(len(blocks), n_permutations, np.random.default_rng(random_state))
    n_pairings = math.factorial(len(blocks))
    p, null_mean = pairing_pvalues(scores, pairings)
    return {"top1": float(np.diagonal(scores[0]).mean()), "p": float(p) if n_pairings >= MIN_PAIRINGS else np.nan,
            "null_mean": float(null_mean), "n_permutations": len(pairings),
            "n_pairings": n_pairings, "exact": exact, "n_segments": n_seg}
