"""Fast paths against the exact path, on real weights offline: speed, feature fidelity, held-out r.

Each lever is run on the first ``--trs`` TRs of the demo story next to the
path it replaces, every layer, through the kit's functions:

* Whisper (real tiny.en weights with Whisper's own 30 s input):
  ``whisper_input="window"``, ``"past"`` and ``"shared_padding"`` against
  ``"padded"``, for the encoder's features and (``decoder``) the decoder's;
* BERT-style (real all-MiniLM-L6-v2): ``mode="tr"`` (one window per TR)
  against ``mode="exact"`` (one per word), both pooled into TRs;
* dynamic int8 quantisation (:func:`encoding_kit.features.quantize.quantize_dynamic`)
  of MiniLM (exact mode) and of tiny.en (window input);
* bf16 autocast (``bf16``: the kit's precision on CPUs with AMX,
  :mod:`encoding_kit.core.runtime`) against float32: MiniLM in exact mode,
  SmolLM2-135M (real weights; a RoPE causal LM like Qwen) strided over 200 tokens, and
  tiny.en's encoder and decoder as the notebooks run them (shared padding in
  bf16) against the exact path (padded input in float32).

Every path runs in float32 (``ENCODING_KIT_PRECISION=float32``) unless the
lever is bf16 itself.

Fidelity: the median over feature dimensions of the correlation (over TRs)
between the fast and the exact features, and the held-out encoding r (mean
over all subjects and ROIs, in-fold PCA 128) of each; a lever may be a
default only when every layer has median r >= 0.95 and |delta r| <= 0.005.
Speed is the ratio of the two extraction times in this process (the load
inflates both).

    python benchmarks/bench_fast_paths.py [--trs 400] [--only whisper decoder bert int8]   # int8 alone: its 2 rows
        [--whisper-inputs window past shared_padding]
    python benchmarks/bench_fast_paths.py --only bf16
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from encoding_kit.core.runtime import use_precision
from encoding_kit.data.story import load_story
from encoding_kit.encoding.evaluate import evaluate_encoding
from encoding_kit.features import offline_models
from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.models import minilm
from encoding_kit.features.quantize import quantize_dynamic
from encoding_kit.run.sweeps import audio_layers, decoder_layers, text_layers

MEDIAN_R, DELTA_R = 0.95, 0.005

NO_CACHE = ExtractionRun(cache=False, progress=False)
"""Features computed afresh (never read from or written to the cache), without a progress bar."""


def median_dimension_r(a, b):
    """Median over columns of the correlation between two (n_trs, dim) arrays (constant columns skipped)."""
    a, b = a - a.mean(0), b - b.mean(0)
    norm = np.sqrt((a ** 2).sum(0) * (b ** 2).sum(0))
    ok = norm > 1e-12
    return float(np.median((a * b).sum(0)[ok] / norm[ok]))


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def compare(lever, exact, fast, t_exact, t_fast, story):
    """One row per layer: median r, held-out r of both, the delta, the speed-up."""
    rows = []
    for layer in exact:
        r_exact = evaluate_encoding(exact[layer], story.fmri, pca=128, progress=False, cache=False).mean_r()[0]
        r_fast = evaluate_encoding(fast[layer], story.fmri, pca=128, progress=False, cache=False).mean_r()[0]
        rows.append({"lever": lever, "layer": layer, "median_dim_r": round(median_dimension_r(exact[layer],
                                                                                                fast[layer]), 4),
                     "heldout_r_exact": round(r_exact, 4), "heldout_r_fast": round(r_fast, 4),
                     "delta_r": round(r_fast - r_exact, 4), "speedup": round(t_exact / t_fast, 2)})
    table = pd.DataFrame(rows)
    ok = (table.median_dim_r >= MEDIAN_R).all() and (table.delta_r.abs() <= DELTA_R).all()
    print(table.to_string(index=False))
    print(f"-> {lever}: {'passes' if ok else 'FAILS'} (median r >= {MEDIAN_R} and |delta r| <= {DELTA_R} in "
          f"every layer); {t_exact:.0f} s vs {t_fast:.0f} s\n", flush=True)
    return table.assign(passes=ok)


def whisper_levers(story, args):
    lm = offline_models.whisper_standin("openai/whisper-base", input_s=30)  # tiny.en exactly as trained
    kw = dict(window_trs=2, run=NO_CACHE)
    if "whisper" not in args.only:  # int8 alone: only its own comparison
        return whisper_int8(story, lm, kw, {})
    inputs = ("padded", *args.whisper_inputs)
    runs = {w: timed(lambda w=w: audio_layers(story, lm, whisper_input=w, **kw)) for w in inputs}
    tables = [compare(f"whisper tiny.en {w} vs padded", runs["padded"][0], runs[w][0], runs["padded"][1],
                      runs[w][1], story) for w in args.whisper_inputs]
    if "decoder" in args.only:  # the decoder cross-attends to the whole input: the shared padding's states too
        dec = {w: timed(lambda w=w: decoder_layers(story, lm, whisper_input=w, **kw)) for w in inputs}
        tables += [compare(f"whisper tiny.en decoder {w} vs padded", dec["padded"][0], dec[w][0], dec["padded"][1],
                           dec[w][1], story) for w in args.whisper_inputs]
    if "int8" in args.only:
        tables += whisper_int8(story, lm, kw, runs)
    return tables


def whisper_int8(story, lm, kw, runs):
    """tiny.en's encoder on the window alone, int8 against float32 (a quantised model runs a window at a time)."""
    fast, t = timed(lambda: audio_layers(story, quantize_dynamic(lm), whisper_input="window", **kw))
    window = runs["window"] if "window" in runs else timed(lambda: audio_layers(story, lm, whisper_input="window",
                                                                                 **kw))
    return [compare("whisper tiny.en window int8 vs window float32", window[0], fast, window[1], t, story)]


