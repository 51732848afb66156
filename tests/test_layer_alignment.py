"""Layer alignment profile: peak layer, its bootstrap over subjects, and the middle-layer answer on known profiles."""

import numpy as np
import pandas as pd
import pytest

from encoding_kit.analysis.layer_alignment import answer_text, bootstrap_peak_layer, middle_layer_test, thirds


def profile_table(shape, n_subjects=12, noise=0.003, seed=0, model="m"):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        offset = rng.normal(0, 0.02)  # subjects differ in level, not in shape
        for layer, value in enumerate(shape):
            rows.append({"model": model, "scope": "all ROIs", "layer": layer, "depth": layer / (len(shape) - 1),
                         "subject": s, "mean_r": value + offset + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def test_thirds_split_by_relative_depth():
    assert list(thirds(range(7))) == ["early", "early", "early", "middle", "late", "late", "late"]
    assert list(thirds(range(5))) == ["early", "early", "middle", "late", "late"]


def test_a_middle_peak_is_found_and_called_middle():
    table = profile_table([0.02, 0.04, 0.06, 0.08, 0.06, 0.04, 0.02])
    peaks = bootstrap_peak_layer(table, n_boot=300).iloc[0]
    assert peaks["peak_layer"] == 3 and peaks["ci_low"] == 3 and peaks["ci_high"] == 3
    assert peaks["p_middle"] == 1.0 and peaks["modal_share"] == 1.0
    middle = middle_layer_test(table, n_boot=300).iloc[0]
    assert middle["answer"] == "yes" and middle["vs_early_low"] > 0 and middle["vs_late_low"] > 0
    assert middle["middle_layers"] == "3"
    assert "peak at layer 3 of 6" in answer_text(bootstrap_peak_layer(table), middle_layer_test(table))


def test_a_rising_profile_peaks_last_and_the_answer_is_no():
    table = profile_table([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07])
    assert bootstrap_peak_layer(table, n_boot=300).iloc[0]["peak_layer"] == 6
    assert middle_layer_test(table, n_boot=300).iloc[0]["answer"] == "no"


def test_a_flat_noisy_profile_rarely_gets_an_answer():
    """No true difference: the peak interval is wide and 'yes' or 'no' comes out about as often as the 5% tails."""
    peaks = bootstrap_peak_layer(profile_table([0.05] * 7, noise=0.01), n_boot=500).iloc[0]
    assert peaks["ci_high"] - peaks["ci_low"] >= 3
    answers = [middle_layer_test(profile_table([0.05] * 7, noise=0.01, seed=s), n_boot=300).iloc[0]["answer"]
               for s in range(40)]
    assert answers.count("undecided") >= 30, answers


def test_missing_scores_are_refused():
    table = profile_table([0.01, 0.02, 0.03]).iloc[1:]
    with pytest.raises(ValueError, match="every subject needs a score for every layer"):
        bootstrap_peak_layer(table)


def test_the_peak_r_comes_from_subjects_that_did_not_choose_the_layer():
    """The selection half (subjects 0, 2, 4, ...) peaks at layer 2, the reporting half at layer 5: the reported
    peak is layer 2, scored on the reporting half (low there), not the choosing half's high value."""
    rows = []
    for s in range(10):
        shape = [0.02, 0.03, 0.09, 0.03, 0.03, 0.03] if s % 2 == 0 else [0.02, 0.03, 0.01, 0.03, 0.03, 0.05]
        rows += [{"model": "m", "scope": "all ROIs", "layer": layer, "subject": s, "mean_r": value + 0.001 * s}
                 for layer, value in enumerate(shape)]
    table = pd.DataFrame(rows)
    peak = bootstrap_peak_layer(table, n_boot=200).iloc[0]
    reporting = table[(table["layer"] == 2) & (table["subject"] % 2 == 1)]["mean_r"].mean()
    assert peak["peak_layer"] == 2 and (peak["n_select"], peak["n_report"]) == (5, 5)
    assert peak["peak_r"] == pytest.approx(reporting)
    assert peak["selection_r"] == pytest.approx(table[(table["layer"] == 2) & (table["subject"] % 2 == 0)]["mean_r"].mean())
    assert "chosen on 5 subjects" in answer_text(bootstrap_peak_layer(table), middle_layer_test(table))
