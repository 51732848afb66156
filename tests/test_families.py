"""Model families found from the model's config (features/families/): every wav2vec2-like model type, a clear
refusal for an unknown one, and a toy family added in one line and read by the extractors."""

import numpy as np
import pytest
import torch
import transformers

from encoding_kit.data.timebase import TimeBase
from encoding_kit.features import families
from encoding_kit.features.audio import extract_audio_features
from encoding_kit.features.audio_frames import extract_frame_sequences
from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.families import Family, UnknownFamily, family_for_config, family_of
from encoding_kit.features.loaded import LoadedModel
from encoding_kit.features.models import load_model
from encoding_kit.features.text import extract_text_features

SR = 16000
WAV2VEC2_LIKE = ("wav2vec2", "wav2vec2-conformer", "hubert", "wavlm", "data2vec-audio", "unispeech", "unispeech-sat",
                 "sew", "sew-d")

NO_CACHE = ExtractionRun(cache=False, progress=False)
"""Features computed afresh (never read from or written to the cache), without a progress bar."""


@pytest.mark.parametrize("model_type", WAV2VEC2_LIKE)
def test_every_wav2vec2_like_model_type_is_recognised_from_its_config(model_type):
    config = transformers.AutoConfig.for_model(model_type)  # offline: transformers' default config of that type
    family = family_for_config(config, f"some/{model_type}-checkpoint")
    assert family.name == "wav2vec2-like" and family.reads_audio and not family.reads_text


@pytest.mark.parametrize("model_type, family", [("bert", "text-encoder"), ("roberta", "text-encoder"),
                                                ("gpt2", "causal-lm"), ("qwen2", "causal-lm"),
                                                ("llama", "causal-lm"), ("whisper", "whisper"), ("clap", "clap")])
def test_the_other_families_are_recognised_from_their_configs(model_type, family):
    assert family_for_config(transformers.AutoConfig.for_model(model_type)).name == family


def test_an_unknown_text_architecture_is_found_by_its_architectures():
    config = transformers.AutoConfig.for_model("gpt2")
    config.model_type, config.architectures = "my-new-lm", ["MyNewLMForCausalLM"]
    assert family_for_config(config).name == "causal-lm"


def test_w2v_bert_is_not_bert_and_an_unknown_model_gets_one_clear_message(tmp_path):
    """facebook/w2v-bert-2.0's config (model type wav2vec2-bert) was taken for BERT by its name and got a tokenizer:
    now load_model reads the config and refuses it in one sentence naming the model, its type and the families."""
    folder = tmp_path / "w2v-bert-2.0"
    transformers.AutoConfig.for_model("wav2vec2-bert").save_pretrained(folder)
    with pytest.raises(UnknownFamily) as caught:
        load_model(str(folder))
    message = str(caught.value)
    assert str(folder) in message and "'wav2vec2-bert'" in message
    for name in ("text-encoder", "causal-lm", "wav2vec2-like", "whisper", "clap"):
        assert name in message
    assert "\n" not in message
    with pytest.raises(UnknownFamily, match="wav2vec2-bert"):
        family_for_config(transformers.AutoConfig.for_model("wav2vec2-bert"), "facebook/w2v-bert-2.0")


def test_a_data2vec_audio_checkpoint_loads_as_wav2vec2_like_and_gives_audio_features(tmp_path):
    """A data2vec-audio checkpoint (became 'unknown' by name and got an AutoTokenizer) loads from its config."""
    torch.manual_seed(0)
    config = transformers.Data2VecAudioConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                              intermediate_size=64, conv_dim=(32,) * 3, conv_kernel=(10, 8, 4),
                                              conv_stride=(5, 8, 8), num_conv_pos_embeddings=16,
                                              num_conv_pos_embedding_groups=2, conv_pos_kernel_size=4,
                                              num_conv_pos_embeddings_layers=1)
    transformers.Data2VecAudioModel(config).save_pretrained(tmp_path)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=SR).save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path))
    assert loaded.family == "data2vec-audio" and family_of(loaded).name == "wav2vec2-like"
    assert type(loaded.processor).__name__ == "Wav2Vec2FeatureExtractor"
    wav = np.random.default_rng(0).standard_normal(int(7 * 1.5 * SR)).astype(np.float32)
    feats = extract_audio_features(wav, SR, 6, loaded, layers=[0, 2], run=NO_CACHE)
    assert feats[2].shape == (6, 32) and np.isfinite(feats[2]).all()
    with pytest.raises(ValueError, match="reads audio; text features need a text model"):
        extract_text_features(["a", "b"], loaded, run=NO_CACHE)


