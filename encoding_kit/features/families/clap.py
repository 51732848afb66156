"""CLAP (contrastive language-audio): its audio branch for audio, its text branch for text.

Audio: the Swin stages' hidden states averaged over time and frequency. CLAP
works at 48 kHz, so each window is resampled after it is cut (resampling the
whole story first would let the filter reach a few ms past the TR's end), and
repeat-padded to its input length as it was trained; a longer window keeps
its last part; its log-mel input is computed in torch (:func:`clap_log_mel`).
Only ``frame_pooling="mean"``: the Swin stages mix time and frequency patches
of the repeat-padded window, so no frames belong to the last TR alone.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ...core.runtime import float32_inputs
from ..loaded import LoadedModel
from ..local_tokenizers import trained_tokenizer
from .base import SIZES, Family


def load(name, config, kwargs):
    from transformers import AutoProcessor, ClapModel  # lazy: imported by lightweight paths

    return ClapModel.from_pretrained(name, **kwargs), AutoProcessor.from_pretrained(name, **kwargs)


def window_states(loaded, batch, sr, window_samples, option, device):
    """Audio-branch states of every Swin stage, averaged over time and frequency: (n_windows, 1, dim) each."""
    from scipy.signal import resample_poly  # lazy: only CLAP resamples

    extractor = loaded.processor.feature_extractor
    target = extractor.sampling_rate
    ratio = Fraction(target, sr)
    batch = resample_poly(batch, ratio.numerator, ratio.denominator, axis=1).astype(np.float32)
    # A window longer than CLAP's input keeps its most recent part (the extractor would crop at random).
    batch = batch[:, -int(extractor.max_length_s * target):]
    feats = clap_log_mel(batch, extractor).to(device)
    states = loaded.model.audio_model(input_features=feats, output_hidden_states=True).hidden_states
    return [h.float().mean(dim=(2, 3)).unsqueeze(1) for h in states]  # over time and frequency


def clap_log_mel(batch, extractor):
    """CLAP's log-mel input for windows no longer than its input, as its feature extractor computes it.

    Same result as ``ClapFeatureExtractor(batch, truncation="rand_trunc",
    padding="repeatpad")`` (repeat-pad to ``max_length_s``, periodic Hann
    STFT centred with reflection, power, Slaney mel filters, dB), for the
    whole batch at once in torch: the extractor loops over STFT frames in
    numpy, which is a third of CLAP's extraction time on a CPU. The STFT
    runs in float32: on the demo story the result is within 1e-3 dB of the
    extractor's (float64) wherever the power is above -60 dB, and within
    0.04 dB in near-silent bins at the -100 dB floor
    (``benchmarks/bench_audio_features.py``).

    Parameters
    ----------
    batch : float32 array of shape (n_windows, n_samples)
        Windows at the extractor's rate, ``n_samples <= max_length_s * rate``.
    extractor : transformers.ClapFeatureExtractor

    Returns
    -------
    torch.Tensor of shape (n_windows, 1, n_frames, n_mels)
    """
    import torch

    length = int(extractor.nb_max_samples)
    if batch.shape[1] > length:
        raise ValueError(f"windows of {batch.shape[1]} samples are longer than CLAP's input ({length} samples)")
    repeats = length // batch.shape[1]
    padded = np.zeros((len(batch), length), np.float32)
    padded[:, :repeats * batch.shape[1]] = np.tile(batch, (1, repeats))
    n_fft = extractor.fft_window_size
    spec = torch.stft(torch.from_numpy(padded), n_fft, extractor.hop_length, window=torch.hann_window(n_fft),
                      center=True, pad_mode="reflect", return_complex=True).abs() ** 2
    with float32_inputs():  # inside the model's autocast too: the filters' product stays in float32
        mel = torch.from_numpy(extractor.mel_filters_slaney.T.astype(np.float32)) @ spec  # (n, mels, frames)
    return (10 * torch.log10(mel.clamp(min=1e-10))).transpose(1, 2).unsqueeze(1)


def standin(name, model_type="clap", size="tiny"):
    """A random-weight CLAP with 4 s audio inputs and the byte-level tokenizer for its text branch."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    s = SIZES[size]
    h = min(s["hidden"], 64) if size == "tiny" else s["hidden"]
    tokenizer = trained_tokenizer("bytelevel")
    text = dict(vocab_size=len(tokenizer), hidden_size=h, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=2 * h, max_position_embeddings=130, pad_token_id=0)
    audio = dict(hidden_size=4 * h, patch_embeds_hidden_size=h // 2, depths=[1, 1, 1, 1],
                 num_attention_heads=[2, 2, 4, 4], window_size=8, spec_size=256, num_mel_bins=64, patch_stride=[4, 4])
    config = tf.ClapConfig(text_config=text, audio_config=audio, projection_dim=32)
    # 4 s inputs (the real CLAP: 10 s) keep the offline demo's mel extraction 2.5x cheaper; the Swin stages
    # interpolate the spectrogram to their fixed size either way.
    extractor = tf.ClapFeatureExtractor(feature_size=64, sampling_rate=48000, max_length_s=4)
    return LoadedModel(tf.ClapModel(config), tf.ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer), name,
                       "random", "clap")


def real_size(model_type, values):
    import transformers as tf

    return tf.ClapModel(tf.ClapConfig()), tf.ClapProcessor(feature_extractor=tf.ClapFeatureExtractor(),
                                                          tokenizer=trained_tokenizer("bytelevel"))


FAMILY = Family(
    name="clap", modality="text+audio", model_types=("clap",), load=load, standin=standin,
    n_layers=lambda config: len(config.audio_config.depths), name_patterns=(("clap", "clap"),),
    real_size=real_size, window_states=window_states, frame_poolings=("mean",), frames_in_time=False,
    text_branch=lambda loaded: (loaded.model.text_model, loaded.processor.tokenizer))
