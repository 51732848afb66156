"""Encoding engine vs the course's procedure vs himalaya called directly.

Same inputs for all: the full-size demo (2249 TRs, 25 subjects x 360 ROIs)
and 250 TR-level features (the demo's planted drivers, as many as its truth
file holds, + standard-normal distractor columns up to 250) delayed by 1..4
TRs = 1000 columns. Prints every figure and ratio from one run.

    python benchmarks/bench_encoding.py [--data-dir DIR] [--skip PART ...]

The kit's two rows always run (every ratio needs them). ``--skip`` leaves
out the slow comparison rows (``course``: the course's procedure, about 7
minutes on 2 cores; ``himalaya``: himalaya called directly; ``kit-himalaya``:
the kit's pipeline on himalaya's solver; about 2 minutes each) or the
``planted`` truth part (six more fits and the circular-shift test), so that
the figures can come from runs short enough for a shared machine.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from encoding_kit.analysis.stats import (  # noqa: E402
    columnwise_r,
    fisher_mean,
    prediction_significance,  # noqa: E402
)
from encoding_kit.data.course_files import load_fmri
from encoding_kit.demo.generate import hrf_convolved_drivers, load_truth, truth_fold_ceiling
from encoding_kit.encoding.cv import make_delays, trimmed_indices  # noqa: E402
from encoding_kit.encoding.estimators import GappedRidgeCV
from encoding_kit.encoding.evaluate import DEFAULT_TRIM, evaluate_encoding  # noqa: E402
from encoding_kit.run.runner import ensure_data

COURSE_ALPHAS = [1e4, 1e5, 1e6]
PARTS = ("course", "himalaya", "kit-himalaya", "planted")
"""What ``--skip`` can leave out."""
N_FEATURES = 250
"""TR-level features before delays: the planted drivers + distractors up to this many (1000 delayed columns)."""


def course_procedure(X, fmri, trim=DEFAULT_TRIM):
    """Per subject: StandardScaler on all TRs, delays, RidgeCV(3 alphas, cv=5) in 5 plain outer folds.

    The story's first and last ``trim`` TRs are dropped after delaying, as the
    course does and as the kit does, so all procedures are scored on the same
    TRs (the onset and offset of the story carry large, easily predicted
    swings that would otherwise favour whichever procedure keeps them).
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold
    from sklearn.preprocessing import StandardScaler

    keep = trimmed_indices(X.shape[0], trim)
    Xd = make_delays(StandardScaler().fit_transform(X), (1, 2, 3, 4))[keep]
    r = []
    for y in (y[keep] for y in fmri.values()):
        folds = []
        for train, test in KFold(5).split(Xd):
            model = RidgeCV(alphas=COURSE_ALPHAS, cv=5).fit(Xd[train], y[train])
            folds.append(columnwise_r(model.predict(Xd[test]), y[test]))
        r.append(fisher_mean(np.array(folds), axis=0))
    return np.array(r)


def himalaya_direct(X, fmri, trim=DEFAULT_TRIM):
    """himalaya RidgeCV over all subjects at once, 19 alphas, plain KFold inner and outer, the same trimmed TRs."""
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV
    from sklearn.model_selection import KFold
    from sklearn.preprocessing import StandardScaler

    set_backend("numpy")
    keep = trimmed_indices(X.shape[0], trim)
    Y = np.concatenate(list(fmri.values()), axis=1)[keep]
    folds = []
    for train, test in KFold(5).split(keep):
        scaler = StandardScaler().fit(X[keep][train])
        Xd = make_delays(scaler.transform(X).astype(np.float32), (1, 2, 3, 4))[keep]
        model = RidgeCV(alphas=np.logspace(-1, 8, 19), cv=5).fit(Xd[train], Y[train])
        folds.append(columnwise_r(model.predict(Xd[test]), Y[test]))
    return fisher_mean(np.array(folds), axis=0).reshape(len(fmri), -1)


