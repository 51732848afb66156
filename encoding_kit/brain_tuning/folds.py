"""The outer folds of a brain-tuning study and the combination of results scored fold by fold."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..analysis.stats import fisher_mean
from ..encoding.cv import DEFAULT_DELAYS, GappedKFold, check_splitter, trimmed_indices
from ..encoding.results import EncodingResult


def study_splitter(cv=None, delays=DEFAULT_DELAYS):
    """The outer folds every run of a study tunes and scores on, as one splitter.

    Parameters
    ----------
    cv : None, int or GappedKFold
        As ``evaluate_encoding``'s ``cv`` (default 5 gapped blocks after the
        default trim, a gap of the longest delay). A :class:`GappedKFold`,
        because each run tunes on one fold's training TRs and is scored on
        that fold only (``folds=[k]``).
    delays : sequence of int

    Returns
    -------
    GappedKFold
        With ``folds=None`` (every block).
    """
    cv = check_splitter(cv, delays)
    if not isinstance(cv, GappedKFold):
        raise TypeError(f"cv must be None, a number of folds or a GappedKFold for a brain-tuning study (each run is "
                        f"scored on one of its blocks), found {cv!r}")
    return dataclasses.replace(cv, folds=None)


def outer_folds(cv, n_trs):
    """The TRs a splitter keeps and its (train, test) splits over ``n_trs`` TRs.

    Parameters
    ----------
    cv : GappedKFold
    n_trs : int

    Returns
    -------
    keep : int array of shape (n_kept,)
        TRs left after trimming.
    splits : list of (train, test) int arrays
        Fold k's training TRs (gapped complement) and held-out block.
    """
    return trimmed_indices(n_trs, cv.trim), list(cv.split(np.zeros((n_trs, 1))))


def combine_folds(parts):
    """One EncodingResult from results that each scored some outer folds (Fisher-z mean over all of them)."""
    r_folds = np.concatenate([p.r_folds for p in parts])
    with np.errstate(invalid="ignore"):
        r2 = np.nanmean(np.stack([p.r2 for p in parts]), axis=0)
    first = parts[0]
    params = {**first.params, "folds": sorted(k for p in parts for k in p.params.get("folds", []))}
    return EncodingResult(r=fisher_mean(r_folds, axis=0), r_folds=r_folds, r2=r2,
                          alphas=np.concatenate([p.alphas for p in parts]), subjects=first.subjects,
                          roi_names=first.roi_names, test_trs=np.concatenate([p.test_trs for p in parts]),
                          params=params)
