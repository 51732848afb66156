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
# # 08 - Brain-tuned language models
#
# The setup cell below prints how long this notebook takes on the real data (the course files and the real
# checkpoints), as `encoding_kit/run/profiles.py` estimates it from `benchmarks/bench_real_models.py`; a
# notebook reuses what an earlier one extracted or fitted. `make run PROFILE=laptop` runs a lighter set (see
# the README).
#
# Does a text model fine-tuned on the listeners' brain data predict *held-out* brain activity better than the
# pretrained model? The BrainAligner study fine-tuned BERT-large so that its representations absorb the brain's
# response to the same text, and found that they did not: the pretrained baseline scored the best voxel-mean r
# (0.197) against 0.194 (BrainLM-compressed brain input), 0.171 (the 10,000 voxels with the highest explainable
# variance) and 0.171 (the 10,000 voxels best predicted by a BERT ridge), and the masked-LM mask rate (0.30-0.90)
# changed nothing. This notebook runs that experiment on the course data.
#
# **Two ways to tune**, each on one outer fold's training TRs only (the held-out block's text and brain data never
# reach the tuning; a gap of 4 TRs on each side, as in the ridge's cross-validation):
# - *BrainAligner*: masked-language-model fine-tuning with the TR's compressed brain state as an extra input (a
#   learned projection added to the hidden states where the tuned layers begin). At test time only text goes in.
# - *Direct* (Schwartz, Toneva & Wehbe 2019): a head predicts the TR's compressed brain state from the mean of the
#   last layer's token states; the masked-LM loss is kept as a regulariser.
#
# **Three compressions of the brain state**, fitted on the training TRs: the ROIs with the highest noise ceiling
# (`ceiling`), the ROIs a ridge of the pretrained features predicts best inside the training TRs, tested with
# circular shifts and FDR (`ridge`), and a PCA of all ROIs (`pca`, in place of BrainLM). The brain state of TR t is
# the mean response at TRs t+1..t+4 (the hemodynamic lag). The model is tuned on the mean of the tuning subjects
# and scored on every subject.
#
# **Scored exactly like the baseline**: the tuned model's features (text only, the same layer, windows and pooling
# as the pretrained model's) go through the same per-ROI ridge, scored on the block whose training TRs tuned it.
# Features of a model tuned on fold k's training TRs are valid only on block k, so each tuned fold costs one
# fine-tuning run; `FOLDS` says which blocks are used (the pretrained model is scored on the same ones).
#
# **Cheap runs, so that there can be many**: the tuning windows are `TUNE_CONTEXT` tokens (the features keep
# `CONTEXT_TOKENS`), each epoch draws a seeded fraction `SUBSAMPLE` of the training windows, and `PATIENCE` > 0 stops
# early on an inner block at the end of the training TRs (never the held-out block).
# `benchmarks/bench_brain_tuning.py` prints what each of these costs in held-out r against one expensive run.
#
# MiniLM (all-MiniLM-L6-v2, real weights) is a sentence-transformers encoder without a masked-LM head: the kit
# trains a new head tied to its input embeddings (`mlm_head="tied"`); `mlm_head="pretrained"` refuses a model
# without its own head.

# %% tags=["parameters"]
DATA_DIR = None
QUICK = False
MAX_TRS = None           # None: the whole story; an int: only the first n TRs
SUBJECTS = None          # None: all subjects
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
FOLDS = [0, 1, 2, 3, 4]  # outer folds (of 5) tuned and scored (a run: one seed tuned on the training TRs of one fold)
SEEDS = [0, 1, 2]        # seeds of the headline comparison (each method and both controls)
SWEEP_SEEDS = [0]        # seeds of the other compressions and of the mask-rate sweep
LAYER = None             # hidden-state layer scored (None: the last)
HEADLINE = {"brainaligner": "pca", "direct": "ceiling"}  # each method with its default compression
CONTROLS = ["text_only", "shuffled_brain"]
MIN_SHIFT = None         # smallest circular shift (TRs) of the shuffled-brain control (None: from the data)
COMPRESSIONS = ["ceiling", "ridge", "pca"]   # "brainlm" only where its weights can be loaded
N_STATE = 16             # size of the compressed brain state (ROIs or components)
TUNE_SUBJECTS = None     # subjects whose mean response tunes the model (None: all); every subject is scored
EPOCHS = 1               # passes over the fold's training TRs
TUNE_LAYERS = 1          # top layers trained; the others and the embeddings stay frozen
CONTEXT_TOKENS = 32      # text window per TR of the features, tokens
TUNE_CONTEXT = 16        # text window per TR of the tuning examples, tokens (None: CONTEXT_TOKENS)
SUBSAMPLE = 0.5          # fraction of the fold's training windows drawn per epoch
PATIENCE = 0             # early stopping on an inner block of the training TRs (0: off)
MASK_RATE = 0.3
MASK_RATES = [0.3, 0.6, 0.9]                 # the BrainAligner sweep (its headline compression)
PCA = 64                 # in-fold PCA of the features in the ridge (fitted on training TRs)

