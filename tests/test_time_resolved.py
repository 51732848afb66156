"""Time-resolved encoder: the attention finds a planted frame; training never sees the test block; peak tables."""

import numpy as np
import pandas as pd
import pytest

from encoding_kit.analysis.attention_tables import (
    attention_peak_events,
    attention_peaks,
    attention_profile_table,
    peak_frame_intervals,
)
from encoding_kit.data.timebase import TimeBase
from encoding_kit.encoding.evaluate import evaluate_encoding
from encoding_kit.encoding.results import EncodingResult
from encoding_kit.encoding.time_resolved import TimeResolvedFitter
from encoding_kit.features.audio_frames import bin_last_tr, frame_times

DELAYS, FRAMES, WIDTH = (1, 2), 4, 6
PLANTED = (1, 1)  # delay index 1 (2 TRs back), frame 1 of that TR


def planted_case(n=500, seed=0):
    """Random frames (n, FRAMES, WIDTH); two targets driven by one feature of one frame 2 TRs back, two noise."""
    rng = np.random.default_rng(seed)
    frames = rng.standard_normal((n, FRAMES, WIDTH)).astype(np.float32)
    delay = DELAYS[PLANTED[0]]
    drive = np.zeros(n)
    drive[delay:] = frames[:-delay, PLANTED[1], 0]
    Y = np.stack([drive + 0.5 * rng.standard_normal(n), -drive + 0.5 * rng.standard_normal(n),
                  rng.standard_normal(n), rng.standard_normal(n)], axis=1)
    return frames.reshape(n, -1), Y


def fit(X, Y, **kwargs):
    fitter = TimeResolvedFitter(frame_times(DELAYS, FRAMES), frame_pca=WIDTH, hidden=8,
                                target_groups=["driven", "driven", "noise", "noise"], **kwargs)
    result = evaluate_encoding(X, Y, delays=DELAYS, fitter=fitter, cache=False, progress=False)
    return fitter, result


def test_frame_times_count_back_from_the_end_of_the_predicted_tr():
    times = frame_times((1, 2), 3, tr=1.5)
    # delay 1 = the TR before: it ends 1.5 s before the predicted TR's end; its 3 frames are 0.5 s wide
    np.testing.assert_allclose(times, [2.75, 2.25, 1.75, 4.25, 3.75, 3.25])


def test_bin_last_tr_averages_only_the_frames_of_the_window_last_tr():
    hidden = np.arange(12, dtype=float).reshape(1, 12, 1)  # a 2-TR window of 12 frames
    np.testing.assert_allclose(bin_last_tr(hidden, 2, 3)[0, :, 0], [6.5, 8.5, 10.5])


@pytest.fixture(scope="module")
def planted_fit():
    X, Y = planted_case()
    return fit(X, Y)


def test_attention_peaks_at_the_planted_frame(planted_fit):
    fitter, result = planted_fit
    expected = frame_times(DELAYS, FRAMES)[PLANTED[0] * FRAMES + PLANTED[1]]
    assert np.nanmean(result.r[0, :2]) > 0.6 and np.abs(result.r[0, 2:]).max() < 0.15
    peaks = attention_peaks(attention_profile_table(fitter, result)).set_index("group")
    assert peaks.loc["driven", "peak_s"] == pytest.approx(expected)
    assert fitter.attention()[0].max() > 0.5  # most of the weight on one frame of 8
    held_out = peak_frame_intervals(fitter, result, "driven", TimeBase())
    assert (held_out["peak_s"] == expected).mean() > 0.6
    # the peak frame of held-out TR t is the planted frame's audio: TR t-2, second quarter
    row = held_out.iloc[0]
    t = row["tr"]
    assert (row["start"], row["end"]) == pytest.approx(((t - 2) * 1.5 + 0.375, (t - 2) * 1.5 + 0.75))
    # a scan that starts 0.75 s into the audio moves every TR, and so every peak frame, by 0.75 s
    late = peak_frame_intervals(fitter, result, "driven", TimeBase(1.5, 0.75)).iloc[0]
    assert (late["start"], late["end"]) == pytest.approx((row["start"] + 0.75, row["end"] + 0.75))
    with pytest.raises(TypeError, match="timebase must be the story's TimeBase"):
        peak_frame_intervals(fitter, result, "driven", 1.5)


