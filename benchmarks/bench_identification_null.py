"""Is the identification permutation test calibrated on the held-out blocks the notebooks use? Simulations say.

Decoded and true feature time courses are simulated as independent AR(1)
series in every held-out block (no signal), on the block lengths of notebook
07's decoders (5 outer gapped folds of the quick run's and the full story's
TRs, trimmed as the kit trims) and of pitfall 26 (5 blocks of 76 TRs, 8
components), with 10-TR segments. Each row is scored with the kit's test
(:func:`encoding_kit.decoding.identification.identification_permutation_test`:
every order of the blocks, each decoded block paired with another block's
truth) and reports how often p <= 0.05 and p <= 0.01, with the binomial 95 %
interval of that rate. The circular-shift null the kit used before (labels
rolled within each block by at least one segment, 199 shifts) is scored on
pitfall 26's setting for comparison. Power rows add the true time course to
the decoded one (decoded = true + independent AR(1) noise, so that their
correlation is ``r``). With ``--demo``, the power on a demo dataset of the
quick run's length: notebook 07's ridge decoder and folds decode the demo's
planted drivers (5 components) from all ROIs, which carry the planted
signal, and from the noise-only ROIs, which carry none; each subject's p is
printed.

Writes the table to ``benchmarks/results/identification_null.csv`` (with the
date, machine and commit).

    python benchmarks/bench_identification_null.py [--sims 4000] [--demo] [--out CSV]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.signal import lfilter
from scipy.stats import binomtest

from encoding_kit.core.storage import atomic_write
from encoding_kit.decoding.identification import block_pairings, pairing_pvalues, pairing_scores
from encoding_kit.encoding.cv import DEFAULT_DELAYS
from encoding_kit.encoding.evaluate import DEFAULT_TRIM
from encoding_kit.encoding.fold_loop import OuterFolds
from encoding_kit.run.profiles import QUICK_TRS, REAL_STORY_TRS

ROOT = Path(__file__).resolve().parent.parent
SEGMENT_TRS = 10
N_FOLDS = 5
QUICK_COMPONENTS, FULL_COMPONENTS = 5, 20
"""Feature components notebook 07 decodes (``n_components=20 if not QUICK else 5``)."""
BURN_IN = 200
"""Samples discarded before each simulated AR(1) block, so every block starts in the stationary regime."""


def notebook_block_lengths(n_trs):
    """Held-out block lengths of notebook 07's decoders on ``n_trs`` TRs (5 gapped outer folds, trimmed)."""
    folds = OuterFolds.gapped(n_trs, N_FOLDS, max(DEFAULT_DELAYS), DEFAULT_TRIM, N_FOLDS)
    return [len(test) for _, test in folds.splits]


class Scenario(NamedTuple):
    """One row: AR(1) coefficient(s), block lengths, components; ``r`` > 0 plants a signal of that correlation."""

    name: str
    phi: float | tuple
    lengths: list
    n_components: int
    r: float = 0.0
    null: str = "block pairing"

    def phis(self):
        return np.broadcast_to(np.asarray(self.phi, float), (len(self.lengths),))


def ar_blocks(rng, scenario, n_sims):
    """Independent AR(1) series of unit variance: array of shape (n_sims, n_blocks, min length, n_components).

    Blocks are cut to the shortest one, as the test cuts them (the notebooks' blocks differ by one TR at most).
    """
    n = min(scenario.lengths)
    out = np.empty((n_sims, len(scenario.lengths), n, scenario.n_components))
    for b, phi in enumerate(scenario.phis()):
        e = rng.standard_normal((n_sims, n + BURN_IN, scenario.n_components)) * np.sqrt(1 - phi ** 2)
        out[:, b] = lfilter([1.0], [1.0, -phi], e, axis=1)[:, BURN_IN:]
    return out