# %%
import pandas as pd

import utils

print(utils.run_time_line("08"))

if QUICK:  # a smoke test: first 400 TRs, 5 subjects, 1 seed x 2 folds, 16-token windows, a state of 8, 2 mask rates
    MAX_TRS = MAX_TRS or 400
    SUBJECTS, CONTEXT_TOKENS, N_STATE, MASK_RATES = SUBJECTS or 5, 16, 8, [0.3, 0.9]
    TUNE_CONTEXT = min(TUNE_CONTEXT or CONTEXT_TOKENS, CONTEXT_TOKENS)
    FOLDS, SEEDS, COMPRESSIONS = [0, 2], SEEDS[:1], []  # training runs long enough to shift at 200 TRs
story = utils.load_story(DATA_DIR, subjects=SUBJECTS, max_trs=MAX_TRS)
out = utils.results_dir("08_brain_tuned_models")
config = utils.TuningConfig(epochs=EPOCHS, tune_layers=TUNE_LAYERS, context_tokens=CONTEXT_TOKENS, mask_rate=MASK_RATE,
                            tune_context=TUNE_CONTEXT, subsample=SUBSAMPLE, patience=PATIENCE)
study = utils.BrainTuningStudy(story, MODEL, folds=FOLDS, layer=LAYER, n_state=N_STATE, tune_subjects=TUNE_SUBJECTS,
                               config=config, pca=PCA, min_shift=MIN_SHIFT)
print(story.describe())
print(f"layer {study.layer}; tuned on the mean of {len(study.tune_subjects)} subjects; folds {study.folds}; "
      f"headline seeds {SEEDS}, other runs seeds {SWEEP_SEEDS}")

# %% [markdown]
# ## The runs: each method, its two controls and the pretrained model
# One run tunes a fresh copy of the model with one seed on one outer fold's training TRs and scores it on that
# fold's held-out block. Beside each method run the two controls with the same fold, seed, windows, epochs,
# compression and head: *text-only* (the brain term off: masked-LM loss only for `direct`, a brain input of zeros
# for BrainAligner) and *shuffled brain* (the training TRs' brain states circularly shifted inside each training run
# by at least the shortest shift at which their autocorrelation has fallen below 0.1, computed from each fold's
# training TRs and printed below; `MIN_SHIFT` may ask for more, never less: same autocorrelation, no alignment with
# the text). The pretrained model is scored on
# the same blocks. Every run's scores are cached: a re-run reuses them.

# %%
def conditions(method, compression, seeds, **kwargs):
    """The method and each control, same folds and seeds: a list of tidy run tables."""
    return [study.runs(method, compression, seeds=seeds, control=control, **kwargs) for control in [None, *CONTROLS]]


parts = [study.baseline_runs()]
for method, compression in HEADLINE.items():
    parts += conditions(method, compression, SEEDS)
headline = [f"{method}/{compression}" for method, compression in HEADLINE.items()]
runs = pd.concat(parts, ignore_index=True)
runs.to_csv(out / "runs.csv", index=False)
for method, compression in HEADLINE.items():
    print(f"shuffled brain, {method}/{compression}: shortest shift the training data allow, per fold:",
          {k: study.data_min_shift(compression, k) for k in study.folds}, "TRs")
runs.groupby(["model", "scope"])["mean_r"].agg(["count", "mean"]).round(4)

# %% [markdown]
# ## The study's table: baseline vs each method and each control
# As in the BrainAligner study: mean and median r over ROIs (means over runs and subjects), with each model's change
# from the pretrained model and its 95 % interval over folds, seeds and subjects (`effect_interval`: a bootstrap of
# folds, of seeds inside folds and of subjects; it covers this story's listeners and parts, not a new story). Then
# the same per subject. Look at whether the controls move as much as the methods do.

# %%
table = utils.model_table(runs)
table.to_csv(out / "study_table.csv", index=False)
table.round(4)

# %%
per_subject = pd.concat({"mean_r": utils.subject_means(runs), "median_r": utils.subject_means(runs, measure="median_r")},
                        axis=1)
per_subject.to_csv(out / "subject_scores.csv")
per_subject["mean_r"].round(4)

# %% [markdown]
# ## The verdict: did the brain data help?
# Each headline method against text-only tuning, shuffled brain and the pretrained model: the mean paired difference
# (same fold, seed and subject) with its 95 % interval; "helped" when the whole interval is above 0, "worse" when it
# is below, else "no difference". A method helped only if it beats both controls. The sentences below are computed
# from the table, for all ROIs and (on the demo) for the planted language and noise-only ROIs.