def test_each_target_keeps_its_own_best_epoch():
    """A noise target whose validation loss rises from epoch 1 neither stops nor drags a target still improving."""
    import torch

    from encoding_kit.encoding.time_resolved import _BestPerTarget

    class Epoch(torch.nn.Module):  # predicts the epoch number for every target; attention = epoch too
        def __init__(self):
            super().__init__()
            self.epoch = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return self.epoch.expand(len(x), 2).detach().clone()

        def attention(self, x):
            return self.epoch.expand(3, len(x), 2).detach().clone()

    keep, model, X = _BestPerTarget(2, 2, torch.tensor([0, 1])), Epoch(), torch.zeros(4, 1)
    improved = []
    for epoch in range(1, 11):
        model.epoch.data.fill_(epoch)
        driven, noise = 10.0 - epoch if epoch <= 7 else 5.0, float(epoch)  # best at 7 and at 1
        improved.append(keep.update(epoch, torch.tensor([driven, noise]), model, X))
    assert improved == [True] * 7 + [False] * 3 and keep.last_improved == 7
    np.testing.assert_array_equal(keep.pred[0], [7.0, 1.0])
    train, test = keep.attention(model, X, X)
    np.testing.assert_array_equal(train[:, 0], [7.0, 1.0])
    np.testing.assert_array_equal(test[0, 0], [7.0, 1.0])


def test_training_never_sees_the_test_block():
    """Corrupting the features and responses of one held-out block leaves that fold's training unchanged."""
    X, Y = planted_case(n=300)
    fitter, result = fit(X, Y, max_epochs=6)
    block = np.array_split(result.test_trs, 5)[2]
    X_bad, Y_bad = X.copy(), Y.copy()
    X_bad[block] = 50.0 * np.random.default_rng(1).standard_normal((len(block), X.shape[1]))
    Y_bad[block] = -Y_bad[block] * 10
    corrupted, _ = fit(X_bad, Y_bad, max_epochs=6)
    np.testing.assert_allclose(corrupted.attention_folds_[2], fitter.attention_folds_[2], rtol=1e-5)
    assert corrupted.epochs_[2] == fitter.epochs_[2]
    assert not np.allclose(corrupted.attention_folds_[0], fitter.attention_folds_[0])  # other folds train on it


def test_peak_events_name_the_words_and_classes_at_the_peaks():
    """Hand-set attention: head 'a' attends to the first half of each TR (a fricative word), 'b' to the second."""
    times = frame_times((0,), 2, tr=1.0)  # [0.75, 0.25] s before the TR end: [t, t + 0.5) and [t + 0.5, t + 1)
    fitter = TimeResolvedFitter(times, target_groups=["a", "b"])
    test_trs = np.arange(2, 8)
    fitter.attention_folds_ = [np.array([[0.9, 0.1], [0.1, 0.9]])]
    fitter.test_attention_ = [np.array([[0.9, 0.2], [0.1, 0.8]]) for _ in test_trs]
    result = EncodingResult(r=np.zeros((1, 2)), r_folds=np.zeros((1, 1, 2)), r2=np.zeros((1, 2)),
                            alphas=np.zeros((1, 1, 2)), subjects=[0], roi_names=["x", "y"], test_trs=test_trs)
    rows = []
    for t in range(10):  # a fricative word in the first quarter of every TR, a vowel word in the third
        rows += [(2 * t, "see", "S", "fricatives", t, t + 0.25), (2 * t + 1, "ah", "AA", "vowels", t + 0.5, t + 0.75)]
    phones = pd.DataFrame(rows, columns=["word_index", "word", "phone", "phone_class", "start", "end"])
    events = attention_peak_events(fitter, result, phones, tr=1.0).set_index(["group", "phone_class"])
    assert events.loc[("a", "fricatives"), "share_at_peaks"] == pytest.approx(1.0)
    assert events.loc[("a", "fricatives"), "share_overall"] == pytest.approx(0.5)
    assert events.loc[("a", "fricatives"), "enrichment"] == pytest.approx(2.0)
    assert events.loc[("a", "vowels"), "enrichment"] == pytest.approx(0.0)
    assert events.loc[("a", "fricatives"), "top_words"] == "see (6)"
    assert events.loc[("b", "vowels"), "share_at_peaks"] == pytest.approx(1.0)
    assert events.loc[("b", "vowels"), "speech_at_peaks"] == pytest.approx(0.5)
    assert events.loc[("a", "vowels"), "modal_peak_s"] == pytest.approx(0.75)


def test_phone_time_counts_overlapping_words():
    """A long phone that overlaps the next word's phones is still found inside a later interval."""
    from encoding_kit.analysis.attention_tables import _phone_seconds

    phones = pd.DataFrame({"start": [0.0, 0.2, 0.3], "end": [1.0, 0.3, 0.4]})
    seconds, touched = _phone_seconds(phones, pd.DataFrame({"start": [0.5], "end": [0.9]}))
    np.testing.assert_allclose(seconds, [0.4, 0.0, 0.0])
    assert list(touched[0]) == [0, 1, 2][: len(touched[0])] and 0 in touched[0]
