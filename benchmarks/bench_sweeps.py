"""Notebook 05's extractions with and without the lower-layer fast path: CPU seconds and equality.

05 reads one layer of each model (``TEXT_LAYER`` of GPT-2's stand-in, SmolLM2-135M with 30 blocks, at each
context; ``AUDIO_LAYER`` of Whisper tiny.en at each window length). Before, every extraction ran the whole model
(the cache stored every layer); now 05 passes ``run=ExtractionRun(store_all_layers=False)`` and the layers above the
one asked for are not run (:mod:`encoding_kit.features.early_exit`, ``top=`` of
:func:`encoding_kit.features.whisper_padding.shared_padding_states`); with the cache off, as here, they never are.
Per setting this prints the CPU seconds of this process (``time.process_time``: other processes on the machine
inflate it less than wall time) of the whole pass and of the lower-layer pass, their ratio, and the largest
absolute difference between the two features (0: the same arrays). Offline, on the first ``--trs`` TRs of the demo
story, float32, cache off, one BLAS/torch thread (as the runner's kernels with ``--jobs 2``).

    python benchmarks/bench_sweeps.py [--data-dir DIR] [--trs 600] [--contexts 10 100 800] [--windows 1 8]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from encoding_kit.core.runtime import use_precision
from encoding_kit.data.story import load_story
from encoding_kit.features import whisper_padding
from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.models import load_model
from encoding_kit.run.sweeps import audio_layers, text_layers

NO_CACHE = ExtractionRun(cache=False, progress=False)


def cpu_seconds(fn, *args, **kwargs):
    """(result, CPU seconds of this process) of ``fn(*args, **kwargs)``, Whisper's padding states computed afresh."""
    whisper_padding._CACHES.clear()  # each pass pays for its own padding levels
    start = time.process_time()
    out = fn(*args, **kwargs)
    return out, time.process_time() - start


def row(setting, layer, whole, lower):
    (features, t_whole), (fast, t_lower) = whole, lower
    return {"setting": setting, "layer": layer, "whole_cpu_s": round(t_whole, 1), "lower_cpu_s": round(t_lower, 1),
            "speedup": round(t_whole / t_lower, 2), "max_abs_diff": float(np.abs(features[layer] - fast[layer]).max())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--trs", type=int, default=600, help="first TRs of the demo story")
    parser.add_argument("--contexts", type=int, nargs="*", default=[10, 100, 800])
    parser.add_argument("--windows", type=int, nargs="*", default=[1, 8])
    parser.add_argument("--text-layer", type=int, default=4)
    parser.add_argument("--audio-layer", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    story = load_story(args.data_dir, max_trs=args.trs)
    rows = []
    with use_precision("float32"):
        lm = load_model("gpt2", allow_standin=True)
        for c in args.contexts:
            kw = dict(context_tokens=c, mode="strided", run=NO_CACHE)
            whole = cpu_seconds(text_layers, story, lm, **kw)  # every layer: the whole model
            lower = cpu_seconds(text_layers, story, lm, layers=[args.text_layer], **kw)
            rows.append(row(f"{lm.name} text context_tokens={c}", args.text_layer, whole, lower))
            print(rows[-1], flush=True)
        whisper = load_model("openai/whisper-base", allow_standin=True)
        for w in args.windows:
            kw = dict(window_trs=w, whisper_input="shared_padding", run=NO_CACHE)
            whole = cpu_seconds(audio_layers, story, whisper, **kw)
            lower = cpu_seconds(audio_layers, story, whisper, layers=[args.audio_layer], **kw)
            rows.append(row(f"{whisper.name} audio window_trs={w}", args.audio_layer, whole, lower))
            print(rows[-1], flush=True)
    print(f"\n{story.describe()}, float32, 1 thread; whole pass vs the layers up to the one asked for (CPU s):")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