def simulate(scenario, n_sims, rng):
    """p-values of ``n_sims`` simulations of one scenario, and their mean top-1 accuracy."""
    pairings, _ = block_pairings(len(scenario.lengths), 1000, rng)
    chunk = 100 if scenario.null == "block pairing" else 10  # the former null scores 200 shifts of each block
    ps, top1 = [], []
    for start in range(0, n_sims, chunk):
        k = min(chunk, n_sims - start)
        true = ar_blocks(rng, scenario, k)
        pred = ar_blocks(rng, scenario, k)
        if scenario.r > 0:
            pred = scenario.r * true + np.sqrt(1 - scenario.r ** 2) * pred
        if scenario.null == "block pairing":
            scores = pairing_scores(pred, true, SEGMENT_TRS)
            p, _ = pairing_pvalues(scores, pairings)
            acc = np.diagonal(scores[0], axis1=-2, axis2=-1).mean(-1)
        else:
            p, acc = former_shift_pvalues(pred, true, rng)
        ps.append(p)
        top1.append(acc)
    return np.concatenate(ps), float(np.concatenate(top1).mean())


def former_shift_pvalues(pred, true, rng, n_shifts=199, min_shift=SEGMENT_TRS):
    """The kit's former null, for comparison: the truth rolled circularly within each block by a random shift.

    Parameters
    ----------
    pred, true : arrays of shape (n_sims, n_blocks, n_trs, n_components)

    Returns
    -------
    (p, top1) : arrays of shape (n_sims,)
    """
    n_sims, n_blocks, n_trs, _ = true.shape
    shifts = np.concatenate([np.zeros((1, n_blocks), int),
                             rng.integers(min_shift, n_trs - min_shift + 1, size=(n_shifts, n_blocks))])
    rolled_index = (np.arange(n_trs)[None, None, :] - shifts[:, :, None]) % n_trs  # (shift, block, tr)
    rolled = true[:, np.arange(n_blocks)[None, :, None], rolled_index]  # (sim, shift, block, tr, comp)
    p_seg = pairing_scores(pred[:, None, :, None], rolled[:, :, :, None], SEGMENT_TRS)  # (2, sim, shift, b, 1, 1)
    stats = p_seg[..., 0, 0].mean(-1)  # (2, sim, shift)
    observed = stats[..., :1]
    at_least = (stats[0] > observed[0] + 1e-12) | ((np.abs(stats[0] - observed[0]) <= 1e-12)
                                                   & (stats[1] >= observed[1] - 1e-12))
    return at_least.mean(-1), observed[0, :, 0]


def scenarios():
    """The table's rows."""
    quick, full = notebook_block_lengths(QUICK_TRS), notebook_block_lengths(REAL_STORY_TRS)
    pitfall = [76] * N_FOLDS
    return [
        Scenario("AR(0.9), 5 x 76 TRs, 8 components (pitfall 26)", 0.9, pitfall, 8),
        Scenario(f"AR(0.9), notebook 07 quick blocks, {QUICK_COMPONENTS} components", 0.9, quick, QUICK_COMPONENTS),
        Scenario(f"AR(0.9), notebook 07 full blocks, {FULL_COMPONENTS} components", 0.9, full, FULL_COMPONENTS),
        Scenario("AR(0.5), 5 x 76 TRs, 8 components", 0.5, pitfall, 8),
        Scenario("white noise, 5 x 76 TRs, 8 components", 0.0, pitfall, 8),
        Scenario("AR(0.5-0.95) differing across blocks, 5 x 76 TRs, 8 comp.", (0.5, 0.7, 0.9, 0.95, 0.8), pitfall, 8),
        Scenario("AR(0.9), 8 x 76 TRs (1000 random orders), 8 components", 0.9, [76] * 8, 8),
        Scenario("former null (circular shifts), AR(0.9), 5 x 76 TRs, 8 comp.", 0.9, pitfall, 8,
                 null="circular shift"),
        Scenario("power: r = 0.2, AR(0.9), 5 x 76 TRs, 8 components", 0.9, pitfall, 8, r=0.2),
        Scenario("power: r = 0.3, AR(0.9), 5 x 76 TRs, 8 components", 0.9, pitfall, 8, r=0.3),
        Scenario(f"power: r = 0.2, notebook 07 quick blocks, {QUICK_COMPONENTS} comp.", 0.9, quick, QUICK_COMPONENTS,
                 r=0.2),
    ]