def bert_levers(story, args):
    lm = minilm()
    kw = dict(context_tokens=100, run=NO_CACHE)
    exact, t_exact = timed(lambda: text_layers(story, lm, mode="exact", **kw))
    tables = []
    if "bert" in args.only:
        per_tr, t_tr = timed(lambda: text_layers(story, lm, mode="tr", **kw))
        tables.append(compare("MiniLM mode='tr' vs 'exact'", exact, per_tr, t_exact, t_tr, story))
    if "int8" in args.only:
        q, t_q = timed(lambda: text_layers(story, quantize_dynamic(lm), mode="exact", **kw))
        tables.append(compare("MiniLM exact int8 vs float32", exact, q, t_exact, t_q, story))
    return tables


def bf16_levers(story):
    """bf16 autocast against float32: MiniLM exact; tiny.en encoder and decoder, shared padding vs padded."""
    tables = []
    lm = minilm()
    kw = dict(context_tokens=100, mode="exact", run=NO_CACHE)
    exact, t_exact = timed(lambda: text_layers(story, lm, **kw))
    with use_precision("bf16"):
        fast, t_fast = timed(lambda: text_layers(story, lm, **kw))
    tables.append(compare("MiniLM exact bf16 vs float32", exact, fast, t_exact, t_fast, story))
    smollm = offline_models.smollm2_standin("Qwen/Qwen2.5-0.5B")  # real SmolLM2-135M, a RoPE causal LM like Qwen
    kw = dict(context_tokens=200, mode="strided", run=NO_CACHE)
    exact, t_exact = timed(lambda: text_layers(story, smollm, **kw))
    with use_precision("bf16"):
        fast, t_fast = timed(lambda: text_layers(story, smollm, **kw))
    tables.append(compare("SmolLM2 strided 200 tokens bf16 vs float32", exact, fast, t_exact, t_fast, story))
    tiny = offline_models.whisper_standin("openai/whisper-base", input_s=30)
    kw = dict(window_trs=2, run=NO_CACHE)
    for part, layers_of in (("encoder", audio_layers), ("decoder", decoder_layers)):
        exact, t_exact = timed(lambda layers_of=layers_of: layers_of(story, tiny, whisper_input="padded", **kw))
        with use_precision("bf16"):
            fast, t_fast = timed(lambda layers_of=layers_of: layers_of(story, tiny, whisper_input="shared_padding", **kw))
        tables.append(compare(f"whisper tiny.en {part} shared_padding bf16 vs padded float32", exact, fast,
                              t_exact, t_fast, story))
    return tables


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--trs", type=int, default=400, help="first TRs of the demo story")
    parser.add_argument("--only", nargs="*", default=["whisper", "decoder", "bert", "int8", "bf16"])
    parser.add_argument("--whisper-inputs", nargs="*", default=["window", "past", "shared_padding"],
                        help="Whisper inputs compared with 'padded'")
    parser.add_argument("--out", default="results/bench_fast_paths")
    args = parser.parse_args(argv)
    print(f"Load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    story = load_story(args.data_dir, max_trs=args.trs)
    print(story.describe())
    tables = []
    with use_precision("float32"):
        if "bert" in args.only or "int8" in args.only:
            tables += bert_levers(story, args)
        if "whisper" in args.only or "int8" in args.only:
            tables += whisper_levers(story, args)
        if "bf16" in args.only:
            tables += bf16_levers(story)
    print(f"Load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pd.concat(tables).to_csv(out / "fidelity.csv", index=False)
    print(f"Table: {out / 'fidelity.csv'}")


if __name__ == "__main__":
    main()
