# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python (encoding-kit)
#     language: python
#     name: encoding-kit
# ---

# %% [markdown]
# # 05 - Window and pooling sweeps
#
# The setup cell below prints how long this notebook takes on the real data (the course files and the real
# checkpoints), as `encoding_kit/run/profiles.py` estimates it from `benchmarks/bench_real_models.py`; a
# notebook reuses what an earlier one extracted or fitted. `make run PROFILE=laptop` runs a lighter set (see
# the README).
#
# How much does each choice matter? Text context window, word pooling (last token / mean of the word's tokens),
# TR pooling (mean, last, max, causal Lanczos; plus the published, non-causal Lanczos for comparison) and audio window
# length, each as a curve with across-subject error bars.
#
# The text sweeps use a causal model (GPT-2) read in strided windows: every word still gets at least the asked
# context, and a long context costs about as much as a short one. A bidirectional model (BERT) needs one forward
# pass per word (exact mode), so a 500-token sweep with it takes tens of minutes on a laptop CPU; set
# `TEXT_MODEL = "bert-base-uncased"` to run it anyway (contexts beyond its 512 positions are dropped).

# %% tags=["parameters"]
DATA_DIR = None
QUICK = False
MAX_TRS = None           # None: the whole story; an int: only the first n TRs
SUBJECTS = None
TEXT_MODEL = "gpt2"
TEXT_LAYER = 4
AUDIO_MODEL = "openai/whisper-base"
WHISPER_INPUT = "shared_padding"  # Whisper reads its window padded to 30 s, the padding's states computed once
#                                   (6x faster, features r >= 0.95 to "padded"); "padded": exact; "window": alone
AUDIO_LAYER = 2
CONTEXTS = [10, 50, 100, 200, 500, 800]
AUDIO_WINDOWS = [1, 2, 4, 8]
PCA = 128                # in-fold PCA of layers wider than this (fitted on training TRs); None: full width

# %%
import pandas as pd

import utils

print(utils.run_time_line("05"))

if QUICK:  # a smoke test: first 400 TRs (10 min of story), fewer subjects and settings
    MAX_TRS = MAX_TRS or 400
    SUBJECTS, CONTEXTS, AUDIO_WINDOWS = SUBJECTS or 5, [8, 32], [1, 2]
story = utils.load_story(DATA_DIR, subjects=SUBJECTS, max_trs=MAX_TRS)
out = utils.results_dir("05_window_pooling_sweeps")
RUN = utils.ExtractionRun(store_all_layers=False)  # one layer per setting: the layers above it are not run
lm = utils.load_model(TEXT_MODEL, allow_standin=True)
mode = "strided" if utils.is_causal(lm.model) else "exact"
CONTEXTS = utils.usable_contexts(lm, CONTEXTS, mode)
print(story.describe(), f"| {mode} mode, contexts within the model's limit: {CONTEXTS}")


# %% [markdown]
# ## Text: context window x word pooling

# %%
rows = [utils.sweep_point(utils.text_layers(story, lm, layers=[TEXT_LAYER], context_tokens=c, word_pooling=p,
                                           mode=mode, run=RUN)[TEXT_LAYER], story, PCA, context_tokens=c, word_pooling=p)
        for c in CONTEXTS for p in ("last", "mean")]
fig = utils.plot_sweep(pd.concat(rows), "context_tokens", "word_pooling", "Text context window",
                       out / "text_context.png")

# %% [markdown]
# ## Text: TR pooling (mean, last, max, Lanczos)
#
# Every pooling the kit offers is causal: the features of TR k use only words of TRs <= k. `lanczos` is the
# 3-lobe Lanczos low-pass of Huth et al. (2016) moved back so that its 9-s support ends at the end of the TR (its
# centre is 4.5 s before the TR's end, a delay on top of the FIR delays). `lanczos_noncausal` is the kernel as
# published, centred on the TR: it is **not causal** (it mixes in words up to 3 TRs later, across the CV gap), is
# shown only to see what reading ahead changes, and is never a candidate for the best pooling.

# %%
pools = ["mean", "last", "max", "lanczos", "lanczos_noncausal"]
rows = pd.concat([utils.sweep_point(utils.text_layers(story, lm, layers=[TEXT_LAYER], context_tokens=CONTEXTS[-1],
                                                     tr_pooling=m, mode=mode, run=RUN)[TEXT_LAYER], story, PCA,
                                    tr_pooling=m)
                  for m in pools])
causal = rows[rows["tr_pooling"].isin(utils.POOL_METHODS)].groupby("tr_pooling")["mean_r"].mean()
print(f"best causal TR pooling: {causal.idxmax()} (mean r {causal.max():.4f}); lanczos_noncausal is not a candidate")
fig = utils.plot_sweep(rows, "tr_pooling", title="Pooling words into TRs (lanczos_noncausal reads ahead)",
                       out=out / "tr_pooling.png")

# %% [markdown]
# ## Audio window (TRs of audio ending at each TR)

# %%
# BEGIN EXERCISE audio_windows | task 4 | expected: rows, one utils.sweep_point table per (window_trs, frame_pooling) setting | hint: extract AUDIO_MODEL's layer with utils.audio_layers(..., window_trs=w, frame_pooling=fp) for every window length of AUDIO_WINDOWS and score it with utils.sweep_point
settings = [(w, "mean") for w in AUDIO_WINDOWS] + [(AUDIO_WINDOWS[-1], "tr")]
rows = [utils.sweep_point(utils.audio_layers(story, AUDIO_MODEL, layers=[AUDIO_LAYER], window_trs=w, frame_pooling=fp,
                                            whisper_input=WHISPER_INPUT, run=RUN)[AUDIO_LAYER],
                          story, PCA, window_trs=w, frame_pooling=fp)
        for w, fp in settings]
# END EXERCISE
fig = utils.plot_sweep(pd.concat(rows), "window_trs", "frame_pooling", "Audio window length",
                       out / "audio_window.png")
