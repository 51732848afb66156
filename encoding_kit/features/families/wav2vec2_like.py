"""Self-supervised speech models that read the raw waveform (``input_values``) through a convolutional feature
encoder and a transformer: wav2vec2, wav2vec2-conformer, HuBERT, WavLM, data2vec-audio, UniSpeech, UniSpeech-SAT,
SEW and SEW-D. One hidden state per 20 ms frame, the window's frames in time order.

(``facebook/w2v-bert-2.0`` is not one of them: it reads log-mel filterbank ``input_features``; its model type
``wav2vec2-bert`` belongs to no family yet.)
"""

from __future__ import annotations

from ...core.runtime import float32_inputs
from ...data.course_files import AUDIO_SR
from ..conv_matmul import convolutions_as_products
from ..loaded import LoadedModel
from ..wavlm_layout import store_attention_input_time_first
from .base import SIZES, Family

MODEL_TYPES = ("wav2vec2", "wav2vec2-conformer", "hubert", "wavlm", "data2vec-audio", "unispeech", "unispeech-sat",
               "sew", "sew-d")
STANDIN_TYPES = ("wav2vec2", "wavlm", "hubert")
"""Model types with a random-weight stand-in (the ones the notebooks name)."""


def load(name, config, kwargs):
    from transformers import AutoFeatureExtractor, AutoModel  # lazy: imported by lightweight paths

    return AutoModel.from_pretrained(name, **kwargs), AutoFeatureExtractor.from_pretrained(name, **kwargs)


def window_states(loaded, batch, sr, window_samples, option, device):
    """Hidden states of every layer, (n_windows, n_frames, dim) each; the model reads the windows alone."""
    with float32_inputs():
        inputs = loaded.processor(list(batch), sampling_rate=sr, return_tensors="pt")
    return loaded.model(inputs.input_values.to(device), output_hidden_states=True).hidden_states


def prepare(model):
    """The feature encoder's slow convolutions as products (:mod:`encoding_kit.features.conv_matmul`); WavLM: its attention's
    projections stay one product under bf16 autocast. Same values either way."""
    if next(model.parameters()).device.type == "cpu":
        convolutions_as_products(model)
    if model.config.model_type == "wavlm":
        store_attention_input_time_first(model)


def _extractor(**values):
    import transformers as tf

    return tf.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=AUDIO_SR, padding_value=0.0, **values)


def _config_class(model_type):
    import transformers as tf

    if model_type not in STANDIN_TYPES:
        raise ValueError(f"no stand-in for model type {model_type!r} (wav2vec2-like: {', '.join(STANDIN_TYPES)})")
    return {"wav2vec2": tf.Wav2Vec2Config, "wavlm": tf.WavLMConfig, "hubert": tf.HubertConfig}[model_type]


def standin(name, model_type, size="tiny"):
    """A random-weight model of ``model_type`` with a 320-sample (20 ms) hop."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    s = SIZES[size]
    h = min(s["hidden"], 64) if size == "tiny" else s["hidden"]
    # 320-sample (20 ms) hop. Layer norm over channels with conv biases (as in the large wav2vec2 / WavLM
    # checkpoints): the default group norm normalises each channel over the whole window, which removes its loudness
    # from a random network (held-out r with the demo's acoustic driver 0.12 vs 0.36 with this setting).
    conv = dict(conv_dim=(h,) * 4, conv_kernel=(10, 4, 4, 4), conv_stride=(5, 4, 4, 4), feat_extract_norm="layer",
                conv_bias=True)
    enc = dict(hidden_size=h, num_hidden_layers=s["layers"], num_attention_heads=s["heads"], intermediate_size=2 * h,
               num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    if model_type == "wavlm":
        enc.update(num_buckets=32, max_bucket_distance=200)
    model_class = {"wav2vec2": tf.Wav2Vec2Model, "wavlm": tf.WavLMModel, "hubert": tf.HubertModel}
    config = _config_class(model_type)(**conv, **enc)
    # No per-window normalisation: a random network then keeps the loudness of the window.
    extractor = _extractor(do_normalize=False, return_attention_mask=True)
    return LoadedModel(model_class[model_type](config), extractor, name, "random", model_type)


def real_size(model_type, values):
    import transformers as tf

    return tf.AutoModel.from_config(_config_class(model_type)()), _extractor(**values)


FAMILY = Family(
    name="wav2vec2-like", modality="audio", model_types=MODEL_TYPES, load=load, standin=standin,
    n_layers=lambda config: config.num_hidden_layers,
    name_patterns=(("wavlm", "wavlm"), ("hubert", "hubert"), ("wav2vec", "wav2vec2")),
    real_size=real_size, window_states=window_states, prepare=prepare)
