"""The two controls a brain-tuned model must beat, and the checks of a repeated study's arguments.

A tuned model that scores above the pretrained one has been fine-tuned on the
story's text through a new head as well as on the brain data; either can move
held-out r. The controls keep everything but the brain data's pairing with
the text (the same folds, text windows, epochs, compression, head, seed):

* ``"text_only"``: the brain term off. ``direct`` trains with
  ``brain_weight=0`` (masked-LM loss only); ``brainaligner`` gets a brain input
  of zeros (its projection's bias is all that reaches the hidden states). The
  states are zeroed for both, so the run no longer depends on the compression:
  its training examples, tuning key and cached scores are shared by every
  compression of the same size (one text-only run per method, seed and fold).
* ``"shuffled_brain"``: the compressed brain states of the training TRs are
  circularly shifted inside each contiguous run of training TRs, by a seeded
  random shift of at least ``min_shift`` TRs either way round the run. The
  states keep their autocorrelation and distribution; their alignment with
  the text is gone. Only training TRs are moved: the held-out block and its
  gaps never enter (they are not in the runs).

The smallest shift comes from the data (:func:`autocorrelation_min_shift`):
the shortest lag at which the training targets (each TR's brain state
averaged over the FIR delays, what a tuning example is paired with) have a
mean autocorrelation over their columns below :data:`AC_THRESHOLD`, i.e. a
shifted target shares less than 1 % of its variance with the target it
replaces. A shorter ``min_shift`` is refused: it would leave the shuffled
state partly aligned with its text.

A method helped only if it beats both controls.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..encoding.cv import DEFAULT_DELAYS
from .windows import contiguous_runs

CONTROLS = ("text_only", "shuffled_brain")
AC_THRESHOLD = 0.1
"""Mean lag-k autocorrelation of the training targets below which a circular shift of k TRs counts as unaligned
(r < 0.1: under 1 % of shared variance)."""


def check_control(control):
    """``None`` or one of ``CONTROLS``; anything else refused in one sentence."""
    if control is not None and control not in CONTROLS:
        raise ValueError(f"control must be one of {CONTROLS} or None (the method itself), got {control!r}")
    return control


def check_min_shift(min_shift):
    """The shuffled control's smallest shift: ``None`` (from the data's autocorrelation) or a whole number >= 1."""
    if min_shift is None:
        return None
    if isinstance(min_shift, bool) or not isinstance(min_shift, (int, float, np.integer, np.floating)) \
            or not float(min_shift).is_integer() or min_shift < 1:
        raise ValueError(f"min_shift must be None (the shortest shift the brain data's autocorrelation allows) or a "
                         f"whole number of TRs >= 1, got {min_shift!r}")
    return int(min_shift)


def lagged_autocorrelation(targets, trs, lag):
    """Mean over columns of the lag-``lag`` autocorrelation of ``targets``, pairs inside contiguous runs of ``trs``.

    Parameters
    ----------
    targets : array of shape (n, n_state)
        Rows follow ``trs``.
    trs : int array of shape (n,)
        Sorted TRs: a pair (t, t + lag) counts only when both are in the same contiguous run.
    lag : int

    Returns
    -------
    float
        Each run is centred on its own mean; NaN when no run is longer than ``lag``.
    """
    cross, total, start, pairs = 0.0, 0.0, 0, 0
    for run in contiguous_runs(trs):  # the usual estimator, each run centred on its own mean, pooled over runs
        block = targets[start:start + len(run)]
        block = block - block.mean(0)
        total = total + (block * block).sum(0)
        if len(run) > lag:
            cross = cross + (block[:-lag] * block[lag:]).sum(0)
            pairs += len(run) - lag
        start += len(run)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.asarray(cross / total, dtype=float)
    return float(np.nanmean(r)) if pairs and np.isfinite(r).any() else np.nan


def delayed_targets(states, trs, delays):
    """Each training TR's state averaged over ``t + delays`` inside its run: (targets (m, n_state), their TRs (m,))."""
    delays = np.asarray(delays, dtype=int)
    rows, out, start = [], [], 0
    for run in contiguous_runs(trs):
        n, top = len(run), int(delays.max())
        if n > top:
            block = states[start:start + n]
            out.append(np.mean([block[d:n - top + d] for d in delays], axis=0))
            rows.append(run[:n - top])
        start += n
    if not out:
        return np.zeros((0, states.shape[1])), np.zeros(0, int)
    return np.concatenate(out), np.concatenate(rows)


