"""Notebook 01's demo check: where text features reach, against each ROI class's ceiling and what the words carry."""

import numpy as np
import pytest

from encoding_kit.demo.generate import load_truth
from encoding_kit.demo.planted import roi_classes, text_reach, text_reach_text, word_driver_fit


@pytest.fixture(scope="module")
def truth(small_demo):
    return load_truth(small_demo)


def test_the_words_carry_the_language_rois_fully_and_the_acoustic_rois_partly(truth):
    fit, classes = word_driver_fit(truth), roi_classes(truth)
    assert np.nanmin(fit[classes["language"]]) > 0.999  # their drivers are all word drivers
    assert 0.3 < np.nanmean(fit[classes["acoustic"]]) < 0.99  # sound energy follows the words, not exactly
    assert np.isnan(fit[classes["noise"]]).all()


def test_text_reach_reads_shares_of_the_ceiling_and_calls_the_language_rois(truth):
    classes = roi_classes(truth)
    ceiling = np.where(truth["driven"], 0.5, np.nan) * np.ones((3, 1))
    ceiling[:, classes["acoustic"]] = 0.8
    perfect = np.nan_to_num(ceiling)  # r equal to the ceiling in every driven ROI, 0 elsewhere
    deaf = perfect.copy()
    deaf[:, classes["language"]] = 0.005  # no better than noise in the language ROIs
    table = text_reach({"perfect": perfect, "deaf": deaf}, {"perfect": ceiling, "deaf": ceiling}, truth).set_index(
        "features")
    assert table.loc["perfect", "acoustic_share"] == pytest.approx(1.0)
    assert table.loc["perfect", "language_share"] == pytest.approx(1.0)
    assert table.loc["perfect", "predicts_language"] and not table.loc["deaf", "predicts_language"]
    text = text_reach_text(table.reset_index())
    assert "perfect: language ROIs r 0.500" in text and "(by >= 0.02): no" in text
    assert "Acoustic ROIs above language ROIs for 2 of 2 text sets" in text and "ceiling is 1.6x" in text
