"""Whisper's shared padding: the padded input's window frames, the padding's states computed once per level.

What is asserted: the window's log-mel and padding level are the padded
input's; a window that fills the input gives exactly the padded states; with a
shorter window the result equals a reference built from Hugging Face's own
attention (cross-attending to the window and to an all-padding pass's states);
windows of one rounded level share one padding pass and the memory they keep is
bounded. Causality is tested with the other inputs in test_fast_paths.py and
test_whisper_decoder.py; the fidelity to ``"padded"`` on real weights is
measured by benchmarks/bench_fast_paths.py.
"""

import numpy as np
import pytest
import torch

from encoding_kit.features import whisper_padding
from encoding_kit.features.audio import extract_audio_features
from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.models import standin
from encoding_kit.features.whisper_input import whisper_encoder_states

SR = 16000


@pytest.fixture(scope="module")
def whisper():
    return standin("whisper", "whisper")  # random weights, 4 encoder layers, 12 s input (600 positions)


def loudness_varying(seconds, seed=0):
    """Noise whose loudness changes every 1.5 s, so windows have different padding levels."""
    rng = np.random.default_rng(seed)
    wav = rng.standard_normal(int(seconds * SR)).astype(np.float32)
    gains = 10 ** rng.uniform(-2.5, 0, int(np.ceil(seconds / 1.5)))
    return wav * np.repeat(gains, int(1.5 * SR))[:len(wav)].astype(np.float32)


def windows(wav, seconds, n):
    size = int(seconds * SR)
    return np.stack([wav[i * SR:i * SR + size] for i in range(n)])


@pytest.fixture(autouse=True)
def empty_padding_cache():
    whisper_padding._CACHES.clear()
    yield
    whisper_padding._CACHES.clear()


def test_the_windows_log_mel_and_padding_level_are_the_padded_inputs(whisper):
    extractor = whisper.processor
    batch = windows(loudness_varying(12), 3, 6)
    mel, levels = whisper_padding.window_log_mel(extractor, batch, SR)
    padded = extractor(list(batch), sampling_rate=SR, return_tensors="pt").input_features
    np.testing.assert_allclose(mel.numpy(), padded[..., :mel.shape[-1]].numpy(), atol=1e-5)
    np.testing.assert_allclose(levels, padded[:, 0, -1].numpy(), atol=1e-6)
    assert np.ptp(levels) > 0.1  # the windows do differ in level


def test_a_window_that_fills_the_input_gives_the_padded_states_exactly(whisper):
    """No padding left: every layer (and the last, after the final layer norm) equals the padded pass."""
    wav = loudness_varying(8 * 1.5 + 1.5)
    kw = dict(window_trs=8, run=ExtractionRun(cache=False, progress=False), layers=None)
    padded = extract_audio_features(wav, SR, 9, whisper, whisper_input="padded", **kw)
    shared = extract_audio_features(wav, SR, 9, whisper, whisper_input="shared_padding", **kw)
    assert sorted(shared) == list(range(5))
    for layer in padded:
        np.testing.assert_allclose(shared[layer], padded[layer], atol=1e-5)


def reference_states(encoder, mel, level, n_window):
    """Window frames through Hugging Face's own layers, attending to themselves and to the padding's states
    of an all-padding pass at ``level`` (positions from ``n_window`` on)."""
    full = torch.full((1, mel.shape[1], 2 * encoder.config.max_source_positions), float(level))
    padding = encoder(full, output_hidden_states=True).hidden_states  # inputs to each layer, then the output
    x = torch.nn.functional.gelu(encoder.conv2(torch.nn.functional.gelu(encoder.conv1(mel))))
    x = x.transpose(1, 2)[:, :n_window] + encoder.embed_positions.weight[:n_window]
    states = [x]
    for i, layer in enumerate(encoder.layers):
        h = layer.self_attn_layer_norm(x)
        context = torch.cat([h, layer.self_attn_layer_norm(padding[i][:, n_window:]).expand(len(h), -1, -1)], 1)
        x = x + layer.self_attn(hidden_states=h, key_value_states=context)[0]
        x = x + layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(x))))
        states.append(x)
    states[-1] = torch.cat([encoder.layer_norm(x), padding[-1][:, n_window:].expand(len(x), -1, -1)], 1)
    return states


