"""Does a perfect model score 1 against the kit's noise ceiling? The demo's planted truth says.

The demo's noise-free planted signal (``truth["signal"]``, the part of the
responses every subject shares) is scored like a model: Pearson r with each
subject's data in each of the kit's 5 outer held-out blocks (trimmed TRs),
averaged in Fisher z. It is then divided by three ceilings:

* the kit's ceiling (:func:`encoding_kit.analysis.roi_analysis.story_ceiling`:
  :func:`encoding_kit.analysis.stats.noise_ceiling` estimated in the same blocks);
* the same estimator on all trimmed TRs at once (no blocks);
* the former ceiling, the leave-one-subject-out ISC on all trimmed TRs.

Prints, over the driven ROIs (their number read from the truth file), the
mean normalised r and the range of the ROI means (mean over subjects), and,
over the noise-only ROIs, how many have a ceiling of at least 0.05 (so that
normalised r is defined there) in at least one subject and on average over
subjects.

    python benchmarks/bench_ceiling.py [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from encoding_kit.analysis.stats import (
    columnwise_r,
    fisher_mean,
    loso_isc,
    noise_ceiling,
    normalized_r,
    quiet_nan_warnings,
)
from encoding_kit.data.course_files import load_fmri
from encoding_kit.demo.generate import load_truth
from encoding_kit.encoding.cv import contiguous_blocks, trimmed_indices
from encoding_kit.encoding.evaluate import DEFAULT_TRIM
from encoding_kit.run.runner import ensure_data

MIN_CEILING = 0.05
"""The kit's floor for normalised r (:func:`encoding_kit.analysis.stats.normalized_r`)."""


def planted_signal_r(signal, fmri, blocks):
    """Held-out r of the noise-free signal as a model's prediction, scored per block.

    Parameters
    ----------
    signal : array of shape (n_trs, n_rois)
    fmri : dict {subject: array (n_trs, n_rois)}
    blocks : list of int arrays
        TR indices of each outer fold's held-out block.

    Returns
    -------
    array of shape (n_subjects, n_rois)
        Fisher-z mean over blocks, as the kit scores a model.
    """
    return np.stack([fisher_mean(np.array([columnwise_r(signal[b], y[b]) for b in blocks]), axis=0)
                     for y in fmri.values()])


def summarise(label, r, ceiling, driven):
    """Print normalised r over the driven ROIs and the noise-only ROIs that get a ceiling."""
    norm = normalized_r(r, ceiling, MIN_CEILING)
    noise = ~driven
    passes = ceiling[:, noise] >= MIN_CEILING  # NaN compares False
    with quiet_nan_warnings():  # the kit's ceiling is NaN in every subject of most noise-only ROIs
        roi_means = np.nanmean(norm[:, driven], axis=0)
        noise_means = np.nanmean(ceiling[:, noise], axis=0)
    print(f"  {label:44s} {np.nanmean(norm[:, driven]):6.3f}   {np.nanmin(roi_means):.2f}-{np.nanmax(roi_means):.2f}"
          f"   {int(passes.any(0).sum()):4d} {int((noise_means >= MIN_CEILING).sum()):4d}   {passes.mean():.3f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    folder, source = ensure_data(args.data_dir)
    if source != "demo":
        sys.exit("this benchmark needs the demo dataset (its planted truth)")
    fmri = load_fmri(data_dir=folder)
    truth = load_truth(folder)
    driven = truth["driven"]
    n_trs = next(iter(fmri.values())).shape[0]
    trs = trimmed_indices(n_trs, DEFAULT_TRIM)
    blocks = contiguous_blocks(trs, 5)  # the held-out blocks of evaluate_encoding and story_ceiling
    r = planted_signal_r(truth["signal"], fmri, blocks)
    print(f"demo: {len(fmri)} subjects x {n_trs} TRs; {int(driven.sum())} driven ROIs, "
          f"{int((~driven).sum())} noise-only; scored on {len(trs)} trimmed TRs in {len(blocks)} blocks\n")
    print(f"  {'ceiling':44s} {'norm r':>6s}   {'ROI means':9s}   noise-only ROIs with ceiling >= {MIN_CEILING}:"
          " any subject, subject mean; fraction of subject x ROI")
    summarise("kit: noise_ceiling per block (story_ceiling)", r, noise_ceiling(fmri, blocks=blocks), driven)
    summarise("noise_ceiling on all trimmed TRs", r, noise_ceiling(fmri, trs), driven)
    summarise("former: leave-one-out ISC on all trimmed TRs", r, loso_isc(fmri, trs), driven)


if __name__ == "__main__":
    main()
