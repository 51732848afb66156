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
# # 04 - All subjects: mean +- std, noise ceilings, significance
#
# The setup cell below prints how long this notebook takes on the real data (the course files and the real
# checkpoints), as `encoding_kit/run/profiles.py` estimates it from `benchmarks/bench_real_models.py`; a
# notebook reuses what an earlier one extracted or fitted. `make run PROFILE=laptop` runs a lighter set (see
# the README).
#
# Every subject is reported (not only the last one). The assignment's number is the mean +- std across subjects of
# the ROI-mean r. Because many ROIs are not driven by the story, it comes with the noise ceiling, r / ceiling, ROI-group
# numbers, per-subject circular-shift tests and a group t-test with FDR.
#
# **The noise ceiling** of a subject and ROI is the estimated r of that subject's data with the stimulus-driven
# signal all subjects share: the held-out r of a perfect model. Two subjects correlate only through that signal, so
# their ISC is `r_sj = rho_s * rho_j` and `ceiling_s = mean_j r_sj / sqrt(mean ISC of the pairs without s)`; it is
# estimated in each outer fold's block and averaged in Fisher z, like the model's r (`utils.story_ceiling`). ROIs
# without a measurable shared signal (mean pairwise ISC not 3 standard errors above zero) have no ceiling (NaN).
# Normalised r = r / ceiling: 1 is as good as a perfect model. The leave-one-subject-out ISC (each subject against the
# mean of the others) is smaller than the ceiling, because the mean of 24 others still holds noise: dividing by it
# would score a perfect model above 1 (`benchmarks/bench_ceiling.py` prints both on the demo's planted signal).

# %% tags=["parameters"]
DATA_DIR = None
QUICK = False
MAX_TRS = None           # None: the whole story; an int: only the first n TRs
SUBJECTS = None
TEXT_MODEL = "bert-base-uncased"
TEXT_LAYER = 4
AUDIO_MODEL = "openai/whisper-base"
WHISPER_INPUT = "shared_padding"  # Whisper reads its window padded to 30 s, the padding's states computed once
#                                   (6x faster, features r >= 0.95 to "padded"); "padded": exact; "window": alone
AUDIO_LAYER = 2
CONTEXT_TOKENS = 100
PCA = 128                # in-fold PCA of features wider than this (fitted on training TRs); None: full width
N_SHIFTS = 1000

# %%
import numpy as np
import pandas as pd

import utils

print(utils.run_time_line("04"))

if QUICK:  # a smoke test: first 400 TRs (10 min of story), fewer subjects and settings
    MAX_TRS = MAX_TRS or 400
    SUBJECTS, CONTEXT_TOKENS, N_SHIFTS = SUBJECTS or 5, 32, 200
story = utils.load_story(DATA_DIR, subjects=SUBJECTS, max_trs=MAX_TRS)
ceiling = utils.story_ceiling(story)
out = utils.results_dir("04_multi_subject")
print(story.describe())

# %%
features = {
    "text": utils.text_layers(story, TEXT_MODEL, layers=[TEXT_LAYER], context_tokens=CONTEXT_TOKENS)[TEXT_LAYER],
    "audio": utils.audio_layers(story, AUDIO_MODEL, layers=[AUDIO_LAYER], whisper_input=WHISPER_INPUT)[AUDIO_LAYER],
}
results = {k: utils.evaluate_encoding(X, story.fmri, pca=PCA, return_predictions=True) for k, X in features.items()}

# %% [markdown]
# ## Per subject

# %%
rows = []
for name, res in results.items():
    norm = res.normalized(ceiling)
    for s, subject in enumerate(res.subjects):
        rows.append({"features": name, "subject": subject, "mean_r": np.nanmean(res.r[s]),
                     "mean_norm_r": np.nanmean(norm[s]), "max_r": np.nanmax(res.r[s]),
                     "best_roi": res.roi_names[int(np.nanargmax(res.r[s]))]})
per_subject = pd.DataFrame(rows)
per_subject.to_csv(out / "per_subject.csv", index=False)
per_subject.round(3)

# %% [markdown]
# ## The report table (paste into your report)

# %%
report = pd.concat([r.summary(ceiling).assign(features=k) for k, r in results.items()])
report = report[["features", "scope", "n_rois", "mean_r", "std_r", "median_r", "mean_norm_r", "mean_ceiling"]]
report.to_csv(out / "report_table.csv", index=False)
report.round(4)

