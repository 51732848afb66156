"""Speech synthesis and the real-weight offline models: where the time goes, from one run.

1. eSpeak NG speaking the full demo story (the sentences of
   :func:`encoding_kit.data.story_text.generate_story` for 2249 TRs), cold, then
   laying it on the time line at 16 kHz, then again from the cache;
2. the CTranslate2 -> Hugging Face conversion of Whisper tiny.en (into a
   fresh cache folder);
3. Whisper encoder features per TR window (2-TR windows, every layer): the
   random-weight stand-in, the real tiny.en with the kit's 12 s input, and
   with Whisper's own 30 s input;
4. text features per word in strided mode (context 100, every layer): the
   random GPT-2 stand-in against the real SmolLM2-135M.

Everything is scaled linearly to the full story. Times depend on the load of the
machine: run it alone.

    python benchmarks/bench_offline_models.py [--words 800] [--trs 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from encoding_kit.data.story_text import generate_story  # noqa: E402
from encoding_kit.demo import synthesis as speech  # noqa: E402
from encoding_kit.features import models, offline_models, whisper_ct2  # noqa: E402
from encoding_kit.features.audio import extract_audio_features
from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.text import extract_text_features

N_TRS = 2249
SR = 16000


def _clock(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def bench_speech(words):
    sentences = [" ".join(g["word"]) + "." for _, g in words.groupby("sentence")]
    duration = N_TRS * 1.5 + 0.75
    with tempfile.TemporaryDirectory() as cache:
        (clips, table), cold = _clock(lambda: speech.synthesize_sentences(sentences, cache_dir=cache))
        pauses = speech.pauses_to_fill([len(c) / speech.ESPEAK_SR for c in clips], duration, np.random.default_rng(0))
        _, place = _clock(lambda: speech.place_sentences(clips, table, pauses, 6.0, duration))
        _, warm = _clock(lambda: speech.synthesize_sentences(sentences, cache_dir=cache))
    spoken = sum(map(len, clips)) / speech.ESPEAK_SR
    print(f"speech: {len(table)} words, {len(sentences)} sentences, {spoken:.0f} s of speech; eSpeak {cold:.1f} s "
          f"(cold), {warm:.2f} s (cached); placing + resampling to 16 kHz {place:.1f} s; "
          f"unaligned {table['onset'].isna().mean():.1%}")


def bench_whisper(n_trs):
    with tempfile.TemporaryDirectory() as cache:
        _, seconds = _clock(lambda: whisper_ct2.load_whisper_tiny_en(cache_dir=cache))
        print(f"Whisper tiny.en conversion + cache: {seconds:.1f} s")
        wav = 0.05 * np.random.default_rng(0).standard_normal(int((n_trs + 2) * 1.5 * SR)).astype(np.float32)
        kw = dict(window_trs=2, run=ExtractionRun(cache=False, progress=False, batch_size=8))
        candidates = [("random stand-in", models.standin("whisper", "whisper"))]
        candidates += [(f"real, {s} s input", offline_models.whisper_standin("w", s, cache)) for s in (12, 30)]
        for label, lm in candidates:
            extract_audio_features(wav, SR, 8, lm, **kw)  # warm-up
            _, seconds = _clock(lambda lm=lm: extract_audio_features(wav, SR, n_trs, lm, **kw))
            print(f"Whisper {label}: {seconds / n_trs:.3f} s per TR window -> {seconds / n_trs * N_TRS:.0f} s "
                  f"for {N_TRS} TRs")


def bench_text(words, n_words):
    kw = dict(context_tokens=100, mode="strided", run=ExtractionRun(cache=False, progress=False))
    for label, lm in [("random GPT-2 stand-in", models.standin("gpt2", "gpt2")),
                      ("real SmolLM2-135M", offline_models.smollm2_standin("gpt2"))]:
        _, seconds = _clock(lambda lm=lm: extract_text_features(words[:n_words], lm, **kw))
        print(f"{label}: {1000 * seconds / n_words:.1f} ms per word (strided, context 100, every layer) -> "
              f"{seconds / n_words * len(words):.0f} s for {len(words)} words")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=800, help="words timed for the text models")
    parser.add_argument("--trs", type=int, default=32, help="TR windows timed for Whisper")
    args = parser.parse_args()
    words = generate_story(N_TRS * 1.5 + 0.75, np.random.default_rng(0))
    bench_speech(words)
    bench_whisper(args.trs)
    bench_text(words["word"].tolist(), args.words)


if __name__ == "__main__":
    main()
