"""Training examples for brain tuning: one text window and one brain state per training TR.

Nothing of an outer fold's held-out block reaches these examples:

* the TRs are the fold's training TRs, which already leave out ``gap`` TRs on
  each side of the held-out block (:func:`encoding_kit.encoding.cv.gapped_splits`);
* the brain target of the text of TR ``t`` is the mean brain state at TRs
  ``t + delays`` (the hemodynamic lag, the FIR delays of the ridge), and every
  one of those TRs must be a training TR of the same contiguous run;
* the text window of TR ``t`` ends at the last token of TR ``t``'s last word
  and starts no earlier than the first word of ``t``'s contiguous run of
  training TRs: the context never reaches back over the gap into held-out words.

The windows are the ones :func:`~encoding_kit.features.text.extract_text_features`
reads in ``mode="tr"`` (a TR's words share one window of ``context_tokens``
tokens ending at the TR's last word), cut at the start of the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.validation import check_delays
from ..encoding.cv import DEFAULT_DELAYS

MIN_TRAINING_TRS = 24
"""Fewest training examples (TRs with text and a brain target) a tuning run accepts."""


@dataclass
class TuningExamples:
    """Text windows and brain targets of the training TRs.

    Attributes
    ----------
    trs : int array of shape (n_examples,)
        The TR whose text each example holds.
    windows : list of int arrays
        Token ids of each example's window (no special tokens), at most
        ``context_tokens`` long.
    targets : float32 array of shape (n_examples, n_state)
        Mean brain state at ``trs + delays``.
    validation : TuningExamples, optional
        The examples of an inner validation block of the training TRs, for
        early stopping (:func:`inner_validation_split`); not trained on.
    """

    trs: np.ndarray
    windows: list
    targets: np.ndarray
    validation: TuningExamples | None = None

    def __len__(self):
        return len(self.trs)


def contiguous_runs(trs):
    """Split sorted TR indices into runs of consecutive TRs, list of int arrays."""
    trs = np.asarray(trs, dtype=int)
    if trs.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(trs) != 1) + 1
    return np.split(trs, breaks)


def inner_validation_split(train_trs, n_val, gap):
    """Split a fold's training TRs into the TRs tuned on and an inner validation block for early stopping.

    The validation block is the last ``n_val`` TRs of the last contiguous run of
    training TRs; the ``gap`` TRs before it are dropped, so no tuning example's
    delayed target or text reaches into it (its own windows start at its first
    TR, :func:`training_examples`). Only training TRs are split: the outer
    fold's held-out block and its gaps are not in ``train_trs``.

    Parameters
    ----------
    train_trs : int array of shape (n_train,)
        Sorted training TRs of the outer fold.
    n_val : int
        TRs of the validation block.
    gap : int
        TRs dropped between the tuning TRs and the validation block (the longest delay).

    Returns
    -------
    fit_trs : int array
        Training TRs before the gap (and every other run).
    val_trs : int array of shape (n_val,)
    """
    runs = contiguous_runs(train_trs)
    if not runs or len(runs[-1]) < n_val + gap + 2 * MIN_TRAINING_TRS:
        longest = len(runs[-1]) if runs else 0
        raise ValueError(f"val_trs={n_val}: the last run of training TRs has {longest} TRs, too few for an inner "
                         f"validation block of {n_val} TRs after a gap of {gap} (and tuning TRs before it); use a "
                         "smaller val_trs, patience=0 or more TRs")
    val = runs[-1][-n_val:]
    train_trs = np.asarray(train_trs, dtype=int)
    return train_trs[train_trs < val[0] - gap], val


def training_examples(tokens, word_trs, train_trs, train_states, delays=DEFAULT_DELAYS, context_tokens=32,
                      min_examples=MIN_TRAINING_TRS):
    """Pair each usable training TR's text window with its delayed brain state.

    Parameters
    ----------
    tokens : StoryTokens
        The story tokenized once (:func:`~encoding_kit.features.text.tokenize_story`);
        every word has tokens (tokenless words filled).
    word_trs : int array of shape (n_words,)
        TR of each word, in story order.
    train_trs : int array of shape (n_train,)
        Sorted training TRs of the outer fold.
    train_states : array of shape (n_train, n_state)
        Compressed brain state at each training TR (rows follow ``train_trs``);
        the held-out TRs' states are never passed in.
    delays : sequence of int
        Lags (TRs) between the text and the brain response it evokes.
    context_tokens : int
        Longest window, in tokens.
    min_examples : int
        Fewest examples accepted.

    Returns
    -------
    TuningExamples
    """
    delays = check_delays(delays)
    train_trs = np.asarray(train_trs, dtype=int)
    train_states = np.asarray(train_states, dtype=np.float32)
    if train_states.shape[0] != len(train_trs):
        raise ValueError(f"train_states has {train_states.shape[0]} rows for {len(train_trs)} training TRs")
    word_trs = np.asarray(word_trs, dtype=int)
    row = {int(t): i for i, t in enumerate(train_trs)}
    trs, windows, targets = [], [], []
    for run in contiguous_runs(train_trs):
        first_word = int(np.searchsorted(word_trs, run[0], side="left"))
        if first_word >= len(word_trs):
            continue
        run_start_token = int(tokens.word_first[first_word])
        for t in run[: len(run) - max(delays)]:  # the delayed targets stay inside the run
            last_word = int(np.searchsorted(word_trs, t, side="right")) - 1
            if last_word < first_word:  # no word heard yet in this run
                continue
            end = int(tokens.word_last[last_word]) + 1
            start = max(run_start_token, end - int(context_tokens))
            trs.append(int(t))
            windows.append(np.asarray(tokens.ids[start:end], dtype=np.int64))
            targets.append(train_states[[row[int(t) + d] for d in delays]].mean(0))
    if len(trs) < min_examples:
        raise ValueError(f"the fold's training TRs give only {len(trs)} tuning examples (TRs with words whose "
                         f"brain response at +{delays} TRs is also a training TR); at least {min_examples} are "
                         f"needed: use more TRs (MAX_TRS) or fewer outer folds")
    return TuningExamples(np.array(trs, dtype=int), windows, np.stack(targets).astype(np.float32))