# %% [markdown]
# ## One model for the group
# Each subject's own model is fitted to that subject's noisy responses, so its weights carry that noise. Fitting one
# model per ROI to the mean of all subjects' training TRs (`train_on="group"`) and scoring it on each subject's
# held-out block averages most of the noise out of the weights; no held-out TR of any subject enters the fit. Where
# the group model predicts a subject better than the subject's own model, the per-subject r was limited by the
# noise in the estimate, not by the features. It is not better everywhere: with the noise averaged out, the CV
# picks less shrinkage, and where the features do not carry an ROI's response the held-out r can fall further
# below zero: compare the two columns of the table above ROI group by ROI group. Report which fit you used.

# %%
group_fits = {k: utils.evaluate_encoding(X, story.fmri, pca=PCA, train_on="group") for k, X in features.items()}
training = pd.concat([res.summary(ceiling).assign(features=k, fit=fit) for fit, fits in
                      (("per subject", results), ("group", group_fits)) for k, res in fits.items()])
training.to_csv(out / "per_subject_vs_group.csv", index=False)
training[training.scope.isin(["all", "early_auditory", "auditory_association", "language"])].pivot_table(
    index=["features", "scope"], columns="fit", values="mean_r").round(4)

# %% [markdown]
# ## Noise ceiling

# %%
fig = utils.plot_brain(np.nanmean(ceiling, 0), title="Noise ceiling: r of a perfect model", cmap="magma",
                       vmin=0, out=out / "noise_ceiling.png")

# %% [markdown]
# ## Significance
# Per subject: the held-out predictions are circularly shifted against the data (`N_SHIFTS` shifts), which keeps
# both series' autocorrelation. Group: one-sided t-test across subjects on Fisher-z r, Benjamini-Hochberg FDR
# over the 360 ROIs.

# %%
sig_rows, shifts = [], {}
for name, res in results.items():
    shift = shifts[name] = utils.prediction_significance(res, story.fmri, n_shifts=N_SHIFTS)
    group = utils.group_significance(res.r)
    sig_rows.append({"features": name, "mean_share_p05_per_subject": float(np.mean(shift["p"] < 0.05)),
                     "mean_share_q05_per_subject": float(np.mean(shift["q"] < 0.05)),
                     "group_significant_rois_fdr05": int(group["significant"].sum())})
    pd.DataFrame({"roi": res.roi_names, "t": group["t"], "p": group["p"], "q": group["q"],
                  "significant": group["significant"]}).to_csv(out / f"group_significance_{name}.csv", index=False)
pd.DataFrame(sig_rows)

# %%
group = utils.group_significance(results["audio"].r)
if group["significant"].any():
    fig = utils.plot_brain(np.nanmean(results["audio"].r, 0), mask=group["significant"], cmap="magma", vmin=0,
                           title="Audio features: mean r, FDR-significant ROIs only", out=out / "audio_significant.png")
else:
    print("No ROI survives FDR at q < .05 with these subjects: nothing to map.")

# %% [markdown]
# On the demo, the noise-only ROIs carry no stimulus signal: their r should be near zero, about 5 % of them flagged
# at p < .05 per subject by chance, and few after FDR at the group level (FDR at q = .05 lets about 5 % of the
# discoveries be false). The planted ROIs should be flagged far more often. The numbers:

# %%
if story.truth is not None:
    driven = story.truth["driven"]
    for name, res in results.items():
        p, group = shifts[name]["p"], utils.group_significance(res.r)
        print(f"{name}: noise-only ROIs mean r {np.nanmean(res.r[:, ~driven]):+.3f} (expected ~0), share p<.05 "
              f"{np.mean(p[:, ~driven] < 0.05):.3f} (expected ~0.05 by chance), group FDR-significant "
              f"{int(group['significant'][~driven].sum())} of {int((~driven).sum())}; planted ROIs share p<.05 "
              f"{np.mean(p[:, driven] < 0.05):.3f}, group FDR-significant {int(group['significant'][driven].sum())} "
              f"of {int(driven.sum())}; noise-only ROIs mean group t {np.nanmean(group['t'][~driven]):+.2f} "
              f"(expected ~0)")

# %% [markdown]
# **Reading it.** Compare each printed number with its expectation. A group t-test assumes that each subject's r has
# mean 0 under the null, and slow drift in the responses breaks that, with either sign: each subject's noise in the
# demo carries three cosines spanning the whole story, and slowly varying features (topics) can follow a drift from
# the training folds into the test fold or be shrunk against it. So the noise-only ROIs' mean group t can sit away
# from 0, and a few noise-only ROIs can pass FDR, without any stimulus signal in them; regressing slow cosines out
# of the responses removes that. That is why responses are usually detrended before encoding. Whether the course files were is not documented with them (the
# Narratives release's AFNI derivatives regress slow trends out, but the files cannot tell which version they come
# from) and the kit does not detrend: look at the slow drift of the responses before trusting a group test of slowly
# varying features. The numbers printed above are this run's own: read them first.
