"""Thread settings of a notebook's kernel: a ridge fit and a text-model forward pass under each.

Each setting runs in a fresh process (thread variables are read when the
libraries load): the kit's defaults, the OpenMP wait policy ``PASSIVE`` and
that plus one BLAS thread (what the runner sets on a busy CPU,
:func:`encoding_kit.core.runtime.notebook_thread_env`). Timed: one
quick-size encoding evaluation (5 subjects x 400 TRs x 360 ROIs, 576
features, in-fold PCA 128) and, optionally, a full-size one (25 x 2,249,
768 features), and five forward passes of the demo's MiniLM over 16 windows of
40 tokens. Wall and CPU seconds, the load average before each; one run
prints its figures and writes them to ``benchmarks/results/threads.json``.

    python benchmarks/bench_threads.py [--full]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"default": {}, "omp passive": {"OMP_WAIT_POLICY": "PASSIVE"},
            "omp passive + 1 BLAS thread": {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1",
                                            "MKL_NUM_THREADS": "1"}}
CHILD = r"""
import json, os, sys, time
import numpy as np, torch
import utils
full = sys.argv[1] == "1"
rng = np.random.default_rng(0)
out = {}
lm = utils.load_model("bert-base-uncased", allow_standin=True)
ids = torch.randint(1000, 5000, (16, 40))
with torch.inference_mode():
    lm.model(input_ids=ids[:2])  # warm-up
    t, c = time.perf_counter(), time.process_time()
    for _ in range(5):
        lm.model(input_ids=ids, output_hidden_states=True)
out["forward"] = (time.perf_counter() - t, time.process_time() - c)
sizes = [("ridge quick", 5, 400, 576)] + ([("ridge full", 25, 2249, 768)] if full else [])
for name, subjects, trs, width in sizes:
    X = rng.standard_normal((trs, width)).astype(np.float32)
    fmri = {s: rng.standard_normal((trs, 360)).astype(np.float32) for s in range(subjects)}
    t, c = time.perf_counter(), time.process_time()
    utils.evaluate_encoding(X, fmri, pca=128, progress=False, cache=False)
    out[name] = (time.perf_counter() - t, time.process_time() - c)
print("RESULT " + json.dumps(out))
"""


def run(setting, full):
    """Wall and CPU seconds of each step in a fresh process with ``setting``'s variables, dict."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS",
                                                             "MKL_NUM_THREADS")}
    env.update(SETTINGS[setting], PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, "-c", CHILD, "1" if full else "0"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return {"setting": setting, "load_before": round(load, 2),
            **{f"{k} {unit}": round(v[i], 2) for k, v in json.loads(line[7:]).items()
               for i, unit in enumerate(("wall_s", "cpu_s"))}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="also time a full-size ridge (minutes on a busy CPU)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "threads.json"))
    args = parser.parse_args(argv)
    import pandas as pd

    from encoding_kit.core.storage import atomic_write

    rows = [run(setting, args.full) for setting in SETTINGS]
    table = pd.DataFrame(rows)
    print(f"{os.cpu_count()} cores\n" + table.to_string(index=False))
    text = json.dumps({"cores": os.cpu_count(), "rows": rows}, indent=1) + "\n"
    atomic_write(Path(args.out), lambda tmp: tmp.write_text(text))
    print(f"Written: {args.out}")


if __name__ == "__main__":
    main()