# %%
verdicts = pd.concat([utils.tuning_verdict(runs, model) for model in headline], ignore_index=True)
verdicts.to_csv(out / "verdicts.csv", index=False)
for scope in verdicts["scope"].unique():
    print(utils.tuning_verdict_text(verdicts, scope))
verdicts.round(4)

# %% [markdown]
# ## The planted truth and the literature
# In the demo, topic drivers of the text drive the language ROIs and the other ROIs carry noise only: tuning that
# works should beat both controls in the language ROIs and do nothing in the noise-only ROIs. Seed 003 (the
# BrainAligner study, BERT-large, voxel-mean r) found the pretrained model best: 0.197 against 0.194 (BrainLM-compressed
# input), 0.171 (the 10,000 voxels of highest explainable variance) and 0.171 (the 10,000 voxels best predicted by a
# BERT ridge). Both sentences below are computed from this run's verdicts.

# %%
print(utils.planted_sentence(verdicts))
print(utils.literature_sentence(verdicts))

# %% [markdown]
# ## The other compressions (one seed)
# Each method with each compression and its controls, over `SWEEP_SEEDS` and the same folds: the same verdicts,
# wider intervals (fewer runs).

# %%
others = [(m, c) for m in HEADLINE for c in COMPRESSIONS if c != HEADLINE[m]]
parts = [runs[runs["model"] == "pretrained"]]
for method, compression in others:
    parts += conditions(method, compression, SWEEP_SEEDS)
other_runs = pd.concat(parts, ignore_index=True)
other_runs.to_csv(out / "compression_runs.csv", index=False)
if others:
    other_verdicts = pd.concat([utils.tuning_verdict(other_runs, f"{m}/{c}") for m, c in others], ignore_index=True)
    other_verdicts.to_csv(out / "compression_verdicts.csv", index=False)
    print(utils.tuning_verdict_text(other_verdicts))
utils.model_table(other_runs).round(4)

# %% [markdown]
# ## Mask-rate sweep (BrainAligner, its headline compression)
# The change from the pretrained model at each mask rate, with its 95 % interval (`SWEEP_SEEDS` x the folds).

# %%
compression = HEADLINE["brainaligner"]
sweep = pd.concat([runs[runs["model"] == "pretrained"]]
                  + [study.runs("brainaligner", compression, seeds=SWEEP_SEEDS, mask_rate=rate,
                                label=f"brainaligner/{compression} mask {rate}") for rate in MASK_RATES],
                  ignore_index=True)
sweep_table = utils.model_table(sweep)
sweep_table.insert(1, "mask_rate", [None] + list(MASK_RATES))
sweep_table.to_csv(out / "mask_rate_sweep.csv", index=False)
sweep_table.round(4)

# %% [markdown]
# ## Where on the cortex did tuning change r?
# The headline method with the highest mean r against the pretrained model, per ROI (its runs' mean r, subject by
# subject, against the pretrained model's on the same folds); ROIs where the paired test across subjects survives
# FDR are listed. Subjects of one story: this map does not generalise to a new story.

# %%
best = table[table["model"].isin(headline)].sort_values("mean_r")["model"].iloc[-1]
diff = utils.difference_map(study.mean_r(best), study.mean_r("pretrained"))
fig = utils.plot_brain(diff["difference"], cmap="RdBu_r", symmetric=True,
                       title=f"{best} - pretrained: held-out r per ROI", out=out / "difference_map.png")
print(f"{int(diff['significant'].sum())} ROIs differ at FDR q < 0.05:",
      ", ".join(utils.roi_names()[i] for i in diff["significant"].nonzero()[0]) or "none")

# %% [markdown]
# ## The leak check: tuning on all TRs
# The easy mistake: tune on every TR of the story, the held-out blocks included, then score on those blocks. The
# tuned model has then seen the held-out brain responses. Same method, compression, settings and seed as the honest
# runs, and the same for both controls: only the tuning TRs differ. Compare the leak's gain for the method with its
# gain for the controls (the controls' brain data carry no aligned held-out response, or none at all).

# %%
method, compression = "direct", HEADLINE["direct"]
leaks = {}
for control in [None, *CONTROLS]:
    honest = f"{method}/{compression}" + (f" {control}" if control else "")
    leaks[honest] = study.runs(method, compression, seeds=SWEEP_SEEDS, control=control, leak=True)
leak_runs = pd.concat([runs, *leaks.values()], ignore_index=True)
leak = utils.leak_contrast(leak_runs, {honest: rows["model"].iloc[0] for honest, rows in leaks.items()})
leak.to_csv(out / "leak_check.csv", index=False)
leak.round(4)
