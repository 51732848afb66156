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
# # 03 - Multimodal models and text + audio fusion
#
# The setup cell below prints how long this notebook takes on the real data (the course files and the real
# checkpoints), as `encoding_kit/run/profiles.py` estimates it from `benchmarks/bench_real_models.py`; a
# notebook reuses what an earlier one extracted or fitted. `make run PROFILE=laptop` runs a lighter set (see
# the README).
#
# Whisper (encoder and decoder layers) and CLAP (audio branch, and the text branch read like any text model). Then the best text and audio feature sets together: scaled concatenation vs
# banded ridge (one penalty per feature space), and variance partitioning into unique and shared parts.

# %% tags=["parameters"]
DATA_DIR = None
QUICK = False
MAX_TRS = None           # None: the whole story; an int: only the first n TRs
SUBJECTS = None
WHISPER = "openai/whisper-base"
CLAP = "laion/clap-htsat-unfused"
TEXT_MODEL = "bert-base-uncased"
TEXT_LAYER = 4
AUDIO_MODEL = "openai/whisper-base"
WHISPER_INPUT = "shared_padding"  # Whisper reads its window padded to 30 s, the padding's states computed once
#                                   (6x faster, features r >= 0.95 to "padded"); "padded": exact; "window": alone
AUDIO_LAYER = 2
CONTEXT_TOKENS = 100
WINDOW_TRS = 2
PCA = 128                # in-fold PCA of layers wider than this (fitted on training TRs); None: full width
FUSION_PCA = 64          # components per feature space inside each fold (keeps banded ridge fast)
N_ITER = 10              # banded ridge: random-search samples of the space weights (2 spaces: 10 suffice)

# %%
import pandas as pd

import utils

print(utils.run_time_line("03"))

if QUICK:  # a smoke test: first 400 TRs (10 min of story), fewer subjects and settings
    MAX_TRS = MAX_TRS or 400
    SUBJECTS, CONTEXT_TOKENS, N_ITER = SUBJECTS or 5, 32, 5
story = utils.load_story(DATA_DIR, subjects=SUBJECTS, max_trs=MAX_TRS)
ceiling = utils.story_ceiling(story)
out = utils.results_dir("03_multimodal_models")
print(story.describe())

# %% [markdown]
# ## Whisper encoder and decoder, CLAP (audio and text branches)
# Whisper's encoder hears the audio window of each TR (it ends at the end of the TR). Its decoder reads the window's
# transcript - the aligned words whose onsets fall inside the window, lower-case, after Whisper's start tokens - and
# cross-attends to the encoder's output for that audio. A TR's decoder features are the mean over the tokens of its
# own words (a TR without words takes the last token read); no word after the end of the TR is read. The decoder
# pass runs the encoder too and stores its features, so the encoder curve costs nothing more.

# %%
decoder = utils.decoder_layers(story, WHISPER, window_trs=WINDOW_TRS, whisper_input=WHISPER_INPUT)
tables, results = [], {}
for label, feats in {
    "whisper-encoder": utils.audio_layers(story, WHISPER, window_trs=WINDOW_TRS, whisper_input=WHISPER_INPUT),
    "whisper-decoder": decoder,
    "clap-audio": utils.audio_layers(story, CLAP, window_trs=WINDOW_TRS),
    "clap-text": utils.text_layers(story, CLAP, context_tokens=min(CONTEXT_TOKENS, 64)),
}.items():
    table, results[label] = utils.layer_sweep(feats, story, label, ceiling, pca=PCA)
    tables.append(table)
pd.concat(tables).to_csv(out / "layer_subject_scores.csv", index=False)  # the runner's best-layer table reads it
summary = utils.summarize_layers(pd.concat(tables))
summary.to_csv(out / "layer_scores.csv", index=False)
fig = utils.plot_layer_curves(summary, out=out / "layer_curves.png")

# %% [markdown]
# Encoder and decoder side by side, layer by layer (layer 0: the encoder's input to its first layer; the decoder's
# token and position embeddings, which hear nothing). Each layer's held-out r is the mean over subjects; the best layer
# per model, chosen on half of the subjects and reported on the other half, is in the runner's summary.

# %%
whisper = summary[summary.model.str.startswith("whisper")].sort_values(["model", "layer"], ascending=[False, True])
fig = utils.plot_layer_curves(whisper, out=out / "whisper_encoder_decoder.png", side_by_side=True,
                              title="Whisper encoder vs decoder: held-out r by layer")
