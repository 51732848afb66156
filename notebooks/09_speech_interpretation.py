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
# # 09 - Interpreting a speech model: time-resolved encoder, phoneme selectivity, layer alignment
#
# On the real data (the course files and the real checkpoints) this notebook takes about 2 min in
# `make run` on a 2-core CPU with native bf16 (about 2 min in float32, on a CPU without it such as
# most laptops; about 1 min with `--quick`, 1 min in float32), as `encoding_kit/run/profiles.py`
# estimates it: feature extraction and ridge fits from `benchmarks/bench_real_models.py` (2026-12-05),
# networks and fine-tuning measured on the full-size demo (the real story's size); a notebook reuses
# what an earlier one extracted or fitted. `make run PROFILE=laptop` runs a lighter set (see the README).
#
# Three analyses in the spirit of the Whisper-ECoG study, on fMRI:
#
# 1. **Time-resolved encoder.** Instead of one pooled vector per TR, each TR keeps a sequence of sub-TR Whisper
#    encoder frames. A bidirectional LSTM reads the frames of the four delayed TRs (1.5-7.5 s before the end of the
#    predicted TR), soft attention over time picks frames for each ROI group, and a linear readout predicts each
#    ROI. It is trained on the ridge's outer folds with early stopping on an inner gapped block, and compared with
#    ridge on the same frames. Where does each ROI group attend, and which words and phonemes sit there?
# 2. **Phoneme selectivity.** An encoding model of per-TR phoneme-class features (CMU dictionary); each class's
#    unique held-out variance tells which class a ROI follows; the best-predicted ROIs get a table of dominant class
#    and ROI group. On the demo, planted phoneme-class drivers are the truth to recover.
# 3. **Layer alignment.** Every Whisper encoder and decoder layer; is the peak in the middle layers, and how sure
#    is the peak layer (bootstrap over subjects)?
#
# Cost (measured 2026-12-05 on the 2-core development machine while other jobs kept its load average at 11-14, so
# an idle machine is faster): on the full demo, the sub-TR frames take 5.1 min to extract once (cached by content,
# 17 s to reload), the three models of section 1 1.9 min, the attention tables 10 s, the phoneme selectivity 12-20 s,
# the layer profile 8.2 min with cold caches and `LAYER_INPUT = "window"` (in `make run` notebook 03 has already
# extracted and fitted these layers with the default `"shared_padding"`, and they are reused). `QUICK` on a 3-subject,
# 200-TR demo with cold caches: 84 s in all (section 1 38 s, section 2 8 s, section 3 28 s).

# %% tags=["parameters"]
DATA_DIR = None
QUICK = False
MAX_TRS = None           # None: the whole story; an int: only the first n TRs
SUBJECTS = None          # None: all; the networks fit the subjects' mean response (one model per ROI, every
#                          subject scored), so more subjects cost almost nothing
AUDIO_MODEL = "openai/whisper-base"
AUDIO_LAYER = 2          # encoder layer of the frames read by the time-resolved encoder
FRAMES_PER_TR = 5        # sub-TR frames per TR (0.3 s each at TR 1.5 s)
WINDOW_TRS = 2           # each TR's window (the earlier TR is context for the encoder frames)
PCA = 64                 # in-fold PCA of the ridge features
FRAME_PCA = 16           # in-fold PCA of each frame for the network
HIDDEN = 16              # LSTM size per direction
MAX_EPOCHS = 60
LAYER_PCA = 128          # in-fold PCA of each layer in the layer profile (as in 03)
LAYER_INPUT = "shared_padding"  # what Whisper's encoder reads in the layer profile: as in 03 (whose cached features
#                                and fits are then reused), "padded" (exact) or "window" (alone, a tenth of the cost)
PHONEME_WEIGHTING = "duration"  # "duration": seconds of each class per TR; "count": phones per TR
N_BOOT = 1000

# %%
import pandas as pd

import utils

if QUICK:  # a smoke test: first 400 TRs (10 min of story), fewer subjects and epochs
    MAX_TRS = MAX_TRS or 400
    SUBJECTS, MAX_EPOCHS, N_BOOT, LAYER_INPUT = SUBJECTS or 5, 15, 200, "window"
story = utils.load_story(DATA_DIR, subjects=SUBJECTS, max_trs=MAX_TRS)
out = utils.results_dir("09_speech_interpretation")
print(story.describe())

# %% [markdown]
# ## 1. Time-resolved encoder vs ridge (same frames, same folds)
# Each TR's window (ending at the end of the TR) goes through Whisper's encoder; the encoder frames (20 ms) inside
# the TR are averaged into `FRAMES_PER_TR` bins. The delays stack the frames of TRs t-1..t-4 into one sequence.
# Ridge sees the same sequence flattened (in-fold PCA), or averaged per TR (the usual pooled features).
# All three models fit the subjects' mean response on the training TRs and are scored on every subject.

