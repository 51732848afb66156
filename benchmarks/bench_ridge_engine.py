"""CPU and wall time of one encoding evaluation, the ridge engine every notebook pays for.

The evaluation of the run profiles (``encoding_kit/run/profiles.py``, ``RIDGE_S``): the demo's fMRI
(25 subjects x 2249 TRs x 360 ROIs = 9,000 targets), X of shape (2249, 768) standard normal float32 (a
transformer layer's width), ``evaluate_encoding(X, fmri, cache=False, pca=128)``: 5 gapped outer folds,
StandardScaler -> PCA 128 -> 4 delays (512 columns), 5 inner folds and 19 alphas per target. Prints
the best wall and process CPU seconds of ``--repeats`` runs (the BLAS threads it ran with are printed:
set ``OMP_NUM_THREADS=1`` for the runner's one thread per notebook), and half the CPU seconds: what an evaluation
costs a 2-core machine on which the runner runs two notebooks at once (``profiles.RIDGE_S``).

``--quick-size`` times the quick run's evaluation instead (the first 5 subjects and 400 TRs,
``RIDGE_QUICK_S``). ``--banded N`` times notebook 03's banded ridge instead: ``evaluate_fusion`` of the
two halves of X as two feature spaces, ``method="banded"``, ``n_iter=N`` samples of the space weights
(03: 10), half of ``--pca`` components per space (03: 64), the same 512 delayed columns. ``--save FILE`` keeps the chosen alphas and the held-out r of the run (``.npz``); ``--compare FILE``
prints how many alphas differ from such a file and the largest difference of r, so that a faster
engine can be checked against the one before it on the same inputs. ``--blas`` times the numpy backend's
products and eigendecompositions on numpy's OpenBLAS and on MKL (``encoding_kit/encoding/mkl_backend.py``),
alternated run by run, and prints both, their ratio and how far the results differ.

    python benchmarks/bench_ridge_engine.py [--data-dir DIR] [--repeats 2] [--quick-size] [--banded 10]
                                            [--save F.npz] [--compare F.npz] [--blas]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from encoding_kit.data.course_files import load_fmri
from encoding_kit.encoding.evaluate import evaluate_encoding
from encoding_kit.encoding.fusion import evaluate_fusion
from encoding_kit.encoding.mkl_backend import BLAS_VARIABLE, torch_has_mkl
from encoding_kit.run.runner import ensure_data


def one_run(X, fmri, pca, banded=None):
    """Wall and CPU seconds of one evaluation (banded ridge with ``banded`` samples), and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    if banded:
        spaces = {"first": X[:, :X.shape[1] // 2], "second": X[:, X.shape[1] // 2:]}
        result = evaluate_fusion(spaces, fmri, method="banded", n_iter=banded, pca=pca // 2, cache=False,
                                 progress=False)
    else:
        result = evaluate_encoding(X, fmri, cache=False, pca=pca, progress=False)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def blas_comparison(X, fmri, pca, repeats, banded=None):
    """Lines comparing OpenBLAS and MKL under the numpy backend: each one's best wall and CPU of ``repeats`` runs
    (alternated: a host slowing down mid-way hits both), the ratio, and the difference of the results."""
    if not torch_has_mkl():
        return ["MKL is not available here (PyTorch without MKL): nothing to compare."]
    before, runs = os.environ.get(BLAS_VARIABLE), {"numpy": [], "mkl": []}
    try:
        for _ in range(repeats):
            for blas in runs:
                os.environ[BLAS_VARIABLE] = blas
                runs[blas].append(one_run(X, fmri, pca, banded))
    finally:
        os.environ.pop(BLAS_VARIABLE) if before is None else os.environ.update({BLAS_VARIABLE: before})
    best = {blas: (min(r[0] for r in rs), min(r[1] for r in rs)) for blas, rs in runs.items()}
    a, b = runs["numpy"][-1][2], runs["mkl"][-1][2]
    differ = int((~np.isclose(a.alphas, b.alphas, rtol=1e-6, atol=0)).sum())
    return [f"numpy backend on OpenBLAS: wall {best['numpy'][0]:.2f} s, CPU {best['numpy'][1]:.2f} s (best of {repeats})",
            f"numpy backend on MKL:      wall {best['mkl'][0]:.2f} s, CPU {best['mkl'][1]:.2f} s (best of {repeats})",
            f"MKL / OpenBLAS: wall {best['mkl'][0] / best['numpy'][0]:.3f}, CPU {best['mkl'][1] / best['numpy'][1]:.3f}; "
            f"{differ} of {a.alphas.size} alphas differ, max |r difference| "
            f"{np.abs(a.r_folds - b.r_folds).max():.2e}"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="demo data folder (made if missing; default: the kit's)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--pca", type=int, default=128)
    parser.add_argument("--quick-size", action="store_true",
                        help="the quick run's size: the first 5 subjects and the first 400 TRs (RIDGE_QUICK_S)")
    parser.add_argument("--banded", type=int, default=None, metavar="N_ITER",
                        help="time banded ridge (evaluate_fusion, two spaces) with this many weight samples (03: 10)")
    parser.add_argument("--save", default=None, help="write the alphas and r of the last run here (.npz)")
    parser.add_argument("--compare", default=None, help="compare the alphas and r with this file (.npz)")
    parser.add_argument("--blas", action="store_true",
                        help="time the numpy backend on OpenBLAS and on MKL, alternated (encoding/mkl_backend.py)")
    args = parser.parse_args()
    fmri = load_fmri(data_dir=ensure_data(args.data_dir)[0])
    if args.quick_size:
        fmri = {k: fmri[k][:400] for k in list(fmri)[:5]}
    n_trs = len(next(iter(fmri.values())))
    X = np.random.default_rng(0).standard_normal((n_trs, 768)).astype(np.float32)
    evaluate_encoding(X[:, :32], {k: fmri[k] for k in list(fmri)[:2]}, cache=False, pca=8, progress=False)  # warm-up
    if args.blas:
        print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load average {os.getloadavg()[0]:.1f}")
        print("\n".join(blas_comparison(X, fmri, args.pca, args.repeats, args.banded)))
        return
    runs = [one_run(X, fmri, args.pca, args.banded) for _ in range(args.repeats)]
    result = runs[-1][2]
    load = os.getloadavg()[0]
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    what = (f"evaluate_fusion (banded, n_iter={args.banded}, two spaces of 384 columns, PCA {args.pca // 2} each)"
            if args.banded else f"evaluate_encoding (X (n_trs, 768), PCA {args.pca})")
    print(f"{what}: {len(fmri)} subjects x {n_trs} TRs x {result.r.shape[1]} ROIs; OMP_NUM_THREADS={threads}, "
          f"load average {load:.1f}; best of {args.repeats}")
    cpu = min(r[1] for r in runs)
    print(f"wall {min(r[0] for r in runs):.2f} s   CPU {cpu:.2f} s   -> {cpu / 2:.2f} s of a 2-core machine when two "
          "notebooks share it, one thread each (the runner's --jobs 2; profiles.RIDGE_S / RIDGE_QUICK_S)")
    if args.compare:
        ref = np.load(args.compare)
        differ = int((~np.isclose(ref["alphas"], result.alphas, rtol=1e-6, atol=0)).sum())  # banded: exp(-mean delta)
        print(f"vs {args.compare}: {differ} of {result.alphas.size} alphas differ, "
              f"max |r difference| {np.abs(ref['r_folds'] - result.r_folds).max():.2e}")
    if args.save:
        np.savez(args.save, alphas=result.alphas, r_folds=result.r_folds)


if __name__ == "__main__":
    main()
