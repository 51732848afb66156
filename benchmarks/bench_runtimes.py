"""Other CPU runtimes for the extraction: torch.compile and ONNX Runtime against PyTorch eager, float32.

The demo-run-speed issue asks whether ONNX Runtime or ``torch.compile`` makes
feature extraction faster on a laptop's CPU. This times one forward pass of
the real checkpoints' architectures (random weights from their configs,
:mod:`encoding_kit.features.real_configs`: the compute does not depend on the
weights) at the batch shapes the extractors use, each path on the same
inputs, runs alternated, best of ``--reps``, on one thread (the runner gives
each of its two kernels one thread on a 2-core CPU), float32:

* ``eager``: PyTorch as the kit runs it (``torch.inference_mode``);
* ``torch.compile``: inductor, static shapes (its compile time reported apart);
* ``onnxruntime``: the model exported by ``torch.onnx.export`` (TorchScript
  exporter, opset 17) and run by ONNX Runtime's CPU provider with every graph
  optimisation (its export and session set-up reported apart); skipped, with
  one line, when ``onnxruntime`` is not installed (it is not a kit
  dependency: ``pip install onnxruntime onnx``).

Each row gives the seconds of one pass, the ratio to eager (below 1: faster),
and the largest difference of any hidden state from eager's, relative to that
state's largest value. Writes ``benchmarks/results/runtimes-float32.{json,csv}``
(with the date, machine, load average and commit) unless ``--no-save``.

    PYTHONPATH=. python benchmarks/bench_runtimes.py [--models bert-base-uncased ...] [--reps 3] [--no-save]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHAPES = {
    "bert-base-uncased": "16 windows x 100 tokens (exact mode's batch)",
    "gpt2": "16 windows x 100 tokens (a strided batch)",
    "facebook/wav2vec2-base": "8 windows x 3 s of 16 kHz audio (2-TR windows)",
    "openai/whisper-base": "encoder, 2 inputs x 30 s of log-mel (the padded input)",
}
"""The models timed (each a real checkpoint's architecture) and the batch each pass reads."""


def model_inputs(name, loaded):
    """(module, {input name: tensor}) of one pass: the module returns the stacked hidden states."""
    gen = torch.Generator().manual_seed(0)
    if name in ("bert-base-uncased", "gpt2"):
        ids = torch.randint(5, min(1000, loaded.model.config.vocab_size), (16, 100), generator=gen)
        inputs, model = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, loaded.model
    elif name == "openai/whisper-base":
        inputs, model = {"input_features": torch.randn(2, 80, 3000, generator=gen)}, loaded.model.get_encoder()
    else:
        inputs, model = {"input_values": torch.randn(8, 48000, generator=gen)}, loaded.model
    return HiddenStates(model.eval(), list(inputs)).eval(), inputs


class HiddenStates(torch.nn.Module):
    """A model's hidden states stacked into one tensor, its inputs positional (for export and compile)."""

    def __init__(self, model, names):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *tensors):
        out = self.model(**dict(zip(self.names, tensors)), output_hidden_states=True)
        return torch.stack(out.hidden_states)


def eager_runner(module, inputs):
    """A function computing the stacked hidden states with PyTorch as the kit runs it, and its set-up seconds."""
    args = tuple(inputs.values())

    def run():
        with torch.inference_mode():
            return module(*args).numpy()

    return run, 0.0


def compiled_runner(module, inputs):
    """The same through ``torch.compile`` (inductor, static shapes); set-up = compiling and the first pass."""
    compiled = torch.compile(module, dynamic=False)
    args = tuple(inputs.values())

    def run():
        with torch.inference_mode():
            return compiled(*args).numpy()

    start = time.perf_counter()
    run()
    return run, time.perf_counter() - start


