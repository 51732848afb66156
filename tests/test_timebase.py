"""The one time base: words and audio windows land where the definition says."""

import numpy as np
import pytest

from encoding_kit.data.timebase import POOL_METHODS, POOLINGS, audio_windows, lanczos_resample, pool_to_trs, word_trs


def test_words_go_to_the_tr_containing_their_onset():
    onsets = [0.0, 1.49, 1.5, 2.99, 3.0, 4.4999]
    assert word_trs(onsets).tolist() == [0, 0, 1, 1, 2, 2]


def test_binary_noise_on_a_boundary_does_not_move_a_word_back():
    # Gentle writes 3.0 as 2.9999999999999996 and similar.
    assert word_trs([2.9999999999999996, 1.4999999999999998]).tolist() == [2, 1]


def test_onset_offset_shifts_time_zero():
    assert word_trs([0.5, 2.1, 3.6], onset_offset=0.6).tolist() == [-1, 1, 2]


def test_audio_window_ends_at_end_of_tr_and_reaches_back():
    sr, tr = 10, 1.5
    wav = np.arange(1, 101, dtype=np.float32)  # 10 s, sample i has value i + 1
    win = audio_windows(wav, sr, n_trs=4, tr=tr, window_trs=2)
    assert win.shape == (4, 30)
    # TR 0 window = [-1.5, 1.5) s: 15 zeros, then samples 0..14.
    assert np.all(win[0, :15] == 0) and win[0, 15:].tolist() == list(range(1, 16))
    # TR 2 window = [1.5, 4.5) s: samples 15..44; its last sample is the last of TR 2.
    assert win[2, 0] == 16 and win[2, -1] == 45


def test_audio_windows_count_from_the_start_not_the_end_of_the_file():
    sr, tr, n_trs = 100, 1.5, 10
    scan = np.random.default_rng(0).standard_normal(int(n_trs * tr * sr)).astype(np.float32)
    longer = np.concatenate([scan, np.ones(75, np.float32)])  # the file is 0.75 s longer than the scan
    assert np.array_equal(audio_windows(scan, sr, n_trs, tr), audio_windows(longer, sr, n_trs, tr))


def test_short_audio_is_zero_padded_with_a_warning():
    with pytest.warns(UserWarning, match="zero-padded"):
        win = audio_windows(np.ones(20, np.float32), 10, n_trs=3, tr=1.0, window_trs=1)
    assert win[1].sum() == 10 and win[2].sum() == 0  # samples 20..29 do not exist


def test_pool_to_trs_methods_and_empty_trs():
    values = np.array([1.0, 3.0, 5.0, 7.0])
    trs = np.array([1, 1, 3, 9])  # TR 9 is outside a 5-TR scan and ignored
    assert pool_to_trs(values, trs, 5, "mean").tolist() == [0, 2, 0, 5, 0]
    assert pool_to_trs(values, trs, 5, "sum").tolist() == [0, 4, 0, 5, 0]
    assert pool_to_trs(values, trs, 5, "max").tolist() == [0, 3, 0, 5, 0]
    assert pool_to_trs(values, trs, 5, "last").tolist() == [0, 3, 0, 5, 0]


def test_pool_to_trs_2d_and_negative_values_max():
    values = np.array([[-1.0, 2.0], [-3.0, 4.0]])
    out = pool_to_trs(values, np.array([0, 0]), 2, "max")
    assert out.tolist() == [[-1.0, 4.0], [0.0, 0.0]]


@pytest.mark.parametrize("method, kernel_centre", [("lanczos", -3.75), ("lanczos_noncausal", 0.0)])
def test_lanczos_reproduces_a_slow_signal(method, kernel_centre):
    # kernel_centre: seconds from the TR's middle (the causal kernel ends at the TR's end, 3 TRs after its centre)
    times = np.arange(0, 60, 0.25)
    values = np.sin(2 * np.pi * times / 30.0)
    out = pool_to_trs(values, word_trs(times), 40, method, times=times)
    centres = 1.5 * np.arange(40) + 0.75 + kernel_centre
    expected = np.sin(2 * np.pi * centres / 30.0)
    # A Lanczos kernel sums the samples it covers (like a rate): compare shapes.
    assert np.corrcoef(out[4:-4], expected[4:-4])[0, 1] > 0.99


