"""What one brain-tuning run costs (notebook 08), and the notebook's run count, in this process.

One run = compress + tune one fold's training TRs + extract the tuned model's
features of the whole story + score them on the fold's held-out block. This
times one run of each setting below on the demo (real all-MiniLM-L6-v2, the
``direct`` method, ``ceiling`` compression, one outer fold, cache off) and the
pretrained model's scores on the same block, and prints the held-out mean r of
each (all ROIs and, on the demo, the planted language ROIs) next to its time:

* ``cheap``: the notebook's defaults (1 epoch, the top layer tuned);
* ``expensive``: the settings of the notebook before repeated runs (2 epochs,
  the top 2 layers tuned) - one expensive run against many cheap ones.

Each setting is timed three ways: the full forward pass through every layer
(``reuse_frozen=False``), the frozen lower layers' states cached
(:mod:`encoding_kit.brain_tuning.frozen`) and computed for the first time
(cold), and the same run again with them cached (warm: what every other
method, control and compression of the same seed and fold costs).

``--wait-policy`` first times one forward pass of MiniLM on 16 windows in a
child process per OpenMP wait policy (``ACTIVE``: threads spin between
parallel regions, torch's default; ``PASSIVE``: they sleep, what
``encoding_kit`` sets when it is imported): on a CPU shared with other
processes spinning threads stall each other.

It then multiplies each run's time by the notebook's number of distinct
runs (headline: 2 methods x 3 conditions x seeds x folds; other compressions:
method and shuffled control (the text-only run is shared, see
:mod:`encoding_kit.brain_tuning.controls`); mask-rate sweep; 3 leak tunings) to
estimate the full notebook. On a shared machine the load inflates every figure.

    python benchmarks/bench_brain_tuning.py [--trs 2249] [--subjects 25] [--fold 2] [--seeds 3] [--folds 5]
        [--settings cheap expensive] [--wait-policy]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time

from encoding_kit.brain_tuning import BrainTuningStudy, TuningConfig
from encoding_kit.brain_tuning.frozen import FrozenStates
from encoding_kit.brain_tuning.model import encoder_of
from encoding_kit.data.story import load_story

SETTINGS = {"cheap": dict(epochs=1, tune_layers=1), "expensive": dict(epochs=2, tune_layers=2)}


def notebook_runs(seeds, folds, sweep_seeds=1, n_other=2, n_rates=2):
    """Distinct tuning runs of notebook 08 (cached scores reused where runs coincide)."""
    headline = 2 * 3 * seeds * folds
    others = 2 * n_other * 2 * sweep_seeds * folds
    sweep = n_rates * sweep_seeds * folds
    return headline + others + sweep + 3


FORWARD = """
import time, torch
from encoding_kit.features.models import load_model
net = load_model("sentence-transformers/all-MiniLM-L6-v2", allow_standin=True).model.eval()
ids = torch.randint(1000, 2000, (16, 18))
with torch.no_grad():
    net(input_ids=ids, attention_mask=torch.ones_like(ids))
    t0 = time.perf_counter()
    for _ in range(10):
        net(input_ids=ids, attention_mask=torch.ones_like(ids))
print(f"{(time.perf_counter() - t0) / 10:.3f}")
"""


def wait_policy_times():
    """Seconds of one forward pass per OpenMP wait policy, each in a fresh process (read when torch loads)."""
    times = {}
    for policy in ("ACTIVE", "PASSIVE"):
        env = {**os.environ, "OMP_WAIT_POLICY": policy}
        done = subprocess.run([sys.executable, "-c", FORWARD], env=env, capture_output=True, text=True, check=True)
        times[policy] = float(done.stdout.strip().splitlines()[-1])
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--trs", type=int, default=None)
    parser.add_argument("--subjects", type=int, default=None)
    parser.add_argument("--fold", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--context", type=int, default=32)
    parser.add_argument("--settings", nargs="+", choices=sorted(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--wait-policy", action="store_true", help="time torch's OpenMP wait policies first")
    args = parser.parse_args()
    if args.wait_policy:
        load = os.getloadavg()[0]
        print("one MiniLM forward pass (16 windows of 18 tokens), load average", f"{load:.1f}:",
              ", ".join(f"OMP_WAIT_POLICY={k} {v:.3f} s" for k, v in wait_policy_times().items()))
    story = load_story(args.data_dir, subjects=args.subjects, max_trs=args.trs)
    t0 = time.perf_counter()
    study = BrainTuningStudy(story, "sentence-transformers/all-MiniLM-L6-v2", folds=[args.fold], n_state=16,
                             config=TuningConfig(context_tokens=args.context), pca=64, cache=False, progress=False)
    base_rows = study.baseline_runs()
    print(f"{story.n_trs} TRs x {len(story.fmri)} subjects; study set-up (pretrained features, ceiling) "
          f"{time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    study.fold_scores(study.baseline_features, args.fold)
    print(f"one ridge score of one fold: {time.perf_counter() - t0:.1f} s")
    scopes = base_rows.groupby("scope")["mean_r"].mean()
    print("pretrained: " + ", ".join(f"{k} {v:.4f}" for k, v in scopes.items()))
    times = {}
    for name, changes in ((k, SETTINGS[k]) for k in args.settings):
        study.config = dataclasses.replace(study.config, **changes)
        for path in ("full forward", "cached frozen cold", "cached frozen warm"):
            if path != "cached frozen warm":  # warm: the same inputs again (as every control and method of a seed)
                study.frozen = None if path == "full forward" else FrozenStates(encoder_of(study.loaded.model))
            study._features = (None, None)  # the study's memo of the last run's features: time the run itself
            t0 = time.perf_counter()
            rows = study.runs("direct", "ceiling", seeds=[0], folds=[args.fold], label=f"{name} {path}")
            times[name, path] = time.perf_counter() - t0
            scopes = rows.groupby("scope")["mean_r"].mean()
            hits = "" if study.frozen is None else f" (cached batches: {study.frozen.hits} hits, " \
                f"{study.frozen.misses} misses, {study.frozen.nbytes / 2 ** 20:.0f} MiB)"
            print(f"{name} ({changes}) {path}: one run {times[name, path]:.1f} s{hits}; "
                  + ", ".join(f"{k} {v:.4f}" for k, v in scopes.items()))
    n, sets = notebook_runs(args.seeds, args.folds), args.seeds * args.folds + 2 * args.folds + 1
    for name in args.settings:
        before = n * times[name, "full forward"]
        after = sets * times[name, "cached frozen cold"] + (n - sets) * times[name, "cached frozen warm"]
        print(f"notebook 08 full, {name}: {n} distinct runs; full forward {before / 60:.1f} min, cached frozen layers "
              f"{after / 60:.1f} min ({sets} distinct training input sets cold, the other runs warm)")

if __name__ == "__main__":
    main()