def test_a_short_window_attends_to_the_shared_padding_as_defined(whisper):
    encoder, extractor = whisper.model.encoder, whisper.processor
    batch = windows(loudness_varying(12), 3, 3)
    with torch.inference_mode():
        ours = whisper_encoder_states(whisper.model, extractor, batch, SR, "shared_padding", torch.device("cpu"))
        padded = whisper_encoder_states(whisper.model, extractor, batch, SR, "padded", torch.device("cpu"))
        mel, levels = whisper_padding.window_log_mel(extractor, batch, SR)
        for w in range(len(batch)):
            level = whisper_padding.rounded_levels(levels[w])
            expected = reference_states(encoder, mel[w:w + 1], level, 150)
            for layer, (a, b) in enumerate(zip(ours, expected)):
                np.testing.assert_allclose(a[w:w + 1].numpy(), b.numpy(), rtol=0, atol=5e-6, err_msg=f"layer {layer}")
    assert ours[-1].shape == padded[-1].shape  # what the decoder cross-attends to: the whole input
    np.testing.assert_allclose(ours[0].numpy(), padded[0][:, :150].numpy(), atol=1e-5)  # layer 0 is exact
    # an approximation (the random stand-in's padding moves its deep states little, but more than float noise)
    assert np.abs(ours[4][:, :150] - padded[4][:, :150]).max() > 2e-5


def test_windows_of_one_rounded_level_share_one_padding_pass_and_the_memory_is_bounded(whisper, monkeypatch):
    encoder, extractor = whisper.model.encoder, whisper.processor
    batch = windows(loudness_varying(12), 3, 8)
    _, levels = whisper_padding.window_log_mel(extractor, batch, SR)
    distinct = len(np.unique(whisper_padding.rounded_levels(levels)))
    calls = []
    entry = whisper_padding.padding_entry
    monkeypatch.setattr(whisper_padding, "padding_entry", lambda *a: calls.append(a[1]) or entry(*a))
    with torch.inference_mode():
        unbounded = whisper_encoder_states(whisper.model, extractor, batch, SR, "shared_padding", "cpu")
        assert len(calls) == distinct == len(whisper_padding._CACHES[encoder]) > 2
        whisper_encoder_states(whisper.model, extractor, batch, SR, "shared_padding", "cpu")
        assert len(calls) == distinct  # met again: nothing recomputed
        whisper_padding._CACHES.clear()
        monkeypatch.setattr(whisper_padding, "CACHE_BYTES", 1)  # room for one level only
        bounded = whisper_encoder_states(whisper.model, extractor, batch, SR, "shared_padding", "cpu")
    assert len(whisper_padding._CACHES[encoder]) == 1
    for a, b in zip(unbounded, bounded):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_the_lower_layers_alone_equal_the_whole_pass_and_skip_the_layers_above(whisper, tmp_path):
    """A request below the last layer runs only the layers up to it (05's layer 2), with the same features."""
    wav = loudness_varying(30)
    kw = dict(window_trs=2, whisper_input="shared_padding")
    whole = extract_audio_features(wav, SR, 16, whisper, run=ExtractionRun(cache=False, progress=False), **kw)
    layers = whisper.model.encoder.layers
    ran = []
    handles = [layer.fc2.register_forward_hook(lambda m, a, o, i=i: ran.append(i)) for i, layer in enumerate(layers)]
    try:
        for top in (0, 2):
            whisper_padding._CACHES.clear()
            ran.clear()
            run = ExtractionRun(cache_dir=tmp_path / str(top), progress=False, store_all_layers=False)
            for pooling in ("mean", "tr"):
                lower = extract_audio_features(wav, SR, 16, whisper, layers=[top], frame_pooling=pooling, run=run, **kw)
                reference = whole if pooling == "mean" else extract_audio_features(
                    wav, SR, 16, whisper, layers=[top], frame_pooling="tr", run=ExtractionRun(cache=False), **kw)
                np.testing.assert_array_equal(lower[top], reference[top])
            # the padding passes run every layer once per level; the windows only the layers below `top`
            window_calls = [i for i in ran if i >= top]
            assert len(window_calls) == len(whisper_padding._CACHES[whisper.model.encoder]) * (len(layers) - top)
            stored = sorted(p.name for p in (tmp_path / str(top)).glob("audio-*/layer_*.npz"))
            assert len(stored) == 2 * (top + 1)  # states 0..top, both frame poolings
        # by default every layer runs and is stored: another notebook's layer sweep at this setting is a cache hit
        extract_audio_features(wav, SR, 16, whisper, layers=[0], run=ExtractionRun(cache_dir=tmp_path / "all"), **kw)
        assert len(list((tmp_path / "all").glob("audio-*/layer_*.npz"))) == 2 * (len(layers) + 1)
    finally:
        for handle in handles:
            handle.remove()