def timed(label, fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    print(f"{label:<48s} {seconds:8.1f} s", flush=True)
    return out, seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--skip", nargs="+", choices=PARTS, default=[],
                        help="parts to leave out: the slow comparison rows and/or the planted truth")
    args = parser.parse_args()
    run = {part: part not in args.skip for part in PARTS}
    folder, source = ensure_data(args.data_dir)
    if source != "demo":
        sys.exit("this benchmark needs the demo dataset (its planted truth)")
    fmri = load_fmri(data_dir=folder)
    truth = load_truth(folder)
    X = benchmark_features(truth["drivers"])
    driven = truth["driven"]
    n_drivers = truth["drivers"].shape[1]
    print(f"inputs: {X.shape[0]} TRs, {X.shape[1]} TR-level features ({n_drivers} planted drivers + "
          f"{X.shape[1] - n_drivers} distractors), {X.shape[1] * 4} delayed columns, {len(fmri)} subjects x 360 ROIs; "
          f"{int(driven.sum())} driven ROIs, {int((~driven).sum())} noise-only\n")

    kit = dict(progress=False, cache=False)  # never a stored result: every figure is a fit
    r_mean = {}
    if run["course"]:
        r_course, t_course = timed("course: per subject RidgeCV(3 alphas, cv=5)", course_procedure, X, fmri)
        r_mean["course"] = r_course
    if run["himalaya"]:
        r_direct, t_direct = timed("himalaya RidgeCV direct (19 alphas, no gaps)", himalaya_direct, X, fmri)
        r_mean["himalaya direct"] = r_direct
    res, t_kit = timed("kit: evaluate_encoding (19 alphas, nested gapped)", evaluate_encoding, X, fmri, **kit)
    res3, t_kit3 = timed("kit: evaluate_encoding (course's 3 alphas)", evaluate_encoding, X, fmri,
                         fitter=GappedRidgeCV(alphas=COURSE_ALPHAS), **kit)
    r_mean.update({"kit": res.r, "kit 3 alphas": res3.r})
    if run["kit-himalaya"]:
        res_h, t_kit_h = timed("kit with solver='himalaya' (19 alphas)", evaluate_encoding, X, fmri,
                               fitter=GappedRidgeCV(solver="himalaya"), **kit)
    if run["course"]:
        print("\nspeed-up over the course procedure:")
        if run["himalaya"]:
            print(f"  himalaya direct      {t_course / t_direct:5.2f}x")
        print(f"  kit, 19 alphas       {t_course / t_kit:5.2f}x   (target >= 3x)")
        print(f"  kit, 3 alphas        {t_course / t_kit3:5.2f}x   (target >= 5x)")
    if run["kit-himalaya"]:
        print(f"kit's svd solver vs the same pipeline on himalaya's solve_ridge_cv_svd: {t_kit_h / t_kit:5.2f}x; "
              f"same alphas {np.isclose(res.alphas, res_h.alphas, rtol=1e-5).mean():.4f}, "
              f"max |r difference| {np.nanmax(np.abs(res.r - res_h.r)):.1e}")

    print("\nmean held-out r over all ROIs (mean over subjects of ROI-mean r):")
    print("  " + "   ".join(f"{name} {np.nanmean(np.nanmean(r, axis=1)):.4f}" for name, r in r_mean.items()))
    if run["planted"]:
        planted_truth(X, fmri, truth, res, kit)


