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

A method helped only if it beats both controls.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .windows import contiguous_runs

CONTROLS = ("text_only", "shuffled_brain")
MIN_SHIFT = 20
"""Smallest circular shift (TRs, 30 s) of the shuffled-brain control: the brain state stays correlated with itself
over several TRs and each target averages the states 1-4 TRs later, so a shorter shift would leave the shuffled
state partly aligned with its text."""


def check_control(control):
    """``None`` or one of ``CONTROLS``; anything else refused in one sentence."""
    if control is not None and control not in CONTROLS:
        raise ValueError(f"control must be one of {CONTROLS} or None (the method itself), got {control!r}")
    return control


def check_min_shift(min_shift):
    """The shuffled control's smallest shift, an int >= :data:`MIN_SHIFT`."""
    if isinstance(min_shift, bool) or not float(min_shift).is_integer() or int(min_shift) < MIN_SHIFT:
        raise ValueError(f"min_shift must be a whole number of TRs >= {MIN_SHIFT} (a shorter circular shift leaves "
                         f"the autocorrelated brain state partly aligned with its text), got {min_shift!r}")
    return int(min_shift)


def check_seeds(seeds):
    """A non-empty list of distinct whole numbers >= 0 (the tuning seeds of a repeated study)."""
    chosen = [seeds] if np.isscalar(seeds) else list(seeds)
    if not chosen or any(isinstance(s, bool) or not float(s).is_integer() or s < 0 for s in chosen) \
            or len(set(chosen)) != len(chosen):
        raise ValueError(f"seeds must be a non-empty list of distinct whole numbers >= 0, found {seeds!r}")
    return [int(s) for s in chosen]


def shift_within_runs(states, trs, min_shift=MIN_SHIFT, random_state=0):
    """Circularly shift the rows of ``states`` inside each contiguous run of ``trs``.

    Parameters
    ----------
    states : array of shape (n_train, n_state)
        Compressed brain state of each training TR (rows follow ``trs``).
    trs : int array of shape (n_train,)
        Sorted training TRs.
    min_shift : int
        Each run is shifted by ``k`` with ``min_shift <= k <= len(run) - min_shift``,
        so every row moves at least ``min_shift`` TRs away round the run.
    random_state : int or sequence of int
        Seeds the shifts (one per run).

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


def controlled(control, method, states, trs, config, min_shift=MIN_SHIFT, random_state=0):
    """The brain states and config one run trains on: the method's own, or a control's.

    Parameters
    ----------
    control : {None, "text_only", "shuffled_brain"}
    method : {"brainaligner", "direct"}
    states : array of shape (n_train, n_state)
    trs : int array of shape (n_train,)
    config : TuningConfig
    min_shift, random_state : see :func:`shift_within_runs`

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
        return shift_within_runs(states, trs, min_shift, random_state)[0], config
    return states, config
