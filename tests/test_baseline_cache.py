"""The low-level baseline features are cached like the model features: equal to a fresh computation, and keyed
by everything they depend on (a cache hit for other audio, words or time base would serve wrong features)."""

import numpy as np
import pandas as pd
import pytest

from encoding_kit.data.timebase import TimeBase
from encoding_kit.features import baseline
from encoding_kit.features.baseline import audio_features, baseline_features, word_features

SR, N_TRS = 16000, 12


def _wav(seed=0):
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(N_TRS * 1.5 * SR))).astype(np.float32)


def _words(shift=0):
    words = pd.DataFrame({"word": ["the", "old", "man", "walked", "to", "the", "river", "slowly"],
                          "tr": np.array([0, 1, 1, 3, 5, 6, 8, 10]) + shift})
    words.attrs["timebase"] = TimeBase()
    return words


@pytest.fixture
def computed(monkeypatch):
    """Count the computations behind the cache (spies on the two functions that compute)."""
    calls = []
    for name in ("_audio_features", "_word_features"):
        real = getattr(baseline, name)
        monkeypatch.setattr(baseline, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    return calls


def test_a_cached_baseline_equals_a_fresh_one_and_is_computed_once(tmp_path, computed):
    fresh = baseline_features(_words(), _wav(), SR, N_TRS, cache=False)
    first = baseline_features(_words(), _wav(), SR, N_TRS, cache_dir=tmp_path)
    again = baseline_features(_words(), _wav(), SR, N_TRS, cache_dir=tmp_path)
    assert computed == ["_word_features", "_audio_features"] * 2  # the fresh one and the first cached one
    for name, values in fresh.items():
        assert again[name].dtype == values.dtype
        np.testing.assert_array_equal(first[name], values)
        np.testing.assert_array_equal(again[name], values)


@pytest.mark.parametrize("change", [
    dict(wav=_wav(1)), dict(n_mels=16), dict(timebase=TimeBase(1.5, 0.5)), dict(n_trs=N_TRS - 2)])
def test_other_audio_or_settings_are_not_served_from_the_cache(tmp_path, change):
    args = dict(wav=_wav(), sr=SR, n_trs=N_TRS)
    audio_features(**args, cache_dir=tmp_path)
    got = audio_features(**{**args, **change}, cache_dir=tmp_path)
    expected = audio_features(**{**args, **change}, cache=False)
    for name, values in expected.items():
        np.testing.assert_array_equal(got[name], values)


@pytest.mark.parametrize("words", [_words(shift=1), _words().assign(word=lambda w: w["word"].str.upper() + "S")])
def test_other_words_or_their_trs_are_not_served_from_the_cache(tmp_path, words):
    word_features(_words(), N_TRS, cache_dir=tmp_path)
    got = word_features(words, N_TRS, cache_dir=tmp_path)
    expected = word_features(words, N_TRS, cache=False)
    for name, values in expected.items():
        np.testing.assert_array_equal(got[name], values)