whisper.pivot(index="layer", columns="model", values="mean_r").round(4)

# %% [markdown]
# On the demo, the planted truth says where each should work: the encoder hears the audio, so it should follow the
# ROIs planted with the acoustic driver; the decoder reads the words, so it should follow the language ROIs; neither
# should reach the noise-only ROIs. Neither is expected to be pure: in speech, words and sound go together (a pause
# is silence and has no words), so each can reach the other's ROIs through what the two share. The numbers of this
# run, every layer, all subjects (a description of each layer, not a choice of the best one), and which of the two
# is the better model of each ROI class at its best layer:

# %%
if story.truth is not None:
    layer_checks = pd.concat([utils.planted_check(results[m][layer].r, story.truth, f"{m} layer {layer}")
                              for m in ("whisper-encoder", "whisper-decoder") for layer in results[m]])
    layer_checks.to_csv(out / "whisper_planted_check.csv", index=False)
    display(layer_checks.round(3))
    best_of = layer_checks.assign(model=layer_checks["features"].str.split(" layer").str[0]).groupby("model").max(
        numeric_only=True)
    for rois, expected in (("acoustic_rois", "whisper-encoder"), ("language_rois", "whisper-decoder")):
        winner = best_of[rois].idxmax()
        print(f"{rois.replace('_', ' ')}: encoder r {best_of.loc['whisper-encoder', rois]:.3f}, decoder r "
              f"{best_of.loc['whisper-decoder', rois]:.3f} (best layer each) -> better: {winner} "
              f"({'as expected' if winner == expected else 'NOT as expected: ' + expected})")

# %% [markdown]
# ## Fusion: text + audio
# Concatenation scales each space by 1/sqrt(width) so the wider one does not dominate; banded ridge learns one
# penalty per space and ROI. Variance partitioning: unique(text) = R2(text+audio) - R2(audio), and so on.

# %%
X_text = utils.text_layers(story, TEXT_MODEL, layers=[TEXT_LAYER], context_tokens=CONTEXT_TOKENS)[TEXT_LAYER]
X_audio = utils.audio_layers(story, AUDIO_MODEL, layers=[AUDIO_LAYER], window_trs=WINDOW_TRS,
                           whisper_input=WHISPER_INPUT)[AUDIO_LAYER]
spaces = {"text": X_text, "audio": X_audio}
fusion = {"text": utils.evaluate_encoding(X_text, story.fmri, pca=FUSION_PCA),
          "audio": utils.evaluate_encoding(X_audio, story.fmri, pca=FUSION_PCA),
          "concat": utils.evaluate_fusion(spaces, story.fmri, method="concat", pca=FUSION_PCA),
          "banded": utils.evaluate_fusion(spaces, story.fmri, method="banded", pca=FUSION_PCA, n_iter=N_ITER)}
fusion_table = pd.concat([r.summary(ceiling).assign(model=k) for k, r in fusion.items()])
fusion_table.to_csv(out / "fusion_summary.csv", index=False)
fusion_table[fusion_table.scope.isin(["all", "early_auditory", "auditory_association", "language"])].pivot(
    index="scope", columns="model", values="mean_r").round(4)

# %%
parts = utils.variance_partitioning(spaces, story.fmri, pca=FUSION_PCA, n_iter=N_ITER)
parts.to_csv(out / "variance_partitioning.csv", index=False)
by_roi = parts.groupby("roi")[["unique_text", "unique_audio", "shared"]].mean()
fig = utils.plot_brain(by_roi["unique_text"].to_numpy(), title="Unique variance of text (R2)", cmap="RdBu_r",
                       symmetric=True, out=out / "unique_text.png")

# %%
fig = utils.plot_brain(by_roi["unique_audio"].to_numpy(), title="Unique variance of audio (R2)", cmap="RdBu_r",
                       symmetric=True, out=out / "unique_audio.png")

# %%
utils.top_rois(by_roi["unique_text"].to_numpy(), k=8).merge(
    utils.top_rois(by_roi["unique_audio"].to_numpy(), k=8), on="rank", suffixes=("_text", "_audio"))[
    ["rank", "name_text", "value_text", "name_audio", "value_audio"]].round(4)
