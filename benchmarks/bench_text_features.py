"""Strided vs exact text-feature extraction: speed and fidelity, from one run.

On the full-size demo story (about 8,000 words) at context_tokens=200:

1. speed, GPT-2-small-sized random model (12 layers, 768 wide): strided mode on
   the whole story vs exact mode timed on ``--exact-words`` words (its cost is
   the same for every word with full context, so it is scaled linearly to the
   story; the script says so);
2. fidelity, small random Llama-style (RoPE) and GPT-2-style (absolute
   positions) models: per-dimension correlation between strided and exact
   features over all words (median over dimensions), and held-out encoding r
   on the demo data for both;
3. the real offline model (all-MiniLM-L6-v2), exact mode, timed the same way.

    python benchmarks/bench_text_features.py [--data-dir DIR] [--exact-words 300]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from encoding_kit.data.story import load_story
from encoding_kit.encoding.evaluate import evaluate_encoding
from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.models import minilm, standin
from encoding_kit.features.text import extract_text_features, text_features_to_trs, tokenize_story
from encoding_kit.run.runner import ensure_data

CONTEXT = 200


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def extract(words, lm, mode, layers, batch_size=None):
    return extract_text_features(words, lm, layers=layers, context_tokens=CONTEXT, mode=mode,
                                 run=ExtractionRun(batch_size=batch_size, cache=False, progress=False))


def time_exact_per_word(words, lm, first, n, batch_size=16):
    """Seconds per word of exact mode, timed on words[first:first + n] with their full story context."""
    from encoding_kit.core.runtime import torch_device
    from encoding_kit.features.text import StoryTokens, _run_windows, special_template
    from encoding_kit.features.text_windows import word_windows

    tok = lm.processor
    tokens = tokenize_story(words, tok)
    starts, ends = word_windows(tokens, CONTEXT, "exact", 0)
    sel = slice(first, first + n)
    subset = StoryTokens(tokens.text, tokens.ids, tokens.token_word, tokens.word_first[sel], tokens.word_last[sel])
    prefix, suffix = special_template(tok)
    start = time.perf_counter()
    _run_windows(lm.model, subset, starts[sel], ends[sel], prefix, suffix, [lm.model.config.num_hidden_layers],
                 "last", batch_size, torch_device(), tok.pad_token_id or 0, progress=False, desc="")
    return (time.perf_counter() - start) / n


def median_dim_r(a, b):
    a = (a - a.mean(0)) / (a.std(0) + 1e-9)
    b = (b - b.mean(0)) / (b.std(0) + 1e-9)
    return float(np.median((a * b).mean(0)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--exact-words", type=int, default=300)
    args = parser.parse_args()
    folder, _ = ensure_data(args.data_dir)
    story = load_story(folder)
    words = list(story.words["word"])
    print(f"story: {len(words)} words, context_tokens={CONTEXT}\n")

    # 1. Speed at GPT-2-small size.
    big = standin("gpt2", "gpt2", size="small")
    n_tok = len(tokenize_story(words, big.processor).ids)
    _, t_strided = timed(extract, words, big, "strided", [12], batch_size=8)
    per_word = time_exact_per_word(words, big, 1000, args.exact_words)  # words past 1000 have full context
    t_exact = per_word * len(words)
    print("speed, GPT-2-small-sized random model (12 x 768), CPU:")
    print(f"  tokens in story            {n_tok} ({n_tok / len(words):.2f} per word)")
    print(f"  strided (stride {CONTEXT // 4}), whole story   {t_strided:8.1f} s")
    print(f"  exact, {per_word * 1000:.1f} ms/word x {len(words)} words  {t_exact:8.1f} s "
          f"(timed on {args.exact_words} words with full context, scaled)")
    print(f"  speed-up strided vs exact  {t_exact / t_strided:8.1f}x   (target >= 20x)\n")

    # 2. Fidelity on small models, whole story both ways.
    for family, note in (("llama", "RoPE positions"), ("gpt2", "absolute positions")):
        lm = standin(family, family)
        layers = [2, 4]
        exact, t_e = timed(extract, words, lm, "exact", layers, batch_size=32)
        strided, t_s = timed(extract, words, lm, "strided", layers, batch_size=32)
        print(f"fidelity, small random {family} ({note}); exact {t_e:.1f} s, strided {t_s:.1f} s "
              f"({t_e / t_s:.1f}x):")
        for layer in layers:
            print(f"  layer {layer}: median per-dimension r(strided, exact) = "
                  f"{median_dim_r(exact[layer], strided[layer]):.3f}   (target >= 0.9 for RoPE)")
        trs = {m: text_features_to_trs({4: f[4]}, story.words, story.n_trs)[4]
               for m, f in (("exact", exact), ("strided", strided))}
        scores = {m: evaluate_encoding(X, story.fmri, progress=False).mean_r()[0] for m, X in trs.items()}
        print(f"  held-out encoding r (layer 4, {len(story.fmri)} subjects): exact {scores['exact']:.4f}, "
              f"strided {scores['strided']:.4f}, |difference| {abs(scores['exact'] - scores['strided']):.4f} "
              "(target <= 0.01)\n")

    # 3. The real offline model.
    lm = minilm()
    per_word = time_exact_per_word(words, lm, 1000, args.exact_words, batch_size=32)
    print(f"real all-MiniLM-L6-v2, exact mode: {per_word * 1000:.1f} ms/word -> {per_word * len(words):.0f} s "
          f"for the story (timed on {args.exact_words} words, scaled)")


if __name__ == "__main__":
    main()