def rate_row(scenario, p, top1, seconds):
    """Rejection rates at 0.05 and 0.01 with binomial 95 % intervals."""
    row = {"scenario": scenario.name, "null": scenario.null, "signal_r": scenario.r,
           "blocks": "/".join(map(str, scenario.lengths)), "n_components": scenario.n_components, "n_sims": len(p),
           "mean_top1": round(top1, 4)}
    for alpha in (0.05, 0.01):
        hits = int(np.sum(p <= alpha + 1e-12))
        ci = binomtest(hits, len(p)).proportion_ci(0.95)
        row |= {f"rate_{alpha}": hits / len(p), f"ci_low_{alpha}": round(ci.low, 4), f"ci_high_{alpha}": round(ci.high, 4)}
    return row | {"seconds": round(seconds, 1)}


def make_demo(n_subjects=5, seed=0):
    """A demo of the quick run's length in a temporary folder: (story, truth)."""
    import tempfile

    from encoding_kit.data.story import load_story
    from encoding_kit.demo.generate import load_truth, make_demo_dataset

    folder = make_demo_dataset(Path(tempfile.mkdtemp(prefix="ident-demo-")) / "data", n_subjects=n_subjects,
                               n_trs=QUICK_TRS, seed=seed)
    return load_story(folder), load_truth(folder)


def ridge_pvalues(drivers, fmri):
    """Notebook 07's quick setting: the ridge decoder of ``drivers`` (5 components) from each brain, and its test."""
    from encoding_kit.decoding.evaluation import evaluate_deep_decoding

    result = evaluate_deep_decoding(drivers, fmri, archs=(), n_components=QUICK_COMPONENTS, progress=False,
                                    cache=False)
    return result.summary()


def demo_pvalues(story, truth):
    """Each demo subject's p from all ROIs (the planted signal) and from the noise-only ROIs (none)."""
    rows = [ridge_pvalues(truth["drivers"], {s: y[:, columns] for s, y in story.fmri.items()}).assign(rois=rois)
            for rois, columns in (("all ROIs", slice(None)), ("noise-only ROIs", ~truth["driven"]))]
    return pd.concat(rows)[["rois", "subject", "top1", "chance_top1", "null_top1", "p_top1"]]


def machine():
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} CPUs"


def commit():
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=4000, help="simulations per row (the former null: a quarter)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--demo", action="store_true", help="also notebook 07's quick setting on a demo")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "identification_null.csv"))
    args = parser.parse_args(argv)
    if args.sims < 1:
        parser.error(f"--sims must be at least 1, got {args.sims}")
    rng = np.random.default_rng(args.seed)
    rows = []
    print(f"{'scenario':62s} {'sims':>5s} {'top1':>6s}  {'p<=0.05 [95% CI]':>22s}  {'p<=0.01 [95% CI]':>22s}")
    for scenario in scenarios():
        n_sims = max(1, args.sims // 4) if scenario.null == "circular shift" else args.sims
        start = time.perf_counter()
        p, top1 = simulate(scenario, n_sims, rng)
        rows.append(print_row(rate_row(scenario, p, top1, time.perf_counter() - start)))
    table = pd.DataFrame(rows).assign(date=datetime.date.today().isoformat(), machine=machine(), commit=commit())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: table.to_csv(tmp, index=False))
    print(f"Table: {out}")
    if args.demo:
        story, truth = make_demo(seed=args.seed)
        print("\nNotebook 07's quick setting on the demo: the ridge decoder of the planted drivers, per subject")
        print(demo_pvalues(story, truth).round(4).to_string(index=False))


def print_row(row):
    """Print one table row; return it."""
    print(f"{row['scenario']:62s} {row['n_sims']:5d} {row['mean_top1']:6.3f}  " + "  ".join(
        f"{row[f'rate_{a}']:.4f} [{row[f'ci_low_{a}']:.3f}, {row[f'ci_high_{a}']:.3f}]" for a in (0.05, 0.01)))
    return row


if __name__ == "__main__":
    main()
