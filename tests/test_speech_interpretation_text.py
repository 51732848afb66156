"""Notebook 09's printed answers: computed from its tables, so they change when the numbers do."""

import pandas as pd

from encoding_kit.analysis.speech_interpretation import attention_centre_text, model_comparison_text


def test_the_comparison_names_the_better_model_per_group():
    table = pd.DataFrame({"scope": ["early", "early", "early", "lang", "lang", "lang"],
                          "model": ["ridge (frames)", "ridge (mean of frames)", "time-resolved"] * 2,
                          "mean_r": [0.50, 0.53, 0.51, 0.10, 0.12, 0.15]})
    text = model_comparison_text(table).splitlines()
    assert text[0] == ("early: time-resolved r 0.510, best ridge (ridge (mean of frames)) 0.530 -> time-resolved "
                       "better: no (-0.020)")
    assert text[1].endswith("time-resolved better: yes (+0.030)")


def test_attention_centres_against_the_hrf_only_for_predicted_heads():
    peaks = pd.DataFrame({"group": ["early", "motor", "reference (heads with r < 0.02)"], "peak_s": [7.35, 2.0, 3.0],
                          "centre_s": [5.2, 3.1, 4.5], "mean_r": [0.5, 0.01, 0.0]})
    text = attention_centre_text(peaks)
    assert "attention centre 4.50 s" in text and "motor" not in text
    assert "early (r 0.500): centre 5.20 s" in text and text.endswith("the HRF predicts: yes")
    assert attention_centre_text(peaks.assign(centre_s=[3.0, 3.1, 4.5])).endswith("the HRF predicts: no")
