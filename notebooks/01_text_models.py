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
# # 01 - Text models, every layer
#
# The setup cell below prints how long this notebook takes on the real data (the course files and the real
# checkpoints), as `encoding_kit/run/profiles.py` estimates it from `benchmarks/bench_real_models.py`; a
# notebook reuses what an earlier one extracted or fitted. `make run PROFILE=laptop` runs a lighter set (see
# the README).
#
# Which text model, and which layer, best predicts the brain? Three families: a causal LM with absolute positions
# (GPT-2), a bidirectional masked LM (BERT) and a causal LM with rotary positions (Qwen/Llama-style).
#
# Each word is read with the last `CONTEXT_TOKENS` tokens of the story up to and including it, on the story's own
# tokens (never re-tokenized token strings). Causal models use strided windows (each word still gets at least
# `CONTEXT_TOKENS` of context, at a fraction of the cost of one window per word); BERT sees later words inside a
# shared window, so it uses exact mode.

# %% tags=["parameters"]
DATA_DIR = None
QUICK = False
MAX_TRS = None           # None: the whole story; an int: only the first n TRs
SUBJECTS = None                  # None: all subjects, or an int: the first n
MODELS = ["gpt2", "bert-base-uncased", "Qwen/Qwen2.5-0.5B"]
CONTEXT_TOKENS = 100
LAYER_STEP = 1                   # evaluate every n-th layer
DEEP_LAYER_STEP = 1              # the step of models with more than 13 hidden states (the demo run sets 2)
PCA = 128                # in-fold PCA of layers wider than this (fitted on training TRs); None: full width

# %%
import pandas as pd

import utils

print(utils.run_time_line("01"))

if QUICK:  # a smoke test: first 400 TRs (10 min of story), fewer subjects and settings
    MAX_TRS = MAX_TRS or 400
    SUBJECTS, CONTEXT_TOKENS, LAYER_STEP, DEEP_LAYER_STEP = SUBJECTS or 5, 32, 2, 4
story = utils.load_story(DATA_DIR, subjects=SUBJECTS, max_trs=MAX_TRS)
ceiling = utils.story_ceiling(story)
out = utils.results_dir("01_text_models")
print(story.describe())

# %% [markdown]
# ## What the models read
# Strided mode needs a model shown to be causal: `utils.is_causal` changes a late token of a short random input and
# checks that no earlier hidden state moves (and, when that probe cannot run, accepts only a decoder-only config).
# Any model not shown to be causal, BERT included, is read in exact mode, one window per word.
#
# The words are the alignment's, which carry no punctuation: by default the models read the story as one
# unpunctuated run of words. With the transcript at hand (e.g. `21styear_sentences.csv`), pass
# `transcript="path/to/21styear_sentences.csv"` to `utils.text_layers` to give each word its transcript spelling
# with punctuation and capitals (times and TRs unchanged).

# %% [markdown]
# ## Features and layer sweeps
# For each model: word features of every layer -> mean over the words of each TR -> ridge (delays 1-4 TRs, one
# alpha per ROI, gapped 5-fold CV) for every subject and ROI. Layers wider than `PCA` are reduced to their first
# `PCA` principal components inside each fold (fitted on the training TRs only): ridge cost grows with the width,
# and 25 x 360 targets on a laptop make that the difference between minutes and an hour. Features and encoding
# results are cached under `features/`, so re-running a notebook only recomputes what changed.

# %%
tables, results = [], {}
# BEGIN EXERCISE text_models | task 3 | expected: tables, one layer table per model (layer x subject rows); results[model], {layer: EncodingResult} | hint: for every text model of MODELS (at least 3), extract every layer with utils.text_layers and score them all with utils.layer_sweep (strided mode for causal models)
for model, lm in utils.models_run(MODELS).items():  # names one stand-in serves: one entry, labelled by what ran
    mode = "strided" if utils.is_causal(lm.model) else "exact"
    feats = utils.text_layers(story, lm, context_tokens=CONTEXT_TOKENS, mode=mode)
    table, results[model] = utils.layer_sweep(feats, story, model, ceiling, pca=PCA, every=LAYER_STEP,
                                                deep_every=DEEP_LAYER_STEP)
    tables.append(table)
# END EXERCISE
layers = pd.concat(tables)
layers.to_csv(out / "layer_subject_scores.csv", index=False)

# %% [markdown]
# ## Layer curves
# Mean r over all 360 ROIs, mean +- std across subjects. The x axis is relative depth, so models of different
# depth share one axis.

# %%
summary = utils.summarize_layers(layers)
summary.to_csv(out / "layer_scores.csv", index=False)
fig = utils.plot_layer_curves(summary, out=out / "layer_curves.png")

# %% [markdown]
# ## The best layer, chosen on half of the subjects
# Picking the layer with the highest mean r and reporting that same r biases it upward (the maximum of noisy
# estimates). The layer is chosen on half of the subjects (the 1st, 3rd, 5th, ...) and its scores below are those of
# the other half only (`n_report` subjects); the curves above use every subject and are for looking, not reporting.

# %%
best = utils.best_layers_held_out(layers)
report_rows = utils.split_subjects(range(len(story.fmri)))[1]  # positions of the reporting half
best.round(4)

# %% [markdown]
# ## Where does the best layer of each model predict?
# Mean r over all ROIs hides where the signal is: the ROI-group view shows it (reporting half).

# %%
groups = {m: utils.group_summary(results[m][int(best.set_index("model").loc[m, "layer"])].r[report_rows])
          for m in results}
fig = utils.plot_group_summary(groups, out=out / "group_summary.png", title="Best layer of each text model")
pd.concat([g.assign(model=m) for m, g in groups.items()]).to_csv(out / "group_summary.csv", index=False)

# %% [markdown]
# ## What the demo's truth predicts, checked
# The demo plants its drivers (`encoding_kit/demo/generate.py`): the **language ROIs** (44, 45, 55b, STS, TPOJ, PGi,
# TE1, ...) follow slow topic drivers (the content words of each topic per TR) plus, more weakly, word rate and word
# length; the **acoustic ROIs** (A1, the belts, RI) follow the sound energy of the audio plus, more weakly, the word
# rate; every other ROI carries **noise only**. Text features should predict the language ROIs and not the
# noise-only ROIs. They can also predict the acoustic ROIs, for two reasons the cell checks rather than assumes:
# in speech the sound comes and goes with the words (a pause is silence and has no words, and a TR without words
# has zero text features), so a text feature tracks much of the sound energy; and the acoustic ROIs are planted with
# less noise, so the same share of their ceiling is a larger r. Compare r as a share of each class's noise-free
# ceiling (the r of the planted signal itself on the same folds and subjects), not the raw r.

# %%
if story.truth is not None:
    chosen = {m: results[m][int(best.set_index("model").loc[m, "layer"])] for m in results}
    display(pd.concat([utils.planted_check(chosen[m].r[report_rows], story.truth, m) for m in results]).round(3))
    truth_ceiling = {m: utils.truth_fold_ceiling(story.truth, story.fmri, chosen[m])[report_rows] for m in results}
    reach = utils.text_reach({m: chosen[m].r[report_rows] for m in results}, truth_ceiling, story.truth, story.n_trs)
    reach.to_csv(out / "planted_text_reach.csv", index=False)
    print(utils.text_reach_text(reach))