def autocorrelation_min_shift(states, trs, delays=DEFAULT_DELAYS, threshold=AC_THRESHOLD):
    """The shortest circular shift that leaves the training targets unaligned, from their autocorrelation.

    Parameters
    ----------
    states : array of shape (n_train, n_state)
        Compressed brain state of each training TR (rows follow ``trs``).
    trs : int array of shape (n_train,)
        Sorted training TRs (never held-out ones).
    delays : sequence of int
        FIR delays: a tuning target is the state averaged over ``t + delays``.
    threshold : float
        The autocorrelation a shift must fall below (:data:`AC_THRESHOLD`).

    Returns
    -------
    int
        The smallest lag k >= 1 whose mean lag-k autocorrelation of the
        delay-averaged targets (pairs inside each contiguous run) is below ``threshold``.
    """
    states, trs = np.asarray(states, dtype=np.float64), np.asarray(trs, dtype=int)
    targets, target_trs = delayed_targets(states, trs, delays)
    longest = max((len(r) for r in contiguous_runs(target_trs)), default=0)
    for lag in range(1, longest // 2 + 1):
        if lagged_autocorrelation(targets, target_trs, lag) < threshold:
            return lag
    raise ValueError(f"the training brain states stay autocorrelated above {threshold} for half of their longest "
                     f"training run ({longest} TRs): no circular shift inside a run leaves them unaligned; use "
                     "fewer outer folds or more TRs")


MAX_SEED = 2 ** 32 - 1
"""Largest seed accepted (numpy's and torch's generators both take it)."""


def check_seeds(seeds):
    """A non-empty list of distinct whole numbers in 0..:data:`MAX_SEED` (the tuning seeds of a repeated study)."""
    chosen = [seeds] if seeds is None or np.isscalar(seeds) or not hasattr(seeds, "__iter__") else list(seeds)

    def whole(s):
        return isinstance(s, (int, np.integer, float, np.floating)) and not isinstance(s, bool) \
            and float(s).is_integer() and 0 <= s <= MAX_SEED

    if not chosen or not all(whole(s) for s in chosen) or len(set(chosen)) != len(chosen):
        raise ValueError(f"seeds must be a non-empty list of distinct whole numbers in 0..{MAX_SEED}, found {seeds!r}")
    return [int(s) for s in chosen]


def shift_within_runs(states, trs, min_shift=None, random_state=0, delays=DEFAULT_DELAYS, threshold=AC_THRESHOLD):
    """Circularly shift the rows of ``states`` inside each contiguous run of ``trs``.

    Parameters
    ----------
    states : array of shape (n_train, n_state)
        Compressed brain state of each training TR (rows follow ``trs``).
    trs : int array of shape (n_train,)
        Sorted training TRs.
    min_shift : int, optional
        Each run is shifted by ``k`` with ``min_shift <= k <= len(run) - min_shift``,
        so every row moves at least ``min_shift`` TRs away round the run. Default
        (``None``) the shortest shift the data allow
        (:func:`autocorrelation_min_shift`); a smaller one is refused.
    random_state : int or sequence of int
        Seeds the shifts (one per run).
    delays, threshold : see :func:`autocorrelation_min_shift`

    Returns
    -------
    shifted : array of shape (n_train, n_state)
    shifts : list of int
        The shift of each run, in order.
    """
    min_shift = check_min_shift(min_shift)
    states, trs = np.asarray(states), np.asarray(trs, dtype=int)
    if states.shape[0] != len(trs):
        raise ValueError(f"states has {states.shape[0]} rows for {len(trs)} training TRs")
    allowed = autocorrelation_min_shift(states, trs, delays, threshold)
    if min_shift is None:
        min_shift = allowed
    elif min_shift < allowed:
        raise ValueError(f"min_shift={min_shift} is shorter than the {allowed} TRs at which the training brain "
                         f"targets' mean autocorrelation falls below {threshold}: a shift of {min_shift} TRs leaves "
                         f"them partly aligned with their text; use min_shift >= {allowed} or None")
    rng = np.random.default_rng(random_state)
    shifted, shifts, start = np.empty_like(states), [], 0
    for run in contiguous_runs(trs):
        n = len(run)
        if n < 2 * min_shift:
            raise ValueError(f"the training run of TRs {run[0]}..{run[-1]} has {n} TRs, too few for a circular "
                             f"shift of at least min_shift={min_shift} either way; use fewer outer folds or more TRs")
        k = int(rng.integers(min_shift, n - min_shift + 1))
        shifted[start:start + n] = np.roll(states[start:start + n], k, axis=0)
        shifts.append(k)
        start += n
    return shifted, shifts


def controlled(control, method, states, trs, config, min_shift=None, random_state=0, delays=DEFAULT_DELAYS):
    """The brain states and config one run trains on: the method's own, or a control's.

    Parameters
    ----------
    control : {None, "text_only", "shuffled_brain"}
    method : {"brainaligner", "direct"}
    states : array of shape (n_train, n_state)
    trs : int array of shape (n_train,)
    config : TuningConfig
    min_shift, random_state, delays : see :func:`shift_within_runs`

    Returns
    -------
    states : array of shape (n_train, n_state)
    config : TuningConfig
    """
    check_control(control)
    if control == "text_only":  # zero states for both: no brain number reaches the run, whatever the compression
        zeros = np.zeros_like(states)
        return (zeros, dataclasses.replace(config, brain_weight=0.0)) if method == "direct" else (zeros, config)
    if control == "shuffled_brain":
        return shift_within_runs(states, trs, min_shift, random_state, delays)[0], config
    return states, config
