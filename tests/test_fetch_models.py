"""`python -m encoding_kit fetch --models`: the notebooks' checkpoints, sizes first, one sentence each offline."""

import pytest

from encoding_kit.__main__ import main
from encoding_kit.features import fetch_models as fetch_module
from encoding_kit.features import models
from encoding_kit.features.fetch_models import CHECKPOINT_MB, fetch_models, files_to_fetch, notebook_checkpoints
from encoding_kit.features.models import ModelUnavailable, load_model
from encoding_kit.features.real_configs import REAL_CONFIGS

BENCHMARKED = {"gpt2", "bert-base-uncased", "Qwen/Qwen2.5-0.5B", "facebook/wav2vec2-base",
               "microsoft/wavlm-base-plus", "facebook/hubert-base-ls960", "openai/whisper-base",
               "laion/clap-htsat-unfused"}
"""The checkpoints of the real run's bill (bench_real_models builds them at their real size)."""
NOTEBOOK_MODELS = BENCHMARKED | {"sentence-transformers/all-MiniLM-L6-v2",  # 08 tunes it
                                 "openai/whisper-tiny"}  # 02's planted-phoneme check (demo only)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setattr(models, "hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(fetch_module, "hub_reachable", lambda *a, **k: False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path


def test_the_notebooks_checkpoints_are_found_with_sizes_and_real_configs():
    names = notebook_checkpoints()
    assert set(names) == NOTEBOOK_MODELS
    assert set(names) <= set(CHECKPOINT_MB) and BENCHMARKED <= set(REAL_CONFIGS)


def test_offline_each_model_fails_in_one_sentence_and_nothing_is_written(offline, capsys):
    status = fetch_models()
    out = capsys.readouterr().out
    assert out.index("about 548 MB") < out.index("gpt2: not downloaded")  # sizes first
    for name in NOTEBOOK_MODELS:
        assert status[name].startswith(f"{name}: not downloaded (about") and "unreachable" in status[name]
        assert status[name].count(". ") == 0 and "\n" not in status[name]
    assert not (offline / "hf").exists() or not any((offline / "hf").rglob("*"))
    assert main(["fetch", "--models"]) == 1


def test_only_one_copy_of_the_weights_is_fetched():
    files = [("config.json", 1), ("model.safetensors", 9), ("pytorch_model.bin", 9), ("tf_model.h5", 9),
             ("flax_model.msgpack", 9), ("onnx/model.onnx", 9), ("vocab.json", 1), ("merges.txt", 1),
             ("README.md", 1), ("rust_model.ot", 9)]
    assert [f for f, _ in files_to_fetch(files)] == ["config.json", "model.safetensors", "vocab.json", "merges.txt"]
    assert [f for f, _ in files_to_fetch([("pytorch_model.bin", 9), ("config.json", 1)])] == \
        ["pytorch_model.bin", "config.json"]


def test_a_missing_checkpoint_says_which_and_how_big(offline):
    with pytest.raises(ModelUnavailable, match=r"Model 'gpt2' \(about 548 MB\).*fetch --models"):
        load_model("gpt2")