# %%
frames = utils.frame_sequences(story, AUDIO_MODEL, AUDIO_LAYER, frames_per_tr=FRAMES_PER_TR, window_trs=WINDOW_TRS)
results, fitter, comparison = utils.compare_time_resolved(frames, story, pca=PCA, frame_pca=FRAME_PCA, hidden=HIDDEN,
                                                          max_epochs=MAX_EPOCHS)
comparison.to_csv(out / "ridge_vs_time_resolved.csv", index=False)
print("per fold, the last epoch at which some ROI still improved (early stopping per ROI):", fitter.epochs_)
comparison.pivot(index="scope", columns="model", values="mean_r").round(4)

# %% [markdown]
# **On the full demo** (eSpeak-spoken story, 25 subjects x 2,249 TRs, Whisper tiny.en stand-in, measured 2026-12-05
# with these defaults), mean r per group (ridge on the frames / ridge on their mean / time-resolved): early auditory
# 0.509 / 0.531 / 0.503, auditory association 0.376 / 0.413 / 0.347, language 0.102 / 0.152 / 0.062, all ROIs
# 0.038 / 0.045 / 0.033. The time-resolved encoder comes close to ridge in the auditory ROIs but does not beat it:
# the demo's auditory responses are linear in the sound energy, and ridge has one weight per delay and frame. The
# network used all 60 epochs in every fold (its auditory ROIs were still improving).

# %% [markdown]
# ## Where inside the window does each ROI group attend?
# One attention head per ROI group. Heads whose ROIs the network cannot predict (mean r < 0.02) still move their
# attention when they fit noise; they are the dashed reference, and a group's **shift** from it is what its
# response adds. The hemodynamic response peaks about 5 s after a sound, so a driven group should attend to frames
# about 4-6 s before the end of the TR.

# %%
profile = utils.attention_profile_table(fitter, results["time-resolved"])
profile.to_csv(out / "attention_profile.csv", index=False)
utils.plot_attention_profile(profile, out=out / "attention_profile.png")
utils.attention_peaks(profile).round(3)

# %% [markdown]
# **On the full demo**: both auditory heads put almost no weight on the most recent TR (1.5-3 s before the TR end:
# 0.004-0.014 per frame against 0.05 for uniform attention) and spread it over 3-7.5 s; the attention-weighted
# centre is 5.26 s (early auditory) and 5.29 s (auditory association) against 4.53 s for the reference heads,
# where the HRF puts a sound's response. The largest single shift is at the oldest frame (7.35 s), the edge of
# what the delays cover.

# %% [markdown]
# ## Which words and phonemes sit at the attention peaks?
# In every held-out TR, each head's most attended frame is a 0.3 s stretch of audio. The words overlapping it and
# the phoneme classes filling it (phones spread evenly over each aligned word, CMU dictionary) are compared with
# all frames of the held-out windows: **enrichment** > 1 means a class is over-represented at the peaks.

# %%
events = utils.attention_peak_events(fitter, results["time-resolved"], utils.phone_table(story.words))
events.to_csv(out / "attention_peak_events.csv", index=False)
utils.enrichment_table(events)

# %% [markdown]
# **On the full demo**: the auditory heads' peak frames hold less speech than frames in general (40 % and 50 % of
# their time is inside a phone, against 64 % over all frames): they attend to pauses as much as to words, as a
# response to sound energy should (a silent stretch predicts a low response). No phoneme class is enriched beyond
# 0.84-1.09 in early auditory; the words at the peaks are the story's most frequent ones ("the", "was"). The demo
# plants no timing-specific phonetic response in these groups; on real data, this table is where one would show up.

# %% [markdown]
# ## 2. Phoneme selectivity
# Phoneme-class features per TR (vowels, stops, fricatives, affricates, nasals, approximants), one ridge model of
# all classes and one without each class: a class's unique variance is the held-out R^2 lost without it. Counts of
# every class grow with the speech rate, so most variance is shared and the unique parts are small; the dominant
# class is the one with the largest unique part.

# %%
X_phonemes, classes = utils.phoneme_class_features(story.words, story.n_trs, weighting=PHONEME_WEIGHTING)
partition = utils.class_unique_variance(X_phonemes, classes, story.fmri)
selectivity = utils.selectivity_table(partition)
selectivity.to_csv(out / "phoneme_selectivity.csv", index=False)
top = utils.top_quartile_table(selectivity)
top.to_csv(out / "top_quartile_dominant_class.csv", index=False)
utils.plot_preference(utils.dominant_class_map(selectivity, classes), classes, mask=selectivity["name"].isin(top["name"]),
                      title="Dominant phoneme class (top quartile of r; others grey)", out=out / "dominant_class.png")
top.head(20).round(4)

# %% [markdown]
# The best-predicted quarter of the ROIs: how often each class dominates in each ROI group.

# %%
utils.dominant_class_counts(top)

# %% [markdown]
# **On the full demo**: 90 ROIs form the top quartile but only 39 reach r > 0.05, so its lower part holds noise
# ROIs whose "dominant class" is noise (small `dominant_unique` and `margin`). All 10 early auditory ROIs are
# vowel-dominated (unique R^2 0.026-0.043, margins 0.006-0.018: the vowel seconds follow the sound energy most
# closely), and the planted areas stand out with unique R^2 0.07-0.12 and margins 0.04-0.11.

