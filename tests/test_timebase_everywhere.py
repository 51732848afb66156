"""Pitfall 27: with a scan that starts 0.75 s into the audio, every word-to-TR assignment of the kit equals the
words' own ``tr`` column (phone tables, phoneme-class features, attention peak frames, Whisper decoder spans,
baseline audio features, frame sequences)."""

import numpy as np
import pandas as pd
import pytest

from encoding_kit.analysis import speech_interpretation
from encoding_kit.analysis.attention_tables import attention_peak_events, peak_frame_intervals
from encoding_kit.analysis.peak_boundaries import boundary_alignment_test
from encoding_kit.data.story import load_story
from encoding_kit.data.timebase import TIME_BASE_ATTR, TimeBase, word_trs
from encoding_kit.encoding.results import EncodingResult
from encoding_kit.encoding.time_resolved import TimeResolvedFitter
from encoding_kit.features.audio_frames import frame_times
from encoding_kit.features.baseline import audio_features, baseline_features
from encoding_kit.features.phonemes import phone_table, phoneme_class_features
from encoding_kit.features.whisper_decoder import whisper_decoder_features, window_word_spans

OFFSET = 0.75
DELAYS, FRAMES = (1, 2, 3, 4), 5


@pytest.fixture(scope="module")
def late(small_demo):
    return load_story(small_demo, subjects=2, onset_offset=OFFSET)


def on_time_zero(words):
    """The same words with the scan start moved to audio time 0 (every time shifted by -OFFSET)."""
    shifted = words.copy()
    shifted[["start", "end"]] -= OFFSET
    shifted.attrs[TIME_BASE_ATTR] = TimeBase(1.5, 0.0)
    return shifted


def test_the_offset_moves_many_words(late):
    """Otherwise the tests below could not tell the time bases apart."""
    assert late.timebase == TimeBase(1.5, OFFSET)
    assert (word_trs(late.words["start"]) != late.words["tr"]).mean() > 0.3


def test_phone_table_uses_the_words_time_base(late):
    phones = phone_table(late.words)
    first = phones.groupby("word_index").first()
    np.testing.assert_array_equal(first["tr"].to_numpy(), late.words["tr"].to_numpy()[first.index])
    assert (phones["tr"].to_numpy() == late.timebase.word_trs(phones["start"])).all()
    assert phones.attrs[TIME_BASE_ATTR] == late.timebase
    with pytest.raises(ValueError, match="onset_offset=0.75 s, but pooling was asked for .* onset_offset=0.0"):
        phone_table(late.words, timebase=TimeBase(1.5, 0.0))


@pytest.mark.parametrize("weighting", ["count", "duration"])
def test_phoneme_class_features_use_the_words_time_base(late, weighting):
    got, names = phoneme_class_features(late.words, late.n_trs, weighting=weighting)
    expected, _ = phoneme_class_features(on_time_zero(late.words), late.n_trs, weighting=weighting)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    if weighting == "count":  # every phone counted in the TR of its onset, which is its word's for the first phone
        phones = phone_table(late.words)
        inside = phones["tr"].between(0, late.n_trs - 1)
        np.testing.assert_array_equal(got.sum(1), np.bincount(phones["tr"][inside], minlength=late.n_trs))
    with pytest.raises(ValueError, match="onset_offset=0.75"):
        phoneme_class_features(late.words, late.n_trs, timebase=TimeBase(1.5, 0.0))


def hand_set_attention(late, test_trs):
    """A fitter whose held-out attention peaks at a different frame (and so delay) in each held-out TR."""
    times = frame_times(DELAYS, FRAMES, tr=late.timebase.tr)
    fitter = TimeResolvedFitter(times, target_groups=["a"])
    chosen = np.arange(len(test_trs)) % len(times)
    attention = np.full((len(test_trs), len(times), 1), 0.01)
    attention[np.arange(len(test_trs)), chosen, 0] = 1.0
    fitter.attention_folds_ = [attention.mean(0).T]
    fitter.test_attention_ = list(attention)
    result = EncodingResult(r=np.zeros((1, 1)), r_folds=np.zeros((1, 1, 1)), r2=np.zeros((1, 1)),
                            alphas=np.zeros((1, 1, 1)), subjects=[0], roi_names=["x"], test_trs=test_trs)
    return fitter, result, fitter.sorted_times()[chosen]  # attention columns: oldest frame first


def test_attention_peak_frames_sit_in_the_trs_the_words_column_names(late):
    test_trs = np.arange(10, late.n_trs)
    fitter, result, peak_s = hand_set_attention(late, test_trs)
    peaks = peak_frame_intervals(fitter, result, "a", late.timebase)
    np.testing.assert_allclose(peaks["peak_s"], peak_s)
    delay = np.floor(peak_s / late.timebase.tr).astype(int)  # the frame lies in TR t - delay
    onsets, word_tr = late.words["start"].to_numpy(), late.words["tr"].to_numpy()
    checked = 0
    for t, d, start, end in zip(peaks["tr"], delay, peaks["start"], peaks["end"]):
        inside = (onsets >= start) & (onsets < end)
        assert (word_tr[inside] == t - d).all(), (t, d, start, end, word_tr[inside])
        checked += inside.sum()
    assert checked > 100
    phones = phone_table(late.words)
    events = attention_peak_events(fitter, result, phones)
    assert set(events["group"]) == {"a"}
    with pytest.raises(ValueError, match="onset_offset=0.75"):
        attention_peak_events(fitter, result, phones, onset_offset=0.0)
    moved = boundary_alignment_test(fitter, result, phones, min_shift=5)
    same = boundary_alignment_test(fitter, result, phone_table(on_time_zero(late.words)), min_shift=5)
    pd.testing.assert_frame_equal(moved, same, atol=1e-3)  # a boundary exactly on a frame edge may round either way


def test_whisper_decoder_spans_follow_the_time_base(late):
    spans = window_word_spans(late.words["start"], late.n_trs, 2, **late.timebase.as_kwargs())
    for k, (inside, last) in enumerate(spans):
        np.testing.assert_array_equal(np.sort(inside[last]), np.flatnonzero(late.words["tr"].to_numpy() == k))
    # the decoder features read the words' own time base (checked before any model is loaded)
    with pytest.raises(ValueError, match="onset_offset=0.75 s, but pooling was asked for .* onset_offset=0.0"):
        whisper_decoder_features(late.wav, late.sr, late.words, late.n_trs, "openai/whisper-base",
                                 timebase=TimeBase(1.5, 0.0))


def test_baseline_audio_and_frame_sequences_follow_the_story(late, monkeypatch):
    got = baseline_features(late.words, late.wav, late.sr, late.n_trs)
    expected = audio_features(late.wav, late.sr, late.n_trs, timebase=TimeBase(1.5, OFFSET))
    np.testing.assert_array_equal(got["envelope"], expected["envelope"])
    seen = {}
    monkeypatch.setattr(speech_interpretation, "extract_frame_sequences",
                        lambda *args, **kwargs: seen.update(kwargs) or {0: None})
    monkeypatch.setattr(speech_interpretation, "load_model", lambda *args, **kwargs: None)
    speech_interpretation.frame_sequences(late, "any", 0)
    assert seen.get("timebase") == TimeBase(1.5, OFFSET)
