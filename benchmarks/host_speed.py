"""How fast this CPU computes right now: a fixed float32 matrix product on every core at once.

A virtual machine's speed can change by half within an evening while its
load average says it is idle: the host's other guests are invisible from
inside (on the kit's 2-core test VM, the same commit's demo run took half
as long again at one hour as at another). The load average alone
cannot tell a slower kit from a slower host, so the demo-run benchmark
(``bench_demo_run.py``) measures this probe before and after its run and
writes both next to its times: runs whose probes differ were made on a
faster or slower host, and their times are compared through the ratio.

The probe: one process per core (as the runner's kernels, one BLAS thread
each), each timing a 1024 x 1024 x 1024 float32 product repeatedly for a
few seconds; the median GFLOP/s of each process, then the median over the
processes, is the figure (GFLOP/s per core while every core works).

    python benchmarks/host_speed.py [--processes N] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SIZE = 1024
"""Side of the square float32 matrices multiplied (2 * SIZE^3 floating-point operations per product)."""
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Set to 1 in each worker, as the runner's ``schedule.THREAD_VARIABLES`` are (this script imports nothing of the kit:
its workers run without it on the path)."""


def gemm_gflops(seconds=3.0, size=SIZE):
    """Median GFLOP/s of repeated ``size``-cubed float32 products in this process over ``seconds`` (after one warm-up).

    Returns
    -------
    float
    """
    import numpy as np

    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, found {seconds!r}")
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    out = np.empty_like(a)
    np.matmul(a, a, out=out)
    rates, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(rates) < 3:
        t = time.perf_counter()
        np.matmul(a, a, out=out)
        rates.append(2 * size ** 3 / (time.perf_counter() - t) / 1e9)
    return statistics.median(rates)


def probe(processes=None, seconds=3.0):
    """GFLOP/s per core with ``processes`` single-threaded products running at once (default: one per core).

    Returns
    -------
    dict
        ``gflops_per_core`` (median over the processes, one decimal), ``each`` (every process's median),
        ``processes``, ``seconds``.
    """
    processes = int(processes or os.cpu_count() or 1)
    if processes < 1:
        raise ValueError(f"processes must be >= 1, found {processes}")
    env = {**os.environ, **{name: "1" for name in THREAD_VARIABLES}}
    command = [sys.executable, os.path.abspath(__file__), "--worker", "--seconds", str(seconds)]
    workers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(processes)]
    each = []
    for worker in workers:
        out, err = worker.communicate(timeout=60 + 10 * seconds)
        if worker.returncode != 0:
            raise RuntimeError(f"host-speed probe worker failed (exit {worker.returncode}): {err.strip()[-500:]}")
        each.append(round(float(out.strip().splitlines()[-1]), 1))
    return {"gflops_per_core": round(statistics.median(each), 1), "each": each, "processes": processes,
            "seconds": seconds}


def describe(before, after=None):
    """One phrase for a run's probes, e.g. ``"host probe 81.2 GFLOP/s per core before, 79.0 after"``; ``""`` for none."""
    if not before:
        return ""
    text = f"host probe {before['gflops_per_core']} GFLOP/s per core before"
    return text + (f", {after['gflops_per_core']} after" if after else "")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, help="products at once (default: one per core)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds each process times (default 3)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one process of the probe
    args = parser.parse_args(argv)
    if args.worker:
        print(gemm_gflops(args.seconds))
        return
    print(json.dumps(probe(args.processes, args.seconds)))


if __name__ == "__main__":
    main()