def test_bad_pool_inputs():
    with pytest.raises(ValueError, match="method"):
        pool_to_trs([1.0], [0], 2, "median")
    with pytest.raises(ValueError, match="rows"):
        pool_to_trs([1.0, 2.0], [0], 2)
    with pytest.raises(ValueError, match="times"):
        pool_to_trs([1.0], [0], 2, "lanczos")


def _words_with_boundary_onsets(n_trs=24, seed=0):
    """Word onsets (s) over ``n_trs`` TRs, some exactly on TR boundaries (one with Gentle's binary noise)."""
    rng = np.random.default_rng(seed)
    onsets = np.sort(np.concatenate([rng.uniform(0, n_trs * 1.5, 3 * n_trs), [4.5, 9.0, 2.9999999999999996]]))
    return onsets, rng.standard_normal((len(onsets), 3))


@pytest.mark.parametrize("method", list(POOLINGS))
def test_pooling_is_causal_exactly_when_the_registry_says_so(method):
    # Change one word at a time: a causal method must leave every earlier TR bit-for-bit unchanged. Parametrised
    # over the registry, so a new method is covered (and a non-causal one must say so in the registry).
    n_trs = 24
    times, values = _words_with_boundary_onsets(n_trs)
    trs = word_trs(times)
    base = pool_to_trs(values, trs, n_trs, method, times=times)
    leaks = []
    for i in range(len(times)):
        changed = values.copy()
        changed[i] += 5.0
        out = pool_to_trs(changed, trs, n_trs, method, times=times)
        if not np.array_equal(out[:trs[i]], base[:trs[i]]):
            leaks.append((i, trs[i]))
    if POOLINGS[method].causal:
        assert leaks == [], f"{method}: a word changed the features of earlier TRs (word, its TR): {leaks[:5]}"
        assert method in POOL_METHODS
    else:
        assert leaks and "NON-CAUSAL" in POOLINGS[method].description and method not in POOL_METHODS


def test_causal_lanczos_is_the_published_kernel_delayed_to_end_at_the_tr():
    times, values = _words_with_boundary_onsets(40, seed=1)
    trs = word_trs(times)
    causal = pool_to_trs(values, trs, 40, "lanczos", times=times)
    centred = pool_to_trs(values, trs, 40, "lanczos_noncausal", times=times)
    # The causal kernel of TR k is the centred kernel of TR k - 2.5 (centred 4.5 s before TR k's end); only a
    # word exactly on the far edge (weight sinc(3) ~ 1e-17 there, 0 here) may differ.
    np.testing.assert_allclose(causal[3:], lanczos_resample(values, times, 1.5 * np.arange(3, 40) - 3.0, 1.5),
                               atol=1e-6)
    assert not np.allclose(causal, centred)


def test_a_story_carries_one_time_base_that_the_tr_column_and_the_pooling_share(small_demo):
    """A scan that starts 3 s after the audio: the words' tr column, the pooled features and the cut all move by it,
    and pooling with another time base than the column's is refused instead of silently misplacing words."""
    from encoding_kit.data.story import load_story
    from encoding_kit.data.timebase import TimeBase
    from encoding_kit.features.text import text_features_to_trs

    plain = load_story(small_demo, subjects=2)
    shifted = load_story(small_demo, subjects=2, onset_offset=3.0, max_trs=150)
    assert plain.timebase == TimeBase(1.5, 0.0) and shifted.timebase == TimeBase(1.5, 3.0)
    onsets = shifted.words["start"].to_numpy()
    assert np.array_equal(shifted.words["tr"], np.floor((onsets - 3.0) / 1.5 + 1e-9).astype(int))
    assert onsets.max() < 3.0 + 150 * 1.5 and len(shifted.wav) == round((3.0 + 150 * 1.5) * shifted.sr)

    values = {0: np.arange(len(shifted.words), dtype=float)[:, None]}
    pooled = text_features_to_trs(values, shifted.words, shifted.n_trs)[0]
    expected = pool_to_trs(values[0], shifted.words["tr"].to_numpy(), shifted.n_trs, onset_offset=3.0)
    assert np.array_equal(pooled, expected)
    with pytest.raises(ValueError, match="onset_offset=3.0 s, but pooling was asked for tr=1.5 s, onset_offset=0.0"):
        text_features_to_trs(values, shifted.words, shifted.n_trs, timebase=TimeBase(1.5, 0.0))
    with pytest.raises(ValueError, match="tr must be a positive number"):
        TimeBase(0.0)
