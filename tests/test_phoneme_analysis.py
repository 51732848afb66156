"""Phoneme selectivity: a planted class is recovered from unique variance; tables and truth reading."""

import numpy as np
import pytest

from encoding_kit.analysis.phoneme_analysis import (
    class_unique_variance,
    dominant_class_counts,
    dominant_class_map,
    planted_recovery,
    selectivity_table,
    top_quartile_table,
)
from encoding_kit.data.course_files import load_align, load_fmri
from encoding_kit.demo.generate import canonical_hrf, hrf_convolved_drivers
from encoding_kit.features.phonemes import phoneme_class_features

PLANTED = {0: "fricatives", 1: "nasals", 2: "vowels"}


@pytest.fixture(scope="module")
def planted(small_demo):
    """Responses of 6 ROIs to the demo story's phoneme classes: 0-2 each driven by one class, 3-5 noise."""
    words = load_align(data_dir=small_demo)
    n_trs = next(iter(load_fmri(data_dir=small_demo).values())).shape[0]
    X, names = phoneme_class_features(words, n_trs)
    drivers = hrf_convolved_drivers((X - X.mean(0)) / X.std(0), canonical_hrf())
    rng = np.random.default_rng(0)
    Y = 0.7 * rng.standard_normal((n_trs, 6))
    for roi, cls in PLANTED.items():
        Y[:, roi] += drivers[:, names.index(cls)] / drivers[:, names.index(cls)].std()
    return X, names, Y


def test_unique_variance_recovers_the_planted_class(planted):
    X, names, Y = planted
    partition = class_unique_variance(X, names, Y, progress=False)
    assert partition["unique"].shape == (len(names), 1, 6)
    table = selectivity_table(partition)
    rows, summary = planted_recovery(table, PLANTED)
    assert rows["correct"].all(), rows
    assert summary["accuracy"] == 1.0 and summary["chance"] == pytest.approx(1 / len(names))
    assert summary["unique_planted_mean"] > 10 * max(summary["unique_elsewhere_mean"], 1e-3)
    assert (table.loc[3:, "dominant_unique"] < 0.02).all()  # noise ROIs: no class explains anything unique
    np.testing.assert_array_equal(dominant_class_map(table, names)[:3], [names.index(c) for c in PLANTED.values()])


def test_a_swapped_truth_is_not_called_recovered(planted):
    X, names, Y = planted
    table = selectivity_table(class_unique_variance(X, names, Y, progress=False))
    rows, summary = planted_recovery(table, {0: "nasals", 1: "fricatives"})
    assert summary["n_correct"] == 0 and (rows["rank"] > 1).all()


def test_top_quartile_table_keeps_the_best_predicted_rois():
    import pandas as pd

    selectivity = pd.DataFrame({"name": list("abcdefgh"), "group": ["g1"] * 4 + ["g2"] * 4,
                                "mean_r": np.arange(8) / 10, "dominant_class": ["vowels", "stops"] * 4,
                                "dominant_unique": 0.1, "margin": 0.05})
    top = top_quartile_table(selectivity)
    assert list(top["name"]) == ["h", "g"]
    assert dominant_class_counts(top).loc["g2"].to_dict() == {"stops": 1, "vowels": 1}


def test_bad_feature_shape_is_one_clear_sentence():
    with pytest.raises(ValueError, match=r"features must be \(n_trs, 3\)"):
        class_unique_variance(np.zeros((50, 2)), ["a", "b", "c"], np.zeros((50, 2)))
