"""Time of the kit's default ridge solver on one outer fold of the benchmark's design.

The design of ``benchmarks/bench_encoding.py`` without the demo files: 2249
TRs, 250 TR-level features (7 smooth drivers + 243 standard-normal
distractors), standardised and delayed by 1..4 TRs = 1000 columns; the
first outer training block (1,779 rows) with the engine's inner gapped
splits, 19 alphas, ``n_targets`` targets (9,000 = 25 subjects x 360 ROIs).
Times the kit's ridge, ``GappedRidgeCV(...).fit(...).predict(...)``, with the
engine's inner splits (the fold loop passes them as ``cv``). Also times the
same design with its columns scaled from 1e-4 to 1e4 (what
banded ridge does when it weights feature spaces), where the solver scores
in float64.

    python benchmarks/time_kit_ridge.py [--targets 9000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from encoding_kit.encoding.cv import GappedKFold, make_delays, positions, trimmed_indices
from encoding_kit.encoding.estimators import GappedRidgeCV
from encoding_kit.encoding.evaluate import DEFAULT_TRIM
from encoding_kit.encoding.ridge import DEFAULT_ALPHAS

GAP = 4
"""TRs left out around held-out blocks: the engine's default, the longest delay."""


def bench_problem(n_targets=9000, n_trs=2249, seed=0):
    """One outer fold of the benchmark's design.

    Returns
    -------
    X_train : float32 array of shape (n_train, 1000)
    Y_train : float32 array of shape (n_train, n_targets)
        Centred.
    X_test : float32 array of shape (n_test, 1000)
    cv : list of (train, val) index arrays into the training rows
    """
    rng = np.random.default_rng(seed)
    kernel = np.hanning(9) / np.hanning(9).sum()
    drivers = np.stack([np.convolve(rng.standard_normal(n_trs), kernel, "same") for _ in range(7)], 1)
    X = np.concatenate([drivers, rng.standard_normal((n_trs, 243))], 1)
    X = (X - X.mean(0)) / X.std(0)
    keep = trimmed_indices(n_trs, DEFAULT_TRIM)
    Xd = make_delays(X.astype(np.float32), (1, 2, 3, 4))
    W = rng.standard_normal((Xd.shape[1], n_targets)) * (np.arange(Xd.shape[1]) % 250 < 7)[:, None]
    Y = (Xd @ W * rng.uniform(0, 0.3, n_targets) + rng.standard_normal((n_trs, n_targets))).astype(np.float32)
    train, test = GappedKFold(5, GAP).split_indices(keep)[0]
    cv = [positions(split, train) for split in GappedKFold(5, GAP).split_indices(train)]
    Y_train = Y[train] - Y[train].mean(0)
    return Xd[train], Y_train, Xd[test], cv


def time_estimator(problem, repeats):
    """Best wall time in seconds of ``GappedRidgeCV`` fit + predict on the (centred) problem."""
    X_train, Y_train, X_test, cv = problem
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        GappedRidgeCV(cv=cv, fit_intercept=False, backend="numpy").fit(X_train, Y_train).predict(X_test)
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=9000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    problem = bench_problem(args.targets)
    X_train, Y_train, X_test, cv = problem
    scale = np.logspace(-4, 4, X_train.shape[1]).astype(np.float32)[np.random.default_rng(1).permutation(1000)]
    scaled = (X_train * scale, Y_train, X_test * scale, cv)
    print(f"{X_train.shape[0]} training rows, {X_train.shape[1]} columns, {Y_train.shape[1]} targets, "
          f"{len(cv)} inner splits, {len(DEFAULT_ALPHAS)} alphas; best of {args.repeats}")
    print(f"standardised columns            {time_estimator(problem, args.repeats):7.2f} s", flush=True)
    print(f"columns scaled 1e-4 .. 1e4      {time_estimator(scaled, args.repeats):7.2f} s", flush=True)


if __name__ == "__main__":
    main()
