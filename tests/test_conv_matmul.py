"""wav2vec2-like feature encoders: the convolutions that run as matrix products give the convolution's values."""

import numpy as np
import pytest
import torch

from encoding_kit.data.story import load_story
from encoding_kit.features.audio import extract_audio_features
from encoding_kit.features.conv_matmul import MARK, _qualifies, convolutions_as_products
from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.models import standin

SR = 16000


def _waveforms(seconds=1.5, n=2, seed=3):
    rng = np.random.default_rng(seed)
    return torch.from_numpy((0.1 * rng.standard_normal((n, int(seconds * SR)))).astype(np.float32))


def _states(model, x):
    with torch.inference_mode():
        return [h.numpy().copy() for h in model(x, output_hidden_states=True).hidden_states]


def _real_conv_layout():
    """wav2vec2-base's feature encoder as released (512 channels, kernels 10, 3 x 5, 2 x 2), a one-layer transformer."""
    import transformers as tf

    torch.manual_seed(0)
    config = tf.Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    return tf.Wav2Vec2Model(config).eval()


@pytest.mark.parametrize("model_type", ["wav2vec2", "wavlm", "hubert"])
def test_stand_ins_give_the_convolutions_values_with_their_weights_untouched(model_type):
    model = standin(model_type, model_type).model.eval()
    x = _waveforms()
    before = _states(model, x)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    # the stand-in's encoder: kernel 10 stride 5 from one channel, then three kernel-4 stride-4 layers
    assert convolutions_as_products(model) == 4
    assert convolutions_as_products(model) == 4  # installed once
    after = _states(model, x)
    for a, b in zip(before, after):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5 * np.abs(a).max())
    state = model.state_dict()
    assert state.keys() == weights.keys() and all(torch.equal(state[k], weights[k]) for k in weights)
    assert not getattr(model.encoder.pos_conv_embed.conv, MARK, False)  # padded and grouped: a convolution


def test_the_released_layout_keeps_its_overlapping_layers_as_convolutions():
    model = _real_conv_layout()
    x = _waveforms(seconds=1.0)
    before = _states(model, x)
    assert convolutions_as_products(model) == 3  # the first layer and the two kernel-2 stride-2 layers
    layers = model.feature_extractor.conv_layers
    assert [getattr(layer.conv, MARK, False) for layer in layers] == [True] + [False] * 4 + [True] * 2
    for a, b in zip(before, _states(model, x)):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5 * np.abs(a).max())


def test_only_plain_convolutions_qualify():
    assert _qualifies(torch.nn.Conv1d(1, 8, 10, stride=5))
    assert _qualifies(torch.nn.Conv1d(8, 8, 4, stride=4))
    assert not _qualifies(torch.nn.Conv1d(8, 8, 3, stride=2))  # overlapping windows of several channels
    assert not _qualifies(torch.nn.Conv1d(1, 8, 10, stride=5, padding=2))
    assert not _qualifies(torch.nn.Conv1d(8, 8, 4, stride=4, groups=2))
    assert not _qualifies(torch.nn.Conv1d(1, 8, 3, dilation=2))


def test_the_audio_extraction_runs_the_encoder_as_products(small_demo):
    story = load_story(small_demo, max_trs=24)
    loaded = standin("wav2vec2", "wav2vec2")
    extract_audio_features(story.wav, story.sr, story.n_trs, loaded,
                           run=ExtractionRun(cache=False, progress=False, allow_short_audio=True))
    assert all(getattr(layer.conv, MARK, False) for layer in loaded.model.feature_extractor.conv_layers)
