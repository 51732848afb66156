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
# The setup cell below prints how long this notebook takes on the real data (the course files and the real
# checkpoints), as `encoding_kit/run/profiles.py` estimates it from `benchmarks/bench_real_models.py`; a
# notebook reuses what an earlier one extracted or fitted. `make run PROFILE=laptop` runs a lighter set (see
# the README).
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
# 3. **Layer alignment.** Every Whisper encoder and decoder layer; is the peak in the middle layers (chosen on half
#    of the subjects, its r reported on the other half), and how much does the peak move between listeners
#    (bootstrap over subjects)?
#
# The sub-TR frames and the layer features are cached by content: a second run, or a `make run` in which notebook
# 03 has already extracted and fitted the Whisper layers with `LAYER_INPUT = "shared_padding"`, reuses them.

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
BOUNDARY_MIN_SHIFT = 10  # smallest circular shift (held-out TRs) of the attention peaks in the boundary test
N_BOOT = 1000

# %%
import pandas as pd

import utils

print(utils.run_time_line("09"))

if QUICK:  # a smoke test: first 400 TRs (10 min of story), fewer subjects and epochs
    MAX_TRS = MAX_TRS or 400
    SUBJECTS, MAX_EPOCHS, N_BOOT = SUBJECTS or 5, 15, 200  # LAYER_INPUT as in 03: its features and fits are reused
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
# What to look at: does the time-resolved encoder beat the better ridge in any ROI group (printed below the table)?
# On the demo it has no reason to: the planted auditory responses are linear in the sound energy, and ridge has one
# weight per delay and frame. The epochs printed above say whether early stopping ended training or `MAX_EPOCHS` did
# (then the network was still improving).

# %%
print(utils.model_comparison_text(comparison))

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
peaks_by_head = utils.attention_peaks(profile)
print(utils.attention_centre_text(peaks_by_head))
peaks_by_head.round(3)

# %% [markdown]
# What to look at: a driven head should put little weight on the most recent TR (1.5-3 s before the TR end) and
# centre its attention where the HRF puts a sound's response, later than the reference heads do. A largest shift at
# the oldest frame sits at the edge of what the delays cover: longer delays would be the next thing to try.

# %% [markdown]
# ## Which words and phonemes sit at the attention peaks?
# In every held-out TR, each head's most attended frame is a 0.3 s stretch of audio. The words overlapping it and
# the phoneme classes filling it (phones spread evenly over each aligned word, CMU dictionary) are compared with
# all frames of the held-out windows: **enrichment** > 1 means a class is over-represented at the peaks.

# %%
phones = utils.phone_table(story.words)  # on the story's time base, as every TR boundary below
events = utils.attention_peak_events(fitter, results["time-resolved"], phones)
events.to_csv(out / "attention_peak_events.csv", index=False)
utils.enrichment_table(events)

# %% [markdown]
# What to look at: `speech_at_peaks` against `speech_overall` (a head driven by sound energy attends to pauses as
# much as to words: a silent stretch predicts a low response), and enrichments far from 1. The demo plants no
# timing-specific phonetic response in the auditory groups; on real data, this table is where one would show up.
#
# ### Do the peaks fall on word boundaries? (seed 001's claim)
# A count, not a picture: the share of held-out TRs whose peak frame contains a word boundary (a word's onset or
# offset), or a phoneme-class boundary (a phone whose class differs from the previous phone's), against the same
# peaks circularly shifted by at least `BOUNDARY_MIN_SHIFT` held-out TRs (each peak keeps its position before the TR
# end but lands in another TR's audio; `p = (1 + #shifts at least as high) / (1 + #shifts)`, FDR over the rows).
# Frames with speech hold more boundaries than pauses, so the share of peak frames with any speech is printed beside
# it: a head that merely prefers speech raises both. Only the heads the network predicts are tested.

# %%
predicted = (peaks_by_head["mean_r"] >= 0.02) & ~peaks_by_head["group"].str.startswith("reference")
tested = peaks_by_head.loc[predicted, "group"].tolist()
boundaries = utils.boundary_alignment_test(fitter, results["time-resolved"], phones, labels=tested,
                                           min_shift=BOUNDARY_MIN_SHIFT)
boundaries.to_csv(out / "attention_peak_boundaries.csv", index=False)
print(utils.boundary_answer(boundaries))

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
# What to look at: the top quartile is a quarter of the ROIs whatever their r, so its lower part can hold noise ROIs
# whose "dominant class" is noise: read `dominant_unique` and `margin` (dominant minus runner-up) before the class.
# A class that follows the sound energy closely (vowel seconds do) can dominate ROIs that follow the sound alone.

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
# The planted driver is the seconds of a class beyond what the amount of speech predicts, so the duration-weighted
# features (`PHONEME_WEIGHTING = "duration"`) are the ones that can recover it; it lives in the alignment's word
# times (eSpeak's own, a few rows blanked and interpolated), which the features share.

# %% [markdown]
# ## 3. Layer alignment across Whisper's encoder and decoder
# Every layer of both (the decoder reads each window's words while cross-attending to its audio), the same ridge
# as notebook 03 (its cached results are reused). Scores per subject over all ROIs and over the auditory ROIs. The
# peak layer is chosen on half of the subjects and its r is that of the other half (choosing and reporting on the
# same subjects biases r upward); how much the peak moves between listeners comes from resampling subjects; "middle
# layers best" is answered by the middle third of the layers (fixed by depth, not chosen) against each outer third,
# paired over subjects.

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
# How to read it: `peak_r` is the chosen layer's r on the `n_report` subjects that did not choose it
# (`selection_r`, on the choosing half, is biased upward and is not a result). The bootstrap resamples the
# listeners of this one story, who heard the same words and are scored on the same held-out blocks: its interval
# says how much the peak moves between listeners of this story, not where it would be for another story or another
# set of stimuli, which would move it further. The thirds are compared by their mean r, so a peak in the early
# third can still leave "middle best" at yes when the early third's other layers are much lower. With a small
# stand-in model (few layers) the middle third can be a single layer.

