"""Run the GPU path once: one layer of each model family on CUDA (bf16 autocast) and the ridge on torch_cuda.

For every checkpoint the notebooks name (built at its real size with random
weights, :mod:`encoding_kit.features.real_configs`, or the real checkpoint
when it is in the local Hugging Face cache), one middle layer is extracted on
the CPU (float32) and on CUDA (bf16 autocast, what the kit does on a GPU),
through the kit's own functions, on a short synthetic story (the demo
grammar's words, noise audio); the largest difference relative to the CPU
features' scale, the median per-dimension correlation and both times are
printed. Then one ridge evaluation (himalaya's ``torch_cuda`` backend against
``numpy``) on random data of the real story's size, with the largest
difference of the held-out r. Without a CUDA GPU it says so in one sentence
and exits 0.

    python scripts/gpu_check.py [--words 300] [--trs 64] [--subjects 5]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from encoding_kit.core.runtime import use_precision
from encoding_kit.data.timebase import TR
from encoding_kit.encoding.evaluate import evaluate_encoding
from encoding_kit.features.audio import extract_audio_features
from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.models import is_causal
from encoding_kit.features.text import extract_text_features

SR = 16000


def cuda_available():
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _timed(fn):
    import torch

    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def _compare(cpu, gpu):
    """(largest |difference| / largest |cpu value|, median per-dimension r) of two (n, dim) arrays."""
    scale = float(np.abs(cpu).max()) or 1.0
    a, b = cpu - cpu.mean(0), gpu - gpu.mean(0)
    norm = np.sqrt((a ** 2).sum(0) * (b ** 2).sum(0))
    ok = norm > 1e-12
    return float(np.abs(cpu - gpu).max()) / scale, float(np.median((a * b).sum(0)[ok] / norm[ok]))


def real_models():
    """{name: loader} of every checkpoint the notebooks name: the cached real one, else its real-size config."""
    from encoding_kit.features.models import ModelUnavailable, load_model
    from encoding_kit.features.real_configs import REAL_CONFIGS, real_size_model

    def loader(name):
        try:
            return load_model(name)
        except ModelUnavailable:
            return real_size_model(name)

    return {name: (lambda name=name: loader(name)) for name in REAL_CONFIGS}


def check_models(args, device="cuda", models=None):
    """One row per model and modality: relative max difference, median r, CPU and ``device`` seconds.

    Parameters
    ----------
    args : argparse.Namespace
        ``words`` and ``trs``.
    device : str
        Compared with the CPU.
    models : dict {name: callable returning a LoadedModel}, optional
        Default :func:`real_models`.
    """
    import pandas as pd

    from encoding_kit.data.story_text import generate_story
    from encoding_kit.features.families import family_of

    rng = np.random.default_rng(0)
    words = pd.DataFrame({"word": list(generate_story(args.words * 0.6, rng)["word"][:args.words])})
    wav = 0.1 * rng.standard_normal(int((args.trs + 1) * TR * SR)).astype(np.float32)
    rows = []
    for name, load in (models or real_models()).items():
        loaded = load()
        family = family_of(loaded)
        kinds = [kind for kind in ("audio", "text") if kind in family.modality]
        for kind in kinds:
            if kind == "text":
                mode = "strided" if is_causal(loaded.model) else "exact"

                def run(device, loaded=loaded, mode=mode):
                    return extract_text_features(words, loaded, layers=None, context_tokens=64, mode=mode,
                                                       run=ExtractionRun(device=device, cache=False, progress=False))
            else:
                def run(device, loaded=loaded):
                    how = ExtractionRun(device=device, cache=False, progress=False, allow_short_audio=True)
                    return extract_audio_features(wav, SR, args.trs, loaded, window_trs=2, run=how)
            with use_precision("float32"):  # the exact reference, even on a CPU with native bf16
                cpu, t_cpu = _timed(lambda run=run: run("cpu"))
            run(device)  # warm-up (kernels, cuDNN autotuning)
            gpu, t_gpu = _timed(lambda run=run: run(device))
            layer = sorted(cpu)[len(cpu) // 2]
            diff, r = _compare(cpu[layer], gpu[layer])
            rows.append({"model": name, "kind": kind, "layer": layer, "max_rel_diff": diff, "median_r": r,
                         "cpu_s": round(t_cpu, 2), "gpu_s": round(t_gpu, 2)})
            print(f"{name:<28} {kind:<5} layer {layer:>2}: max |gpu - cpu| / max |cpu| = {diff:.2e}, "
                  f"median r = {r:.4f}; cpu {t_cpu:.1f} s, gpu {t_gpu:.2f} s", flush=True)
        loaded.model.to("cpu")
    return pd.DataFrame(rows)


def check_ridge(args):
    """Held-out r of one evaluation on numpy and on torch_cuda: (max |difference|, cpu s, gpu s)."""
    from encoding_kit.features.real_configs import REAL_STORY_TRS

    rng = np.random.default_rng(1)
    X = rng.standard_normal((REAL_STORY_TRS, 768)).astype(np.float32)
    signal = X[:, :8] @ rng.standard_normal((8, 360)).astype(np.float32)
    fmri = {f"s{i}": (signal + 3 * rng.standard_normal(signal.shape)).astype(np.float32)
            for i in range(args.subjects)}
    cpu, t_cpu = _timed(lambda: evaluate_encoding(X, fmri, pca=128, backend="numpy", progress=False,
                                                        cache=False))
    gpu, t_gpu = _timed(lambda: evaluate_encoding(X, fmri, pca=128, backend="torch_cuda", progress=False,
                                                        cache=False))
    diff = float(np.nanmax(np.abs(cpu.r - gpu.r)))
    print(f"ridge ({args.subjects} subjects x {REAL_STORY_TRS} TRs x 360 ROIs, 768 features, PCA 128): "
          f"max |r gpu - r cpu| = {diff:.2e}; numpy {t_cpu:.1f} s, torch_cuda {t_gpu:.1f} s", flush=True)
    return diff, t_cpu, t_gpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=300, help="words of the synthetic story")
    parser.add_argument("--trs", type=int, default=64, help="TRs of noise audio")
    parser.add_argument("--subjects", type=int, default=5, help="subjects of the ridge check")
    parser.add_argument("--out", default=None, help="write the model table as CSV here")
    args = parser.parse_args(argv)
    if not cuda_available():
        print("No CUDA GPU on this machine: nothing to check (scripts/gpu_check.py compares CUDA with the CPU "
              "when a GPU is present).")
        return 0
    import torch

    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    table = check_models(args)
    check_ridge(args)
    if args.out:
        table.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
