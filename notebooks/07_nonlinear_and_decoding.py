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
# # 07 - Nonlinear encoders and decoding
#
# The setup cell below prints how long this notebook takes on the real data (the course files and the real
# checkpoints), as `encoding_kit/run/profiles.py` estimates it from `benchmarks/bench_real_models.py`; a
# notebook reuses what an earlier one extracted or fitted. `make run PROFILE=laptop` runs a lighter set (see
# the README).
#
# Does a nonlinear model beat ridge? An MLP and a time-resolved encoder (a GRU reads the delayed TR features as a
# sequence over lags; soft attention over lags per ROI) are trained on exactly the ridge's folds, with in-fold PCA
# and early stopping on an inner gapped block. Then the other direction: decoding stimulus features from the brain
# and identifying which held-out 15 s segment was heard, with the ridge decoder and three deep decoders whose
# hyperparameters optuna chooses inside each training set, tested against other folds' labels.

# %% tags=["parameters"]
DATA_DIR = None
QUICK = False
MAX_TRS = None           # None: the whole story; an int: only the first n TRs
SUBJECTS = 3             # the networks train on every target at once: 3 subjects take about 2 min on a laptop
#                          CPU, all 25 about 15 min (None: all subjects)
AUDIO_MODEL = "openai/whisper-base"
WHISPER_INPUT = "shared_padding"  # Whisper reads its window padded to 30 s, the padding's states computed once
#                                   (6x faster, features r >= 0.95 to "padded"); "padded": exact; "window": alone
AUDIO_LAYER = 2
PCA = 32
MAX_EPOCHS = 200
N_TRIALS = 4             # optuna trials per deep decoder, subject and fold (the fixed search budget)
DECODER_EPOCHS = 30      # most epochs of one deep-decoder training run (early stopping on the inner block)
PERMUTATIONS = 1000      # most orders of the held-out blocks in the permutation test (with 5 folds: all 120 of them)

# %%
import pandas as pd

import utils

print(utils.run_time_line("07"))

if QUICK:  # a smoke test: first 400 TRs (10 min of story), fewer subjects and settings
    MAX_TRS = MAX_TRS or 400
    SUBJECTS, MAX_EPOCHS = min(SUBJECTS or 2, 2), 60
    N_TRIALS, DECODER_EPOCHS = 2, 10
story = utils.load_story(DATA_DIR, subjects=SUBJECTS, max_trs=MAX_TRS)
out = utils.results_dir("07_nonlinear_and_decoding")
X = utils.audio_layers(story, AUDIO_MODEL, layers=[AUDIO_LAYER], whisper_input=WHISPER_INPUT)[AUDIO_LAYER]
print(story.describe())

# %% [markdown]
# ## Ridge vs MLP vs lag-attention encoder (same folds, same in-fold PCA)

# %%
attention = utils.LagAttentionFitter(n_lags=4, hidden=32, max_epochs=MAX_EPOCHS)
# BEGIN EXERCISE nonlinear | task 7 (optional) | expected: models, {name: EncodingResult} for ridge, mlp and lag-attention | hint: utils.evaluate_encoding(X, story.fmri, pca=PCA, fitter=...) with utils.MLPFitter(max_epochs=MAX_EPOCHS) and the attention fitter
models = {"ridge": utils.evaluate_encoding(X, story.fmri, pca=PCA),
          "mlp": utils.evaluate_encoding(X, story.fmri, pca=PCA, fitter=utils.MLPFitter(max_epochs=MAX_EPOCHS)),
          "lag-attention": utils.evaluate_encoding(X, story.fmri, pca=PCA, fitter=attention)}
# END EXERCISE
comparison = pd.concat([r.summary().assign(model=k) for k, r in models.items()])
comparison.to_csv(out / "ridge_vs_nonlinear.csv", index=False)
comparison.pivot(index="scope", columns="model", values="mean_r").round(4)

# %% [markdown]
# ## Which lag drives each ROI group? (attention weights, delays 1-4 TRs = 1.5-6 s)
# Each ROI learns a preference over lags (plus a content term from the GRU). A network that fits noise also moves
# its attention - towards the first and last lag, the least redundant ones - so the ROIs it cannot predict
# (held-out r < 0.02) are the reference, and the **shift** from that reference is what a group's response adds.
# The canonical HRF peaks about 5 s after the stimulus; the features already span a 3 s audio window, so expect
# auditory ROIs to shift towards 3-6 s and away from 1.5 s.

