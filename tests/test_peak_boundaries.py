"""Attention peaks on word / phoneme-class boundaries against circularly shifted peaks: power on planted peaks,
calibration on peaks that ignore the words, clear messages for bad arguments."""

import numpy as np
import pandas as pd
import pytest

from encoding_kit.analysis.peak_boundaries import boundary_alignment_test, boundary_answer, boundary_times
from encoding_kit.data.timebase import TIME_BASE_ATTR, TimeBase
from encoding_kit.encoding.results import EncodingResult
from encoding_kit.encoding.time_resolved import TimeResolvedFitter
from encoding_kit.features.audio_frames import frame_times

TB = TimeBase(1.5, 0.0)
DELAYS, FRAMES, N_TRS = (1, 2), 5, 300


def story_phones(rng):
    """One short word (two phones of different classes, 0.12 s) at a random place in every TR."""
    onsets = (np.arange(N_TRS) + rng.uniform(0.02, 0.9, N_TRS)) * TB.tr
    rows = []
    for i, t in enumerate(onsets):
        rows += [(i, "sa", "S", "fricatives", t, t + 0.06), (i, "sa", "AA", "vowels", t + 0.06, t + 0.12)]
    phones = pd.DataFrame(rows, columns=["word_index", "word", "phone", "phone_class", "start", "end"])
    phones.attrs[TIME_BASE_ATTR] = TB
    return phones, onsets


def fitter_with_peaks(chosen, test_trs):
    """A fitter whose held-out attention peaks at column ``chosen[i]`` (oldest frame first) in held-out TR i."""
    fitter = TimeResolvedFitter(frame_times(DELAYS, FRAMES, tr=TB.tr), target_groups=["a"])
    attention = np.full((len(test_trs), len(fitter.times), 1), 0.01)
    attention[np.arange(len(test_trs)), chosen, 0] = 1.0
    fitter.attention_folds_ = [attention.mean(0).T]
    fitter.test_attention_ = list(attention)
    result = EncodingResult(r=np.zeros((1, 1)), r_folds=np.zeros((1, 1, 1)), r2=np.zeros((1, 1)),
                            alphas=np.zeros((1, 1, 1)), subjects=[0], roi_names=["x"], test_trs=test_trs)
    return fitter, result


def planted_peaks(onsets, test_trs, fitter):
    """For each held-out TR t: the frame of TR t-1 that holds TR t-1's word onset."""
    times = fitter.sorted_times()
    centres = TB.tr_ends(test_trs)[:, None] - times[None, :]
    width = TB.tr / FRAMES
    word = onsets[test_trs - 1]
    return np.argmax((word[:, None] >= centres - width / 2) & (word[:, None] < centres + width / 2), axis=1)


def test_boundaries_of_words_and_of_phone_classes():
    phones, onsets = story_phones(np.random.default_rng(0))
    np.testing.assert_allclose(boundary_times(phones.iloc[:4], "word"), np.sort(np.r_[onsets[:2], onsets[:2] + 0.12]))
    np.testing.assert_allclose(boundary_times(phones.iloc[:4], "phone_class"),
                               np.sort(np.r_[onsets[:2], onsets[:2] + 0.06]))


def test_planted_peaks_on_word_onsets_are_found():
    phones, onsets = story_phones(np.random.default_rng(1))
    test_trs = np.arange(5, N_TRS)
    fitter, result = fitter_with_peaks(np.zeros(len(test_trs), int), test_trs)
    fitter, result = fitter_with_peaks(planted_peaks(onsets, test_trs, fitter), test_trs)
    table = boundary_alignment_test(fitter, result, phones).set_index("boundary")
    assert table.loc["word", "observed"] == pytest.approx(1.0)
    assert table.loc["word", "null_mean"] < 0.5 and table.loc["word", "p"] < 0.01
    assert table.loc["phone_class", "p"] < 0.01
    assert "more often on boundaries than shifted peaks: yes" in boundary_answer(table.reset_index())


def test_peaks_that_ignore_the_words_are_rarely_called_aligned():
    rejections = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        phones, _ = story_phones(rng)
        test_trs = np.arange(5, N_TRS)
        fitter, result = fitter_with_peaks(rng.integers(0, len(DELAYS) * FRAMES, len(test_trs)), test_trs)
        table = boundary_alignment_test(fitter, result, phones, kinds=["word"])
        rejections += int(table["p"].iloc[0] < 0.05)
    assert rejections <= 3, rejections


def test_bad_arguments_name_the_argument():
    phones, onsets = story_phones(np.random.default_rng(2))
    test_trs = np.arange(5, 25)
    fitter, result = fitter_with_peaks(np.zeros(len(test_trs), int), test_trs)
    with pytest.raises(ValueError, match="min_shift=15 needs at least 30 held-out TRs"):
        boundary_alignment_test(fitter, result, phones, min_shift=15)
    with pytest.raises(ValueError, match="kinds must be a non-empty subset"):
        boundary_alignment_test(fitter, result, phones, kinds=["syllable"])
    with pytest.raises(ValueError, match="kind must be one of"):
        boundary_times(phones, "syllable")
