"""Audio-feature extraction: where the time goes, from one run.

On the first ``--trs`` TRs of the demo story (2-TR windows, every layer, the
offline stand-ins the notebooks use):

1. seconds per TR of each audio family (wav2vec2, WavLM, HuBERT, Whisper,
   CLAP), scaled linearly to the whole story (every TR costs the same);
2. CLAP's log-mel input: ``ClapFeatureExtractor`` (a numpy STFT frame by
   frame) against the kit's batched torch version :func:`clap_log_mel`, on
   the same windows: time of each, the ratio, and the largest difference in
   dB (the model's input, so it must be equal); then the whole CLAP
   extraction again with the extractor's log-mel put back, for the saving
   per story.

A warm-up extraction runs first, so the first family timed does not carry
torch's start-up.

    python benchmarks/bench_audio_features.py [--data-dir DIR] [--trs 240]
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction

import numpy as np

import encoding_kit.features.families.clap as clap_family  # noqa: E402
from encoding_kit.data.story import load_story
from encoding_kit.data.timebase import (
    TR,
    audio_window_bounds,  # noqa: E402
)
from encoding_kit.features.audio import extract_audio_features, windows_batch  # noqa: E402
from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.families.clap import clap_log_mel  # noqa: E402
from encoding_kit.features.models import standin
from encoding_kit.run.runner import ensure_data

FAMILIES = ("wav2vec2", "wavlm", "hubert", "whisper", "clap")
WINDOW_TRS = 2


def time_family(story, family, n_trs):
    """Seconds per TR of one stand-in family's extraction (every layer)."""
    lm = standin(family, family)
    wav = story.wav[: int((n_trs + 1) * TR * story.sr)]
    start = time.perf_counter()
    extract_audio_features(wav, story.sr, n_trs, lm, window_trs=WINDOW_TRS,
                           run=ExtractionRun(cache=False, progress=False))
    return (time.perf_counter() - start) / n_trs


def clap_windows(story, n_trs, extractor):
    """The 48 kHz windows CLAP receives for the first ``n_trs`` TRs, array (n_trs, n_samples)."""
    from scipy.signal import resample_poly

    starts, stops = audio_window_bounds(n_trs, story.sr, TR, WINDOW_TRS, 0.0)
    ratio = Fraction(extractor.sampling_rate, story.sr)
    batch = windows_batch(story.wav, story.sr, starts, stops)
    return resample_poly(batch, ratio.numerator, ratio.denominator, axis=1).astype(np.float32)


def extractor_log_mel(batch, extractor):
    """CLAP's log-mel input by its own feature extractor (what the kit did before :func:`clap_log_mel`)."""
    return extractor(list(batch), sampling_rate=extractor.sampling_rate, return_tensors="pt",
                     truncation="rand_trunc", padding="repeatpad").input_features


def compare_clap_mel(story, n_trs, batch_size=8):
    extractor = standin("clap", "clap").processor.feature_extractor
    windows = clap_windows(story, n_trs, extractor)
    t_ext = t_torch = 0.0
    diff = diff_audible = 0.0
    for b0 in range(0, n_trs, batch_size):
        batch = windows[b0:b0 + batch_size]
        start = time.perf_counter()
        ref = extractor_log_mel(batch, extractor).numpy()
        t_ext += time.perf_counter() - start
        start = time.perf_counter()
        ours = clap_log_mel(batch, extractor).numpy()
        t_torch += time.perf_counter() - start
        diff = max(diff, float(np.abs(ours - ref).max()))
        diff_audible = max(diff_audible, float(np.abs(ours - ref)[ref > -60].max(initial=0.0)))
    return t_ext, t_torch, diff, diff_audible


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--trs", type=int, default=240)
    args = parser.parse_args()
    folder, _ = ensure_data(args.data_dir)
    story = load_story(folder)
    n = min(args.trs, story.n_trs)
    print(f"story: {story.n_trs} TRs; timed on the first {n} TRs, {WINDOW_TRS}-TR windows, every layer\n")

    time_family(story, "wav2vec2", 8)  # warm-up
    print("1. extraction, offline stand-ins")
    print(f"{'family':10s} {'ms / TR':>8s} {'whole story (s)':>16s}")
    for family in FAMILIES:
        per_tr = time_family(story, family, n)
        print(f"{family:10s} {1000 * per_tr:8.1f} {per_tr * story.n_trs:16.0f}")

    t_ext, t_torch, diff, diff_audible = compare_clap_mel(story, n)
    print(f"\n2. CLAP log-mel input on {n} windows")
    print(f"ClapFeatureExtractor (numpy, frame by frame): {t_ext:6.2f} s -> {t_ext / n * story.n_trs:5.0f} s per story")
    print(f"clap_log_mel (torch, whole batch):            {t_torch:6.2f} s -> "
          f"{t_torch / n * story.n_trs:5.0f} s per story")
    print(f"ratio: {t_ext / t_torch:.1f}x; largest difference {diff_audible:.1e} dB where the power is above "
          f"-60 dB, {diff:.1e} dB anywhere (near-silent bins, at the -100 dB floor)")

    kit = clap_family.clap_log_mel
    clap_family.clap_log_mel = extractor_log_mel
    try:
        before = time_family(story, "clap", n)
    finally:
        clap_family.clap_log_mel = kit
    now = time_family(story, "clap", n)
    print(f"whole CLAP extraction: {before * story.n_trs:.0f} s per story with the extractor's log-mel, "
          f"{now * story.n_trs:.0f} s with clap_log_mel ({(before - now) * story.n_trs:.0f} s saved)")


if __name__ == "__main__":
    main()