# %%
lag_table = utils.lag_attention_table(attention, models["lag-attention"])
lag_table.to_csv(out / "attention_over_lags.csv", index=False)
weight, shift = (lag_table.pivot(index="group", columns="lag_s", values=v) for v in ("weight", "shift"))
moved = shift[shift.max(axis=1) > 0.05]  # smaller shifts are within what noise fitting gives
print("groups whose attention moved (> 0.05) from the reference, and the lag (s) they moved to:",
      moved.idxmax(axis=1).to_dict() or "none")
weight.add_suffix(" s").join(shift.add_suffix(" s shift")).round(3)

# %% [markdown]
# ## Decoding and identification
# A ridge decoder predicts 20 principal components of the features at TR t from all ROIs at TRs t+1..t+4. Each
# held-out fold is cut into 10-TR (15 s) segments; a segment is identified if its decoded time course matches its
# own true time course best among all segments of that fold.

# %%
decoding = utils.evaluate_decoding(X, story.fmri, n_components=20 if not QUICK else 5)
decoding.to_csv(out / "decoding.csv", index=False)
decoding.groupby("subject")[["r", "top1", "chance_top1", "top10", "chance_top10"]].mean().round(3)

# %% [markdown]
# ## Deep decoders vs the ridge decoder (same folds, nested hyperparameter search, permutation test)
# Three networks read the window of ROI responses at TRs t+1..t+4 (4 TRs x ROIs, the ROIs reduced to 32 principal
# components fitted on the training TRs) and decode the same feature components as the ridge decoder above:
# - **MLP**: the flattened window -> one hidden layer;
# - **transformer** (ViT-style): each TR of the window is a token (its ROI vector embedded linearly), plus a learned
#   positional embedding; a class token or the mean over tokens is read out;
# - **CNN-transformer**: a temporal convolution over the window makes the tokens, then the same transformer.
#
# For every outer fold and subject, optuna (TPE sampler, seed 0, `N_TRIALS` trials) chooses each network's
# hyperparameters (learning rate, weight decay, dropout, width, depth, pooling or kernel) on the **inner** gapped
# split of the outer training set; the held-out block is never passed to the search. The network is then retrained
# on the whole training set for the epochs the best trial stopped at. The ridge rows are the ridge decoder on the
# same folds and targets. Trials and predictions are cached by content: a re-run loads them.
#
# **Permutation test**: the null pairs each fold's decoded block with the true feature time course of *another*
# fold's held-out block, for every order of the blocks (5! orders of 5 folds), and recomputes top-1 accuracy;
# p = #{orders scoring at least the observed one} / #orders, the observed order included, ties in accuracy ordered
# by the mean similarity of the paired segments. Without signal a decoded block is independent of another block's
# truth, and whole blocks keep their own autocorrelation, so p is exact when the folds are alike (same length, same
# kind of story). Rolling the labels circularly inside one short autocorrelated block instead, the former null, gives
# too many false positives (pitfall 26). What to look at: `null_top1`, the accuracy of decoded blocks against the
# other folds' truths, should sit near `chance_top1`; with 5 folds no p can be below 1/5!, and fewer than 4 folds
# give no p-value (NaN). `benchmarks/bench_identification_null.py` prints how often this test rejects without signal
# on these block lengths.

# %%
deep = utils.evaluate_deep_decoding(X, story.fmri, n_components=20 if not QUICK else 5,
                                    search=utils.DeepSearch(n_trials=N_TRIALS, max_epochs=DECODER_EPOCHS))
deep.folds.to_csv(out / "deep_decoders_folds.csv", index=False)  # per fold: scores, chosen hyperparameters, epochs
deep_table = deep.summary(n_permutations=PERMUTATIONS)
deep_table.to_csv(out / "deep_decoders.csv", index=False)
utils.plot_decoder_comparison(deep_table, out / "deep_decoders.png")
deep_table.round(3)
