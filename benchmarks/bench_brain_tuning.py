"""What one brain-tuning run costs (notebook 08) with each cheaper setting, and what it costs in effect size.

One run = compress + tune one fold's training TRs + extract the tuned model's
features of the whole story + score them on the fold's held-out block. This
times one run of each setting below on the demo (real all-MiniLM-L6-v2, the
``direct`` method, ``ceiling`` compression, seed 0, one outer fold, cache off)
and prints, next to its time, the run's held-out change in mean r from the
pretrained model on the same block (all ROIs and, on the demo, the planted
language and noise-only ROIs): what a cheaper setting costs in effect size
against one expensive run. Times are this process's CPU time and the wall
time, with the 1-minute load average (the machine is shared: the wall time
grows with the load, the CPU time much less).

* ``expensive``: 2 epochs, the top 2 layers tuned (the notebook before repeated runs);
* ``before``: 1 epoch, the top layer (the notebook's settings before this benchmark's levers);
* ``subsample``: half the training windows drawn per epoch;
* ``short-windows``: 16-token tuning windows (the features keep 32);
* ``early-stop``: early stopping on the last 150 training TRs (after a gap), checked every 16 steps;
* ``batch64``: 64 windows per forward pass in the tuned model's feature extraction;
* ``cheap``: the levers kept (subsample and short windows), together.

Then one tuned model's feature extraction is timed with its top layer computed at the read positions only
(:class:`encoding_kit.brain_tuning.frozen.AtRows`, the study's default) and in full, with the largest difference.

What a study computes once is timed first: each compression's fit on the
fold's training TRs, and one pass of the story's windows through the top
layer on the frozen lower layers' states the set-up recorded while it
extracted the pretrained features (:mod:`encoding_kit.brain_tuning.frozen`,
read by every tuned model's feature extraction), then on states computed
anew (what the set-up saves). Each setting is then timed cold (its training batches'
frozen states computed for the first time: the first run of a seed and fold)
and warm (the same inputs again: every other method, control and compression
of that seed and fold). ``expensive`` tunes 2 layers, so its cold run also
computes the story windows' states below them. ``--wait-policy`` first times
one forward pass of MiniLM per OpenMP wait policy, each in a child process.

It then estimates the full notebook's CPU time: the set-up, the compressions
of every fold and the story windows once, plus its distinct runs (headline:
2 methods x 3 conditions x seeds x folds; other compressions: method and
shuffled control, the text-only run being shared; mask-rate sweep; 3 leak
tunings), cold for each distinct training input set and warm for the others.

    python benchmarks/bench_brain_tuning.py [--trs 2249] [--subjects 25] [--fold 2] [--seeds 3] [--folds 5]
        [--settings expensive before subsample short-windows early-stop batch64 cheap] [--wait-policy]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import subprocess
import sys
import time

from encoding_kit.brain_tuning import BrainTuningStudy, TuningConfig
from encoding_kit.brain_tuning.frozen import FrozenStates
from encoding_kit.brain_tuning.model import encoder_of
from encoding_kit.data.story import load_story

SETTINGS = {
    "expensive": dict(epochs=2, tune_layers=2),
    "before": dict(epochs=1, tune_layers=1),
    "subsample": dict(epochs=1, tune_layers=1, subsample=0.5),
    "short-windows": dict(epochs=1, tune_layers=1, tune_context=16),
    "early-stop": dict(epochs=1, tune_layers=1, patience=2, check_every=16, val_trs=150),
    "batch64": dict(epochs=1, tune_layers=1, extract_batch=64),
    "cheap": dict(epochs=1, tune_layers=1, subsample=0.5, tune_context=16),
}
"""Settings timed (TuningConfig changes; ``extract_batch``: the study's windows per extraction pass)."""
STUDY_KEYS = ("extract_batch",)


def notebook_runs(seeds, folds, sweep_seeds=1, n_other=2, n_rates=2):
    """Distinct tuning runs of notebook 08 (cached scores reused where runs coincide)."""
    headline = 2 * 3 * seeds * folds
    others = 2 * n_other * 2 * sweep_seeds * folds
    sweep = n_rates * sweep_seeds * folds
    return headline + others + sweep + 3


def timed(fn):
    """(result, CPU seconds of this process, wall seconds, 1-min load average after)."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - t0, os.getloadavg()[0]


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
    study, setup, wall, load = timed(lambda: BrainTuningStudy(
        story, "sentence-transformers/all-MiniLM-L6-v2", folds=[args.fold], n_state=16,
        config=TuningConfig(context_tokens=args.context, tune_layers=SETTINGS["cheap"]["tune_layers"]), pca=64,
        cache=False, progress=False))
    base_rows = study.baseline_runs()
    print(f"{story.n_trs} TRs x {len(story.fmri)} subjects; study set-up (pretrained features, ceiling): "
          f"CPU {setup:.1f} s, wall {wall:.1f} s, load {load:.1f}")
    _, cpu, wall, load = timed(lambda: study.fold_scores(study.baseline_features, args.fold))
    print(f"one ridge score of one fold: CPU {cpu:.1f} s, wall {wall:.1f} s, load {load:.1f}")
    base = base_rows.groupby("scope")["mean_r"].mean()
    print("pretrained: " + ", ".join(f"{k} {v:.4f}" for k, v in base.items()))
    once = prime(study, args.fold)
    print(f"setting: one run (direct/ceiling, seed 0, fold {args.fold}) CPU / wall s at load; held-out mean r "
          "change from the pretrained model")
    primed = dict(study.frozen._store), study.frozen.nbytes
    times = {}
    for name in args.settings:
        changes = {k: v for k, v in SETTINGS[name].items() if k not in STUDY_KEYS}
        study.extract_batch = SETTINGS[name].get("extract_batch", 16)
        study.config = dataclasses.replace(TuningConfig(context_tokens=args.context), **changes)
        for path in ("cold", "warm"):
            if path == "cold":  # the training batches' frozen states are new: the first run of a seed and fold
                study.frozen._store, study.frozen.nbytes = dict(primed[0]), primed[1]
            study._features = (None, None)  # the study's memo of the last run's features: time the run itself
            run = functools.partial(study.runs, "direct", "ceiling", seeds=[0], folds=[args.fold],
                                    label=f"{name} {path}")
            rows, cpu, wall, load = timed(run)
            times[name, path] = cpu
            scopes = rows.groupby("scope")["mean_r"].mean() - base
            print(f"{name} {SETTINGS[name]} {path}: CPU {cpu:.1f} s, wall {wall:.1f} s, load {load:.1f}; change "
                  + ", ".join(f"{k} {v:+.4f}" for k, v in scopes.items()))
    read_positions(study, args.fold)
    n, sets = notebook_runs(args.seeds, args.folds), args.seeds * args.folds + 2 * args.folds + 1
    fixed = setup + args.folds * once["compressions"] + once["story windows"]
    for name in args.settings:
        total = fixed + sets * times[name, "cold"] + (n - sets) * times[name, "warm"]
        print(f"notebook 08 full, {name}: {n} distinct runs ({sets} distinct training input sets cold, the others "
              f"warm) + set-up, {args.folds} folds' compressions and the story windows' frozen states once: "
              f"{total / 60:.1f} CPU-min")


def read_positions(study, fold, repeats=2):
    """Time one tuned model's feature extraction with its top layer at the read positions only, and in full.

    Alternated ``repeats`` times (the machine is shared); prints the CPU seconds of each and the largest
    difference between the two features (the fidelity of :class:`~encoding_kit.brain_tuning.frozen.AtRows`).
    """
    import numpy as np

    tuned, _ = study.tune_fold("direct", "ceiling", study.splits[fold][0])
    top = tuned.model
    times, features = {True: [], False: []}, {}
    for _ in range(repeats):
        for only in (True, False):
            top.read_positions_only = only
            features[only], cpu, _, load = timed(lambda: study.features(tuned, cache=False))
            times[only].append(cpu)
    top.read_positions_only = True
    diff = float(np.abs(features[True] - features[False]).max())
    print(f"tuned extraction of the story's windows (one run), top layer at the read positions only: CPU "
          f"{min(times[True]):.1f} s, in full: {min(times[False]):.1f} s (best of {repeats}, load {load:.1f}); "
          f"largest difference {diff:.2e} (feature scale {float(np.abs(features[False]).max()):.2f})")


def prime(study, fold):
    """Time what a study computes once: each compression's fit on the fold, the story windows' frozen states."""
    from encoding_kit.brain_tuning.frozen import TopLayers
    from encoding_kit.features.loaded import LoadedModel

    train = study.splits[fold][0]
    once = {"compressions": 0.0}
    for compression in ("ceiling", "ridge", "pca"):
        _, cpu, wall, load = timed(lambda c=compression: study.compressor(c, train))
        once["compressions"] += cpu
        print(f"compression {compression} fitted on fold {fold}'s training TRs: CPU {cpu:.1f} s, wall {wall:.1f} s, "
              f"load {load:.1f}")
    encoder = encoder_of(study.loaded.model)
    # the notebook's TUNE_LAYERS (every setting but ``expensive``), the study's: its set-up recorded the story
    # windows' states at that split as the pretrained features were extracted (FrozenStates.recording), so this
    # pass reads them (no miss) and times the rest of one extraction; ``fresh`` times computing them anew
    split = encoder.config.num_hidden_layers - SETTINGS["cheap"]["tune_layers"]
    for label, frozen in (("recorded", study.frozen), ("fresh", FrozenStates(encoder))):
        top = LoadedModel(TopLayers(encoder, frozen, split).eval(), study.loaded.processor, "prime", "tuned",
                          study.loaded.family)
        misses = frozen.misses
        _, cpu, wall, load = timed(lambda top=top: study.features(top, cache=False))
        once.setdefault("story windows", cpu)
        print(f"story windows through the top layer, frozen states {label} ({frozen.misses - misses} batches "
              f"computed): CPU {cpu:.1f} s, wall {wall:.1f} s, load {load:.1f}")
    return once


if __name__ == "__main__":
    main()