def planted_truth(X, fmri, truth, res, kit):
    """Print what the fits recover of the demo's planted truth: ratios to the noise-free ceiling, significance."""
    driven = truth["driven"]
    n_drivers = truth["drivers"].shape[1]
    ceiling = truth_fold_ceiling(truth, fmri, res)
    print("\nplanted truth (demo):")
    print(f"  {int(driven.sum())} driven ROIs: kit mean r {np.nanmean(res.r[:, driven]):.4f}, noise-free ceiling "
          f"{np.nanmean(ceiling[:, driven]):.4f}, ratio {np.nanmean(res.r[:, driven]) / np.nanmean(ceiling[:, driven]):.3f}"
          f" ({X.shape[1] * 4:,} columns, {1 - n_drivers / X.shape[1]:.0%} of them noise; "
          "the table below separates the features)")
    recovery_table(X, fmri, truth, ceiling, res, kit)
    sig = prediction_significance(res, fmri) if res.predictions is not None else None
    noise_r = np.nanmean(res.r[:, ~driven])
    print(f"  noise-only ROIs: mean r {noise_r:+.4f} (target within +-0.02)")
    if sig is None:
        res_p = evaluate_encoding(X, fmri, return_predictions=True, **kit)
        sig = prediction_significance(res_p, fmri)
    print(f"  noise-only ROIs flagged p < .05 before FDR: {np.mean(sig['p'][:, ~driven] < 0.05):.3f} (target ~0.05)")
    print(f"  driven ROIs flagged p < .05 before FDR:     {np.mean(sig['p'][:, driven] < 0.05):.3f}")


def benchmark_features(drivers, n_features=N_FEATURES, seed=0):
    """The planted drivers followed by standard-normal distractors, array of shape (n_trs, n_features).

    Parameters
    ----------
    drivers : array of shape (n_trs, n_drivers)
        ``truth["drivers"]``; their number comes from the truth file.
    """
    n_trs, n_drivers = drivers.shape
    if n_drivers >= n_features:
        raise ValueError(f"the benchmark expects fewer than {n_features} planted drivers; the truth file has {n_drivers}")
    rng = np.random.default_rng(seed)
    return np.concatenate([drivers, rng.standard_normal((n_trs, n_features - n_drivers))], 1)


def recovery_table(X, fmri, truth, ceiling, res, kit):
    """Held-out r / noise-free ceiling over driven ROIs, by their planted strength, for six fits.

    Per-subject fits are limited by the noise in their own weights (slow
    responses, autocorrelated noise), whatever the solver: even the planted
    regressors themselves, which the responses are exactly linear in, stay
    below the ceiling per subject. Fitting the mean of the 25 subjects
    (``train_on="group"``) removes most of that noise.
    """
    driven = truth["driven"]
    strength = np.digitize(truth["isc_target"], [0.3, 0.45])  # planted leave-one-out ISC: <0.3, 0.3-0.45, >=0.45
    drivers = truth["drivers"]
    n = drivers.shape[1]
    planted = hrf_convolved_drivers(drivers, truth["hrf"])  # the responses are linear in these: a best case
    fits = {f"{X.shape[1] * 4} columns, per subject": res,
            f"{X.shape[1] * 4} columns, group": evaluate_encoding(X, fmri, train_on="group", **kit),
            f"drivers only ({4 * n} columns), per subject": evaluate_encoding(drivers, fmri, **kit),
            f"drivers only ({4 * n} columns), group": evaluate_encoding(drivers, fmri, train_on="group", **kit),
            f"planted regressors ({n}, no delay), per subject": evaluate_encoding(planted, fmri, delays=(0,),
                                                                                         **kit),
            f"planted regressors ({n}, no delay), group": evaluate_encoding(planted, fmri, delays=(0,),
                                                                                   train_on="group", **kit)}
    print("  r / noise-free ceiling over driven ROIs (target >= 0.90), by planted ISC:")
    print(f"    {'fit':46s} {'all':>6s} {'<0.3':>6s} {'0.3-0.45':>8s} {'>=0.45':>6s}")
    for name, fit in fits.items():
        ratios = [np.nanmean(fit.r[:, m]) / np.nanmean(ceiling[:, m])
                  for m in (driven, *(driven & (strength == k) for k in range(3)))]
        print(f"    {name:46s} {ratios[0]:6.3f} {ratios[1]:6.3f} {ratios[2]:8.3f} {ratios[3]:6.3f}")
    counts = [int((driven & (strength == k)).sum()) for k in range(3)]
    print(f"    (driven ROIs per column: {counts})")


if __name__ == "__main__":
    main()
