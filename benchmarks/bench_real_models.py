"""The run students make: the notebooks' real checkpoints on the real story, timed here.

Every model and extraction setting the notebooks use by default is built at
its real checkpoint's size (:mod:`encoding_kit.features.real_configs`: the
config values of the model cards, random weights; the real checkpoint when it
is in the local Hugging Face cache), run through the kit's own extraction
functions on a slice of the demo story, and extrapolated to the real story
(8,267 words, 2,249 TRs):

* text: the marginal cost per word between a slice of ``n`` and ``2n`` words
  (``n`` covers the context, so the first, shorter windows do not flatter it);
* audio: the cost per TR of ``--trs`` TRs after a warm-up batch (every TR
  costs the same).

Settings are listed in the order ``make run`` meets them; a later notebook
asking for the same model and setting hits the feature cache and costs
nothing. The ridge evaluations are timed once (one 768-wide layer, in-fold
PCA to 128, 2,249 TRs) and multiplied by the number each notebook makes.
Peak memory is the largest resident set of this process while a setting runs.

``--levers`` adds the other paths next to the defaults, timed the same way:
Whisper's exact padded input (the default shares the padding's states between
windows), BERT with one window per TR (the default is one window per word);
their fidelity is measured on real weights by ``benchmarks/bench_fast_paths.py``.

``--early-exit`` times the settings that read one low layer (05's sweeps: ``layers`` in their settings) both
ways, the layers above skipped (:mod:`encoding_kit.features.early_exit`, the default) and the whole model run,
alternated, and prints the ratio.

``--with-quick-run`` also times the settings only ``make run ARGS=--quick``
uses (its shorter contexts), for the quick run's estimate.

Models run in the kit's precision on this machine (:mod:`encoding_kit.core.runtime`:
bf16 autocast on a CPU with native bf16, else float32); run it once with
``ENCODING_KIT_PRECISION=float32`` for the figures of a CPU without it. The
load average is printed with the figures: other processes sharing the CPU
inflate every time.

    python benchmarks/bench_real_models.py [--quick] [--levers] [--with-quick-run] [--words 200] [--trs 24]
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from encoding_kit.data.story import load_story
from encoding_kit.data.timebase import TR
from encoding_kit.encoding.evaluate import evaluate_encoding
from encoding_kit.features import whisper_padding
from encoding_kit.features.audio import extract_audio_features
from encoding_kit.features.audio_frames import extract_frame_sequences
from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.models import ModelUnavailable, load_model
from encoding_kit.features.real_configs import REAL_STORY_TRS, REAL_STORY_WORDS, n_parameters, real_size_model
from encoding_kit.features.text import extract_text_features
from encoding_kit.features.whisper_decoder import whisper_decoder_features
from encoding_kit.run.profiles import (
    AUDIO,
    FULL_EXTRACTIONS,
    FULL_RIDGE,
    NOTEBOOKS,
    QUICK_EXTRACTIONS,
    QUICK_TRS,
    TEXT,
    machine_precision,
)

DEFAULT_SETTINGS = FULL_EXTRACTIONS
LEVERS = {  # another path of a setting: (label, extra settings)
    ("openai/whisper-base", AUDIO): ("whisper_input='padded'", dict(whisper_input="padded")),
    ("bert-base-uncased", TEXT): ("mode='tr'", dict(mode="tr")),
}
QUICK_MAX_CONTEXT = 200
"""With ``--quick``, longer strided contexts reuse the per-word figure of this one (strided windows make the cost
per word nearly independent of the context; the full run times them)."""


class PeakRSS:
    """Largest resident set size (bytes) of this process while the block runs, sampled every 20 ms."""

    def __enter__(self):
        self.peak, self._stop = _rss(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def get_model(name, cache={}):  # noqa: B006 - the last model, kept for the next setting of the same model
    """The real checkpoint when it is in the local Hugging Face cache, else a random model of its real size."""
    if name not in cache:
        cache.clear()  # one model in memory at a time, so the peak memory of a setting is its own model's
        gc.collect()
        try:
            cache[name] = load_model(name)
        except ModelUnavailable:
            cache[name] = real_size_model(name)
    return cache[name]


FRESH = ExtractionRun(cache=False, progress=False)
"""Every timing computes its features (no cache), without a progress bar."""
SHORT_AUDIO = FRESH.replace(allow_short_audio=True)
"""The audio timings read a slice of the story a little longer than the TRs they time."""


def time_text(loaded, words, n_words, **settings):
    """Marginal seconds per word between ``n_words`` and ``2 * n_words`` words, and tokens per word.

    ``words`` is the story's word table (``mode="tr"`` reads its ``tr`` column).
    """
    def run(n):
        start = time.perf_counter()
        extract_text_features(words.iloc[:n], loaded, run=FRESH, **settings)
        return time.perf_counter() - start

    tokenizer = loaded.processor.tokenizer if loaded.family == "clap" else loaded.processor
    tokens_per_word = len(tokenizer(" ".join(words["word"][:2 * n_words]))["input_ids"]) / (2 * n_words)
    run(min(8, n_words))  # warm-up
    return (run(2 * n_words) - run(n_words)) / n_words, tokens_per_word


def time_audio(loaded, story, n_trs, part="encoder", **settings):
    """Seconds per TR of ``n_trs`` TRs (after a warm-up batch).

    ``part="decoder"``: Whisper's decoder features; ``"frames"``: 09's sub-TR encoder frames of one layer (its
    default input, the window alone).
    """
    wav = story.wav[: int((n_trs + 1) * TR * story.sr)]

    def run(n):
        if part == "decoder":
            whisper_decoder_features(wav, story.sr, story.words, n, loaded, run=SHORT_AUDIO, **settings)
        elif part == "frames":
            extract_frame_sequences(wav, story.sr, n, loaded, layers=[2], run=FRESH, **settings)
        else:
            extract_audio_features(wav, story.sr, n, loaded, run=SHORT_AUDIO, **settings)

    run(2)
    if settings.get("whisper_input") == "shared_padding":
        run(n_trs)  # the slice's padding levels: computed once per level for the whole story, counted apart
    start = time.perf_counter()
    run(n_trs)
    return (time.perf_counter() - start) / n_trs


def padding_levels_seconds(loaded, story, window_trs):
    """Seconds the shared padding passes add to a whole story: (levels its windows meet) x (one pass).

    The levels are counted on the story's own windows (the demo's here); returns (seconds, levels).
    """
    import torch

    from encoding_kit.data.timebase import audio_window_bounds
    from encoding_kit.features.audio import windows_batch

    starts, stops = audio_window_bounds(story.n_trs, story.sr, TR, window_trs, 0.0)
    levels = np.concatenate([whisper_padding.window_log_mel(loaded.processor, windows_batch(
        story.wav, story.sr, starts[i:i + 64], stops[i:i + 64]), story.sr)[1] for i in range(0, story.n_trs, 64)])
    n_levels = len(np.unique(whisper_padding.rounded_levels(levels)))
    encoder, n_positions = loaded.model.encoder, loaded.model.config.max_source_positions
    with torch.inference_mode():
        start = time.perf_counter()
        whisper_padding.padding_entry(encoder, float(levels[0]), loaded.processor.feature_size, 2 * n_positions)
        one = time.perf_counter() - start
    return one * n_levels, n_levels


def text_slice(settings, tokens_per_word, min_words):
    """Words per slice: enough for a full window of the setting (context, plus the stride in strided mode)."""
    context = settings["context_tokens"]
    width = context + (context // 4 if settings["mode"] == "strided" else 0)
    return max(min_words, math.ceil(1.2 * width / tokens_per_word))


def measure(settings_list, story, args):
    """One row per setting: per-unit seconds, real-story minutes, peak memory."""
    words = story.words
    rows, per_word, levels = [], {}, {}
    for notebook, name, kind, settings in settings_list:
        if args.only and not any(part in name for part in args.only):
            continue
        loaded = get_model(name)
        label = ", ".join(f"{k}={v}" for k, v in settings.items())
        long_quick = (kind == TEXT and args.quick and settings["mode"] == "strided"
                      and settings["context_tokens"] > QUICK_MAX_CONTEXT)
        with PeakRSS() as mem:
            if long_quick:
                seconds, unit, note = per_word[(name, QUICK_MAX_CONTEXT)], "word", f"est. from {QUICK_MAX_CONTEXT}"
            elif kind == TEXT:
                n = text_slice(settings, 1.3, args.words)
                seconds, tpw = time_text(loaded, words, n, **settings)
                unit, note = "word", f"{tpw:.2f} tokens/word, slices {n}/{2 * n} words"
                per_word[(name, settings["context_tokens"])] = seconds
            else:
                seconds, unit, note = time_audio(loaded, story, args.trs, **settings), "TR", f"{args.trs} TRs"
                if settings.get("whisper_input") == "shared_padding":
                    if (name, settings["window_trs"]) not in levels:
                        levels[(name, settings["window_trs"])] = padding_levels_seconds(loaded, story,
                                                                                        settings["window_trs"])
                    level_s, n_levels = levels[(name, settings["window_trs"])]
                    seconds += level_s / REAL_STORY_TRS
                    note += f" + {n_levels} padding levels of the demo's windows, {level_s:.0f} s"
        units = REAL_STORY_WORDS if unit == "word" else REAL_STORY_TRS
        rows.append({"notebook": notebook, "model": name, "kind": kind, "setting": label,
                     "source": loaded.source, "params_M": round(n_parameters(loaded) / 1e6, 1),
                     "ms_per_unit": round(1000 * seconds, 1), "unit": unit,
                     "real_story_min": round(seconds * units / 60, 1), "peak_rss_GB": round(mem.peak / 1e9, 2),
                     "note": note})
        print(f"  {notebook:>10} {name:<28} {kind:<5} {label:<40} {1000 * seconds:8.1f} ms/{unit:<4} "
              f"-> {seconds * units / 60:6.1f} min  (peak {mem.peak / 1e9:.1f} GB; {note})", flush=True)
    return pd.DataFrame(rows)


def time_ridge(story):
    """Seconds of one ridge evaluation of all 25 subjects: one 768-wide layer, PCA 128, the story's TRs.

    All subjects are fitted at once (their ROIs are the targets of one solve), so the time is not proportional to
    the number of subjects: the demo's 25 are timed as they are.
    """
    X = np.random.default_rng(0).standard_normal((story.n_trs, 768)).astype(np.float32)
    start = time.perf_counter()
    evaluate_encoding(X, story.fmri, pca=128, progress=False, cache=False)
    return (time.perf_counter() - start) * 25 / len(story.fmri) * REAL_STORY_TRS / story.n_trs


def time_quick_ridge(story, n_subjects=5):
    """Seconds of one ridge evaluation of the quick run: its 5 subjects x 400 TRs, one 768-wide layer, PCA 128."""
    fmri = {s: values[:QUICK_TRS] for s, values in list(story.fmri.items())[:n_subjects]}
    X = np.random.default_rng(0).standard_normal((QUICK_TRS, 768)).astype(np.float32)
    start = time.perf_counter()
    evaluate_encoding(X, fmri, pca=128, progress=False, cache=False)
    return time.perf_counter() - start


def gemm_gflops(seconds=2.0):
    """This CPU's float32 matrix-product speed now (GFLOP/s of 1024 x 1024 products over ``seconds``).

    Printed before and after the figures: the same code runs up to twice as fast on this shared virtual machine at
    one hour as at another (the load average inside it cannot show the host's load), and this figure follows it.
    """
    import torch

    a = torch.randn(1024, 1024)
    a @ a  # warm-up
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        a @ a
        n += 1
    return 2 * 1024 ** 3 * n / (time.perf_counter() - start) / 1e9


def per_notebook(table, ridge_s):
    """Minutes per notebook: extraction (first use only), ridge, total."""
    extraction = table.groupby("notebook")["real_story_min"].sum()
    out = pd.DataFrame({"extraction_min": [extraction.get(n, 0.0) for n in NOTEBOOKS],
                        "ridge_evaluations": [FULL_RIDGE[n] for n in NOTEBOOKS]}, index=list(NOTEBOOKS))
    out["ridge_min"] = out["ridge_evaluations"] * ridge_s / 60
    out["total_min"] = out["extraction_min"] + out["ridge_min"]
    out.loc["total"] = out.sum()
    return out.round(1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="the demo story (default: data/)")
    parser.add_argument("--quick", action="store_true",
                        help="short slices, long strided contexts not timed")
    parser.add_argument("--levers", action="store_true", help="also time the other paths of a setting (LEVERS)")
    parser.add_argument("--words", type=int, default=None, help="smallest text slice (words)")
    parser.add_argument("--trs", type=int, default=None, help="TRs timed per audio setting")
    parser.add_argument("--only", nargs="*", default=None, help="time only the models whose names contain these")
    parser.add_argument("--early-exit", action="store_true",
                        help="time only the one-layer settings, with the layers above skipped and with the whole model")
    parser.add_argument("--with-quick-run", action="store_true",
                        help="also time the settings only the quick run uses (its shorter contexts)")
    parser.add_argument("--out", default="results/bench_real_models", help="folder for the CSV tables")
    args = parser.parse_args(argv)
    args.words = args.words or (24 if args.quick else 150)
    args.trs = args.trs or (8 if args.quick else 32)
    load_before = os.getloadavg()
    print(f"Load average before (1, 5, 15 min): {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} "
          f"on {os.cpu_count()} CPUs; torch threads: {_torch_threads()}; precision: {machine_precision()}; "
          f"float32 matrix products: {gemm_gflops():.0f} GFLOP/s")
    story = load_story(args.data_dir)
    if args.early_exit:
        return early_exit_ratios(story, args)
    print("Extraction, extrapolated to the real story:")
    default = measure(DEFAULT_SETTINGS, story, args)
    levers = [(i, (nb, name, kind, {**s, **LEVERS[(name, kind)][1]}))
              for i, (nb, name, kind, s) in enumerate(DEFAULT_SETTINGS) if args.levers and (name, kind) in LEVERS]
    if levers:
        print("Other paths (LEVERS):")
        fast_rows = measure([setting for _, setting in levers], story, args)
    if args.with_quick_run:
        print("Settings only the quick run uses:")
        quick_only = [s for s in QUICK_EXTRACTIONS if s[1:] not in [d[1:] for d in DEFAULT_SETTINGS]]
        default = pd.concat([default, measure(quick_only, story, args).assign(notebook="quick run")],
                            ignore_index=True)
    ridge_s = time_ridge(story)
    print(f"Ridge: {ridge_s:.1f} s per evaluation of 25 subjects x {REAL_STORY_TRS} TRs (768 features, PCA 128)")
    if args.with_quick_run:
        print(f"Ridge of the quick run: {time_quick_ridge(story):.2f} s per evaluation of 5 subjects x {QUICK_TRS} TRs")
    print("\nReal story, notebook defaults (minutes; a setting counts in the first notebook that extracts it):\n"
          + per_notebook(default, ridge_s).to_string())
    table = default.assign(fast_path=False)
    if levers:
        fast = default.copy()
        for j, (i, _) in enumerate(levers):
            fast.iloc[i] = fast_rows.iloc[j]
        print("\nWith the other paths:\n" + per_notebook(fast, ridge_s).to_string())
        table = pd.concat([table, fast_rows.assign(fast_path=True)], ignore_index=True)
    load_after = os.getloadavg()
    print(f"\nFloat32 matrix products after: {gemm_gflops():.0f} GFLOP/s")
    print(f"Load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} on "
          f"{os.cpu_count()} CPUs. A load above the CPU count means other processes shared the cores: the times "
          "above are inflated by about load / CPUs.")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.assign(load_1min=load_before[0], ridge_s=round(ridge_s, 1), precision=machine_precision()).to_csv(
        out / "settings.csv", index=False)
    print(f"Tables: {out / 'settings.csv'}")
    return table


def early_exit_ratios(story, args):
    """Per-unit seconds of each one-layer setting with the layers above skipped and with the whole model."""
    one_layer = [s for s in dict.fromkeys((nb, n, k, tuple(v.items())) for nb, n, k, v in
                                          [*FULL_EXTRACTIONS, *QUICK_EXTRACTIONS]) if "layers" in dict(s[3])]
    rows = []
    for notebook, name, kind, items in one_layer:
        settings = dict(items)
        if args.quick and kind == TEXT and settings["context_tokens"] > QUICK_MAX_CONTEXT:
            print(f"{notebook} {name} {settings}: not timed with --quick (a strided context's cost per word is "
                  f"nearly flat: take the {QUICK_MAX_CONTEXT}-token ratio)")
            continue
        whole = {k: v for k, v in settings.items() if k != "layers"}
        print(f"{notebook} {name} {kind} {settings}:", flush=True)
        skipped = measure([(notebook, name, kind, settings)], story, args)["ms_per_unit"].iloc[0]
        run_whole = measure([(notebook, name, kind, whole)], story, args)["ms_per_unit"].iloc[0]
        rows.append({"notebook": notebook, "model": name, "setting": ", ".join(f"{k}={v}" for k, v in items),
                     "skipped_ms": skipped, "whole_ms": run_whole, "ratio": round(skipped / run_whole, 3)})
    table = pd.DataFrame(rows)
    print("\nThe layers above skipped / the whole model (per unit):\n" + table.to_string(index=False))
    load = os.getloadavg()
    print(f"Load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.assign(load_1min=load[0], precision=machine_precision()).to_csv(out / "early_exit.csv", index=False)
    return table


def _torch_threads():
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
