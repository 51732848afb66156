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
# # 02 - Audio models, every layer
#
# The setup cell below prints how long this notebook takes on the real data (the course files and the real
# checkpoints), as `encoding_kit/run/profiles.py` estimates it from `benchmarks/bench_real_models.py`; a
# notebook reuses what an earlier one extracted or fitted. `make run PROFILE=laptop` runs a lighter set (see
# the README).
#
# wav2vec2, WavLM and HuBERT hear the `WINDOW_TRS` TRs of audio that *end* at the end of each TR (never later
# audio). Frames of the window are averaged (`FRAME_POOLING="mean"`) or only those inside the TR are kept
# (`"tr"`). Classic acoustic features (envelope, log-mel) are the low-level control.
#
# Offline, these three models are replaced by small random-weight stand-ins (a banner says so). Their feature
# encoders use layer norm with biases and no per-window normalisation, so even with random weights they keep the
# loudness of each window (`tests/test_audio_features.py` decodes the demo's acoustic driver from one stand-in layer):
# on the demo they can follow the planted acoustic signal, through loudness alone, as the envelope and log-mel
# controls do. That says nothing about what the pretrained models hear; real weights are needed for a real answer.

# %% tags=["parameters"]
DATA_DIR = None
QUICK = False
MAX_TRS = None           # None: the whole story; an int: only the first n TRs
SUBJECTS = None
MODELS = ["facebook/wav2vec2-base", "microsoft/wavlm-base-plus", "facebook/hubert-base-ls960"]
WINDOW_TRS = 2
FRAME_POOLING = "mean"
LAYER_STEP = 1
PCA = 128                # in-fold PCA of layers wider than this (fitted on training TRs); None: full width
SPEECH_MODEL = "openai/whisper-tiny"  # demo only: the speech model of the planted-phoneme check (offline: real
SPEECH_INPUT = "window"               # whisper-tiny.en weights); its encoder reads the window alone (see 03)

# %%
import pandas as pd

import utils

print(utils.run_time_line("02"))

if QUICK:  # a smoke test: first 400 TRs (10 min of story), fewer subjects and settings
    MAX_TRS = MAX_TRS or 400
    SUBJECTS, LAYER_STEP = SUBJECTS or 5, 2
    MODELS = MODELS[:1]  # one audio model checks the sweep (the run prints the others as left out)
story = utils.load_story(DATA_DIR, subjects=SUBJECTS, max_trs=MAX_TRS)
ceiling = utils.story_ceiling(story)
out = utils.results_dir("02_audio_models")
print(story.describe())

# %% [markdown]
# ## Layer sweeps

# %%
tables, results = [], {}
# BEGIN EXERCISE audio_models | task 3 | expected: tables, one layer table per model (layer x subject rows); results[model], {layer: EncodingResult} | hint: for every audio model of MODELS (at least 3), extract every layer with utils.audio_layers(story, loaded, window_trs=WINDOW_TRS, frame_pooling=FRAME_POOLING) and score them with utils.layer_sweep
for model, loaded in utils.models_run(MODELS).items():  # labelled by the model that ran
    feats = utils.audio_layers(story, loaded, window_trs=WINDOW_TRS, frame_pooling=FRAME_POOLING)
    table, results[model] = utils.layer_sweep(feats, story, model, ceiling, pca=PCA, every=LAYER_STEP)
    tables.append(table)
# END EXERCISE
acoustic = utils.audio_features(story.wav, story.sr, story.n_trs, timebase=story.timebase)
for name, X in acoustic.items():
    table, results[name] = utils.layer_sweep({0: X}, story, name, ceiling)
    tables.append(table)
layers = pd.concat(tables)
layers.to_csv(out / "layer_subject_scores.csv", index=False)

# %%
summary = utils.summarize_layers(layers)
summary.to_csv(out / "layer_scores.csv", index=False)
fig = utils.plot_layer_curves(summary[~summary.model.isin(acoustic)], out=out / "layer_curves.png")

# %% [markdown]
# ## The best layer, chosen on half of the subjects
# As in 01: each model's layer is chosen on half of the subjects and reported on the other half (`n_report`), so the
# reported r is not biased up by the choice.

# %%
best_table = utils.best_layers_held_out(layers)
report_rows = utils.split_subjects(range(len(story.fmri)))[1]  # positions of the reporting half
best_table.round(4)

# %% [markdown]
# ## Which ROI groups do audio features predict?
# Best layer of each feature set, reporting half of the subjects.

# %%
best = best_table.set_index("model")["layer"]
groups = {m: utils.group_summary(results[m][int(best[m])].r[report_rows]) for m in results}
fig = utils.plot_group_summary(groups, out=out / "group_summary.png", title="Best layer of each audio feature set")

# %%
if story.truth is not None:
    display(pd.concat([utils.planted_check(results[m][int(best[m])].r[report_rows], story.truth, m)
                       for m in results]).round(3))

# %% [markdown]
# ## A phonetic driver that only a speech model recovers (demo)
# The demo's audio is the story spoken by eSpeak NG, and its truth plants phoneme-class drivers in 52, PFcm, PSL
# and STV (both hemispheres), ROIs that carry nothing else: per TR, the seconds of one class of phones (fricatives,
# nasals, stops, vowels; CMU dictionary on the alignment) beyond what the amount of speech predicts. The envelope
# follows how much speech there is, not which sounds; a speech model hears the sounds. Whisper's encoder
# (`SPEECH_MODEL`; offline the real whisper-tiny.en weights) against the acoustic controls in those ROIs, each
# set's layer chosen on the selection half of the subjects (by its r in these ROIs) and reported on the other half.

# %%
if story.truth is not None:
    (speech_label, speech_model), = utils.models_run([SPEECH_MODEL]).items()
    speech = utils.audio_layers(story, speech_model, window_trs=WINDOW_TRS, whisper_input=SPEECH_INPUT)
    _, results[speech_label] = utils.layer_sweep(speech, story, speech_label, ceiling, pca=PCA, every=LAYER_STEP)
    phonemes = utils.phoneme_recovery(results, story.truth, baseline="envelope")
    phonemes.to_csv(out / "planted_phonemes.csv", index=False)
    print(utils.phoneme_recovery_text(phonemes, speech_label, baseline="envelope"))
    display(phonemes.round(3))

# %% [markdown]
# The sentence above is this run's answer. Offline, wav2vec2, WavLM and HuBERT are random-weight stand-ins: where
# Whisper (real weights) separates from them in the phoneme ROIs, what separates them is pretrained weights, not the
# architecture; the envelope follows how much speech there is and should stay low there.