def onnx_runner(module, inputs):
    """The same exported to ONNX and run by ONNX Runtime (CPU, one thread, every graph optimisation)."""
    import onnxruntime as ort

    folder = tempfile.mkdtemp(prefix="bench-runtimes-")
    path = os.path.join(folder, "model.onnx")
    start = time.perf_counter()
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):  # the exporter's tracer warnings
        torch.onnx.export(module, tuple(inputs.values()), path, input_names=list(inputs), output_names=["hidden"],
                          dynamo=False, opset_version=17)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feeds = {k: v.numpy() for k, v in inputs.items()}

    def run():
        return session.run(None, feeds)[0]

    run()
    return run, time.perf_counter() - start


RUNTIMES = {"eager": eager_runner, "torch.compile": compiled_runner, "onnxruntime": onnx_runner}


def available_runtimes():
    """The runtimes that can run here, and a line for each that cannot."""
    names, skipped = [], []
    for name in RUNTIMES:
        if name == "onnxruntime" and not (importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx")):
            skipped.append("onnxruntime: not installed (pip install onnxruntime onnx), not timed")
            continue
        names.append(name)
    return names, skipped


def time_model(name, runtimes, reps):
    """Rows of one model: seconds of one pass per runtime (best of ``reps``, alternated), ratio, difference."""
    from encoding_kit.features.real_configs import real_size_model

    module, inputs = model_inputs(name, real_size_model(name))
    runners, setup = {}, {}
    for runtime in runtimes:
        runners[runtime], setup[runtime] = RUNTIMES[runtime](module, inputs)
    reference = runners["eager"]()
    best = dict.fromkeys(runtimes, np.inf)
    for _ in range(reps):
        for runtime in runtimes:
            start = time.perf_counter()
            runners[runtime]()
            best[runtime] = min(best[runtime], time.perf_counter() - start)
    rows = []
    for runtime in runtimes:
        out = runners[runtime]()
        scale = np.abs(reference).max(axis=tuple(range(1, reference.ndim)))  # per hidden state
        diff = (np.abs(out - reference).max(axis=tuple(range(1, reference.ndim))) / scale).max()
        rows.append({"model": name, "batch": SHAPES[name], "runtime": runtime, "seconds": round(best[runtime], 3),
                     "vs_eager": round(best[runtime] / best["eager"], 3), "max_rel_diff": float(f"{diff:.2e}"),
                     "setup_s": round(setup[runtime], 1)})
    return rows


def verdict(runtime, ratios):
    """One line: a runtime's time per pass against eager's over the models timed."""
    kind = "faster on every model" if ratios.max() < 1 else "not faster on any model" if ratios.min() >= 1 else "mixed"
    return f"{runtime}: {ratios.min():.2f}-{ratios.max():.2f}x eager's time per pass ({kind})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--reps", type=int, default=3, help="passes per runtime (best kept), alternated")
    parser.add_argument("--no-save", action="store_true", help="print only; do not write benchmarks/results/")
    args = parser.parse_args(argv)
    os.environ["ENCODING_KIT_PRECISION"] = "float32"
    torch.set_num_threads(1)
    from benchmarks.bench_demo_run import machine  # run from the kit's folder with PYTHONPATH=.
    from encoding_kit.core.progress import tqdm
    from encoding_kit.core.storage import atomic_write

    meta = machine()
    runtimes, skipped = available_runtimes()
    for line in skipped:
        print(line)
    rows = [row for name in tqdm(args.models, desc="models") for row in time_model(name, runtimes, args.reps)]
    meta["load_after"] = [round(x, 2) for x in os.getloadavg()]
    meta["threads"] = 1
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    for runtime in runtimes[1:]:
        print(verdict(runtime, table.loc[table.runtime == runtime, "vs_eager"]))
    print(f"load average {meta['load_before']} before, {meta['load_after']} after; commit {meta['commit'][:10]}")
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        atomic_write(RESULTS / "runtimes-float32.json",
                     lambda tmp: tmp.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1)))
        atomic_write(RESULTS / "runtimes-float32.csv", lambda tmp: table.to_csv(tmp, index=False))
        print(f"wrote {RESULTS / 'runtimes-float32.json'} and .csv")


if __name__ == "__main__":
    main()
