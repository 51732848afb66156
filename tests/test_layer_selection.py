"""The best layer is chosen on one half of the subjects and reported on the other half."""

import numpy as np
import pandas as pd
import pytest

from encoding_kit.analysis.layers import best_layer_of, best_layers_held_out, split_subjects
from encoding_kit.run.runner import best_layers


def sweep_table(n_subjects=10, n_layers=6, seed=0, models=("m1", "m2")):
    """Rows like layer_sweep's: model, layer, subject, mean_r, norm_r."""
    rng = np.random.default_rng(seed)
    rows = [{"model": m, "layer": k, "subject": s, "mean_r": 0.01 * k * (k < 4) + rng.normal(0, 0.01),
             "norm_r": rng.normal(0.3, 0.05)}
            for m in models for k in range(n_layers) for s in range(1, n_subjects + 1)]
    return pd.DataFrame(rows)


def test_choice_never_reads_the_reporting_half_and_reports_only_it():
    table = sweep_table()
    selection, reporting = split_subjects(range(1, 11))
    assert selection == [1, 3, 5, 7, 9] and reporting == [2, 4, 6, 8, 10]
    best = best_layers_held_out(table).set_index("model")
    corrupted = table.copy()
    spoil = corrupted["subject"].isin(reporting) & (corrupted["layer"] == 5)
    corrupted.loc[spoil, "mean_r"] += 10  # the reporting half now "prefers" layer 5 by far
    again = best_layers_held_out(corrupted).set_index("model")
    assert (again["layer"] == best["layer"]).all() and (best["layer"] == 3).all()
    for model, row in again.iterrows():  # the reported number is the reporting half's, at the chosen layer
        part = corrupted[(corrupted.model == model) & (corrupted.layer == row.layer)
                         & corrupted.subject.isin(reporting)]
        assert row.mean_r == pytest.approx(part.mean_r.mean()) and row.n_report == 5
        assert row.std_r == pytest.approx(part.mean_r.std(ddof=1))
        assert row.norm_r == pytest.approx(part.norm_r.mean())
    moved = table.copy()
    moved.loc[moved["subject"].isin(selection) & (moved["layer"] == 5), "mean_r"] += 10
    assert (best_layers_held_out(moved)["layer"] == 5).all()  # the selection half does decide


def test_held_out_choice_removes_the_upward_bias_of_choosing_on_the_reported_scores():
    rng = np.random.default_rng(1)
    chosen_on_reported, held_out = [], []
    for _ in range(200):  # 20 equally good layers (true r 0), 25 subjects
        scores = rng.normal(0, 0.02, (20, 25))
        chosen_on_reported.append(scores.mean(1).max())
        table = pd.DataFrame({"model": "m", "layer": np.repeat(np.arange(20), 25),
                              "subject": np.tile(np.arange(25), 20), "mean_r": scores.ravel(), "norm_r": np.nan})
        held_out.append(best_layers_held_out(table)["mean_r"].iloc[0])
    assert np.mean(chosen_on_reported) > 0.007  # about 1.9 standard errors of a layer mean above the truth
    assert abs(np.mean(held_out)) < 0.0015  # within about 2.5 standard errors of 0


def test_best_layer_of_maps_reads_only_the_selection_half():
    rng = np.random.default_rng(2)
    r = {k: rng.normal(0.01 * k, 0.01, (7, 360)) for k in range(4)}  # layer 3 best
    layer, reporting = best_layer_of(r)
    assert layer == 3 and list(reporting) == [1, 3, 5]
    r[0][reporting] += 5  # the reporting half prefers layer 0
    assert best_layer_of(r)[0] == 3
    with pytest.raises(ValueError, match="at least 2 subjects; got 1"):
        best_layer_of({0: np.zeros((1, 360))})


def test_runner_table_is_chosen_and_reported_on_separate_halves(tmp_path):
    table = sweep_table()
    (tmp_path / "01_text_models").mkdir()
    table.to_csv(tmp_path / "01_text_models" / "layer_subject_scores.csv", index=False)
    summary = best_layers(tmp_path)
    expected = best_layers_held_out(table)
    assert list(summary["notebook"].unique()) == ["01_text_models"]
    np.testing.assert_allclose(summary["mean_r"], expected["mean_r"].round(4))
    assert (summary["layer"] == expected["layer"]).all() and (summary["n_report"] == 5).all()
    assert best_layers(tmp_path / "none").empty