# %% [markdown]
# ### Recovery of the planted phoneme classes (demo only)
# The demo plants phoneme-class drivers in a few auditory ROIs; the dominant class should be the planted one.

# %%
planted = utils.phoneme_rois(story.truth) if story.truth is not None else {}
if planted:
    recovery, summary = utils.planted_recovery(selectivity, planted)
    recovery.to_csv(out / "planted_phoneme_recovery.csv", index=False)
    print(f"{summary['n_correct']} of {summary['n_planted']} planted ROIs recovered (accuracy {summary['accuracy']:.2f}, "
          f"chance {summary['chance']:.2f}); unique variance of the planted class {summary['unique_planted_mean']:.4f} "
          f"there vs {summary['unique_elsewhere_mean']:.4f} in the other ROIs")
    display(recovery.round(4))  # noqa: F821 - IPython
else:
    print("No planted phoneme drivers in these data (course data, or a demo made before they were added).")

# %% [markdown]
# **On the full demo**: 8 of 8 planted ROIs recovered (52: fricatives, PFcm: nasals, PSL: stops, STV: vowels, both
# hemispheres; chance 1/6), every planted class ranked first in its ROI; unique R^2 of the planted class 0.102 there
# against 0.0008 for the same classes in every other ROI. The planted driver is the seconds of a class beyond what
# the amount of speech predicts, so it is recovered by the duration-weighted features; it lives in the
# alignment's word times (eSpeak's own, with ~1 % of rows blanked and interpolated), which the features share.

# %% [markdown]
# ## 3. Layer alignment across Whisper's encoder and decoder
# Every layer of both (the decoder reads each window's words while cross-attending to its audio), the same ridge
# as notebook 03 (its cached results are reused). Scores per subject over all ROIs and over the auditory ROIs;
# the peak layer's interval comes from resampling subjects; "middle layers best" is answered by the middle third of
# the layers against each outer third, paired over subjects.

# %%
sweeps, scores = [], []
layers = dict(window_trs=WINDOW_TRS, whisper_input=LAYER_INPUT)
decoder = utils.decoder_layers(story, AUDIO_MODEL, **layers)  # its pass stores the encoder's features too
for label, feats in {"whisper-encoder": utils.audio_layers(story, AUDIO_MODEL, **layers),
                     "whisper-decoder": decoder}.items():
    table, layer_results = utils.layer_sweep(feats, story, label, pca=LAYER_PCA)
    sweeps.append(table)
    scores += [utils.layer_scores(layer_results, label),
               utils.layer_scores(layer_results, label, utils.group_mask("early_auditory,auditory_association"),
                                  "auditory ROIs")]
scores = pd.concat(scores, ignore_index=True)
scores.to_csv(out / "layer_alignment_scores.csv", index=False)
pd.concat(sweeps).to_csv(out / "layer_subject_scores.csv", index=False)
utils.plot_layer_curves(utils.summarize_layers(pd.concat(sweeps)), out=out / "layer_profile.png", side_by_side=True)

# %%
peaks = utils.bootstrap_peak_layer(scores, n_boot=N_BOOT)
middle = utils.middle_layer_test(scores, n_boot=N_BOOT)
peaks.merge(middle, on=["model", "scope"]).to_csv(out / "layer_peak_bootstrap.csv", index=False)
print(utils.answer_text(peaks, middle))
peaks.round(3)

# %% [markdown]
# **On the full demo** (measured 2026-12-05 with `LAYER_INPUT = "window"`; Whisper tiny.en stand-in: 4 encoder and
# 4 decoder layers, hidden states 0-4, so the middle third is layer 2 alone), mean r over all subjects:
#
# * encoder, all ROIs: 0.037-0.039 at every layer, peak at the last layer (4; bootstrap interval 4-4); the middle
#   layer is above the early third (+0.0005 [+0.0002, +0.0008]) and below the late one (-0.0005 [-0.0009, -0.0000]):
#   **no**. Auditory ROIs: 0.446 at layer 0 falling to 0.438 at layer 4 (peak 0, interval 0-0): **no**. The demo's
#   auditory ROIs follow the sound energy, which the lowest encoder layer carries best.
# * decoder, all ROIs: 0.032-0.037, peak at layer 1 (interval 1-2, in the middle third in 22 % of resamples);
#   auditory ROIs: peak at layer 2 (interval 2-2, 99 % of resamples in the middle), 0.378 against 0.354 at layer 0
#   and 0.294 at layer 4; the middle layer beats both outer thirds (+0.013 [+0.012, +0.014] and +0.053 [+0.052,
#   +0.055]): **yes**.
#
# The thirds are compared by their mean r, so a peak in the early third can still leave "middle best" at yes when
# the early third's other layer is much lower (decoder, all ROIs). Differences of 0.001 in r are real here because
# 25 subjects share the same planted signal; on real data the intervals are the number to read.

