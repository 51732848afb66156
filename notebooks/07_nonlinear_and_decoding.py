# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python (encoding-kit)
#     language: python
#     name: encoding-kit
# ---

# %% [markdown]
# # 07 - Nonlinear encoders and decoding
#
# On the real data (the course files and the real checkpoints) this notebook takes about 1 min on a 2-core laptop
# CPU: feature extraction and ridge fits, as `encoding_kit/profiles.py` estimates them from
# `benchmarks/bench_real_models.py`; its networks add a few minutes (3 subjects). `make run PROFILE=laptop` runs a
# lighter set (see the README).
#
# Does a nonlinear model beat ridge? An MLP and a time-resolved encoder (a GRU reads the delayed TR features as a
# sequence over lags; soft attention over lags per ROI) are trained on exactly the ridge's folds, with in-fold PCA
# and early stopping on an inner gapped block. Then the other direction: decoding stimulus features from the brain
# and identifying which held-out 15 s segment was heard.

# %% tags=["parameters"]
DATA_DIR = None
QUICK = False
MAX_TRS = None           # None: the whole story; an int: only the first n TRs
SUBJECTS = 3             # the networks train on every target at once: 3 subjects take about 2 min on a laptop
#                          CPU, all 25 about 15 min (None: all subjects)
AUDIO_MODEL = "openai/whisper-base"
AUDIO_LAYER = 2
PCA = 32
MAX_EPOCHS = 200

# %%
import pandas as pd

import utils

if QUICK:  # a smoke test: first 400 TRs (10 min of story), fewer subjects and settings
    MAX_TRS = MAX_TRS or 400
    SUBJECTS, MAX_EPOCHS = SUBJECTS or 3, 60
story = utils.load_story(DATA_DIR, subjects=SUBJECTS, max_trs=MAX_TRS)
out = utils.results_dir("07_nonlinear_and_decoding")
X = utils.audio_layers(story, AUDIO_MODEL, layers=[AUDIO_LAYER])[AUDIO_LAYER]
print(story.describe())

# %% [markdown]
# ## Ridge vs MLP vs lag-attention encoder (same folds, same in-fold PCA)

# %%
attention = utils.LagAttentionFitter(n_lags=4, hidden=32, max_epochs=MAX_EPOCHS)
models = {"ridge": utils.evaluate_encoding(X, story.fmri, pca=PCA),
          "mlp": utils.evaluate_encoding(X, story.fmri, pca=PCA, fitter=utils.MLPFitter(max_epochs=MAX_EPOCHS)),
          "lag-attention": utils.evaluate_encoding(X, story.fmri, pca=PCA, fitter=attention)}
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