class Energy(torch.nn.Module):
    """A toy audio model: frame k of layer l is the mean square of samples of 20 ms frame k, times l + 1."""

    def __init__(self, n_layers=2):
        super().__init__()
        self.config = transformers.PretrainedConfig(num_hidden_layers=n_layers)
        self.config.model_type = "toy-energy"
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, batch):
        frames = batch.reshape(len(batch), -1, SR // 50) ** 2
        energy = frames.mean(-1, keepdim=True) * self.scale  # (n, frames, 1)
        return [energy * (layer + 1) for layer in range(self.config.num_hidden_layers + 1)]


def _toy_states(loaded, batch, sr, window_samples, option, device):
    return loaded.model(torch.as_tensor(batch, device=device))


def _toy_standin(name, model_type, size="tiny"):
    return LoadedModel(Energy(), transformers.Wav2Vec2FeatureExtractor(sampling_rate=SR), name, "random", model_type)


TOY = Family(name="toy-energy", modality="audio", model_types=("toy-energy",), load=None, standin=_toy_standin,
             n_layers=lambda config: config.num_hidden_layers, window_states=_toy_states)


@pytest.fixture
def toy_family():
    families.register(TOY)  # the one line that adds a family
    yield TOY
    families.unregister(TOY.name)


def test_a_toy_audio_family_registered_in_one_line_gives_features_through_the_extractors(toy_family):
    loaded = toy_family.standin("toy", "toy-energy")
    assert family_of(loaded) is toy_family
    n_trs, timebase = 5, TimeBase(1.5, 0.3)
    wav = np.random.default_rng(1).standard_normal(int(8 * 1.5 * SR)).astype(np.float32)
    kw = dict(run=NO_CACHE, timebase=timebase)
    feats = extract_audio_features(wav, SR, n_trs, loaded, layers=[0, 2], window_trs=2, **kw)
    last_tr = extract_audio_features(wav, SR, n_trs, loaded, layers=[1], window_trs=2, frame_pooling="tr", **kw)
    padded = np.concatenate([np.zeros(3 * SR, np.float32), wav])  # zeros before the audio starts
    for k in range(n_trs):  # the window of TR k: 2 TRs ending at the end of TR k on the time base
        stop = int(round((timebase.onset_offset + (k + 1) * 1.5) * SR))
        window = padded[stop:stop + 3 * SR]
        assert np.isclose(feats[0][k, 0], np.mean(window ** 2), rtol=1e-5)
        assert np.isclose(feats[2][k, 0], 3 * np.mean(window ** 2), rtol=1e-5)
        assert np.isclose(last_tr[1][k, 0], 2 * np.mean(window[len(window) // 2:] ** 2), rtol=1e-5)
    frames = extract_frame_sequences(wav, SR, n_trs, loaded, layers=[0], frames_per_tr=3, **kw)[0]
    assert frames.shape == (n_trs, 3, 1) and np.allclose(frames.mean(1)[:, 0], last_tr[1][:, 0] / 2, rtol=1e-5)
    with pytest.raises(ValueError, match="applies to Whisper models only"):
        extract_audio_features(wav, SR, n_trs, loaded, whisper_input="window", **kw)


def test_the_registry_refuses_a_model_type_two_families_would_read(toy_family):
    with pytest.raises(ValueError, match="already read by another family"):
        families.register(Family(name="other", modality="audio", model_types=("toy-energy",), load=None,
                                 standin=None, n_layers=None, window_states=_toy_states))
    with pytest.raises(ValueError, match="audio family but has no window_states"):
        Family(name="broken", modality="audio", model_types=("x",), load=None, standin=None, n_layers=None)


def test_a_text_model_is_refused_by_the_audio_extractor_by_its_family():
    loaded = LoadedModel(torch.nn.Linear(1, 1), None, "my-gpt", "given", "gpt2")
    with pytest.raises(ValueError, match="'my-gpt' is a gpt2 text model; extract_audio_features needs a speech"):
        extract_audio_features(np.zeros(SR * 6, np.float32), SR, 2, loaded, run=NO_CACHE)


def test_offline_names_keep_their_standins():
    """Names the offline stand-ins resolve keep working without any config: the name picks the model type."""
    guess = families.guess_model_type
    assert [guess(n) for n in ("gpt2", "Qwen/Qwen2.5-0.5B", "bert-base-uncased", "facebook/wav2vec2-base",
                               "microsoft/wavlm-base-plus", "facebook/hubert-base-ls960", "openai/whisper-base",
                               "laion/clap-htsat-unfused")] == ["gpt2", "qwen2", "bert", "wav2vec2", "wavlm", "hubert",
                                                                "whisper", "clap"]
    assert guess("my-own-model") is None
