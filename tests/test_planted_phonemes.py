"""The phoneme-recovery check: planted ROIs read from the truth, layer chosen on held-out subjects, honest verdict."""

from types import SimpleNamespace

import numpy as np
import pytest

from encoding_kit.data.rois import AREAS, N_AREAS, roi_names
from encoding_kit.demo.generate import PHONEME_ROIS, load_truth
from encoding_kit.demo.planted_phonemes import phoneme_recovery, phoneme_recovery_text, phoneme_rois


def _scores(value_in_phoneme_rois, n_subjects=4, selection_bonus=0.0):
    r = np.full((n_subjects, 360), 0.05)
    rois = [AREAS.index(a) + h * N_AREAS for a in PHONEME_ROIS for h in (0, 1)]
    r[:, rois] = value_in_phoneme_rois
    r[0::2, rois] += selection_bonus  # better on the selection half only
    return SimpleNamespace(r=r)


def test_planted_rois_are_read_from_the_truth(small_demo):
    truth = load_truth(small_demo)
    planted = phoneme_rois(truth)
    names = roi_names()
    assert {names[i] for i in planted} == {f"{h}_{a}" for a in PHONEME_ROIS for h in "LR"}
    assert {planted[names.index(f"R_{a}")] for a in PHONEME_ROIS} == set(PHONEME_ROIS.values())


def test_layer_is_chosen_on_the_selection_half_and_reported_on_the_other(small_demo):
    truth = load_truth(small_demo)
    results = {"envelope": {0: _scores(0.05)},
               "speech": {0: _scores(0.2), 1: _scores(0.1, selection_bonus=0.3), 2: _scores(0.25)}}
    table = phoneme_recovery(results, truth).set_index("features")
    assert table.loc["speech", "layer"] == 1  # best on the selection half: 0.4 there
    assert table.loc["speech", "phoneme_rois_r"] == pytest.approx(0.1)  # reported on the other half only
    assert table.loc["speech", "minus_baseline"] == pytest.approx(0.05)
    assert table.loc["speech", "n_rois"] == 8 and table.loc["speech", "n_report"] == 2
    text = phoneme_recovery_text(table.reset_index(), "speech")
    assert "speech (layer 1) reaches mean r 0.100 and envelope 0.050 (+0.050" in text and "beats the envelope" in text
    worse = phoneme_recovery({"envelope": {0: _scores(0.3)}, "speech": {0: _scores(0.1)}}, truth)
    assert "does NOT beat the envelope" in phoneme_recovery_text(worse, "speech")


def test_bad_input_is_named(small_demo):
    truth = load_truth(small_demo)
    with pytest.raises(ValueError, match="baseline must be one of the feature sets \\['speech'\\]"):
        phoneme_recovery({"speech": {0: _scores(0.1)}}, truth)
    old = {**truth, "driver_names": np.array([n for n in truth["driver_names"] if not n.startswith("phoneme_")])}
    old["weights"] = truth["weights"][:, :len(old["driver_names"])]
    with pytest.raises(ValueError, match="no planted phoneme-class drivers"):
        phoneme_recovery({"envelope": {0: _scores(0.1)}}, old)
