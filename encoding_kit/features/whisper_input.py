"""What Whisper's encoder reads for the audio window of a TR (never audio after the TR's end).

Whisper was trained on 30 s inputs: its feature extractor pads every input
with zeros to 30 s (1500 encoder frames of 20 ms), so a 3 s window costs as
much as 30 s of audio. Four choices, all causal (the input ends at the end
of the TR; nothing after it is read):

* ``"padded"`` (as trained): the window, then zeros up to the model's input;
  the window's frames are the first ones.
* ``"window"``: the window alone; the encoder's position table is cut to the
  window's frames (the first rows, the positions the window has in the padded
  input), so a 3 s window costs a tenth. The window's frames attend only to
  each other instead of also to the zero padding.
* ``"past"``: the model's whole input of real audio ending at the end of the
  TR (30 s; zeros before the story starts); the window's frames are the last
  ones and attend to the real past instead of zeros. It costs as much as
  ``"padded"``.
* ``"shared_padding"``: the padded input, but the padding's states come from
  one pass over an all-padding input per padding level instead of from every
  window's own pass (:mod:`.whisper_padding`); the window's frames attend to
  them as in ``"padded"``. About a window's cost; the default (:data:`WHISPER_DEFAULT`).

Fidelity of ``"window"``, ``"past"`` and ``"shared_padding"`` to ``"padded"`` (per-dimension r of
the features, held-out encoding r on the demo) is measured on the real
Whisper tiny.en weights by ``benchmarks/bench_fast_paths.py --only whisper``.
"""

from __future__ import annotations

import contextlib

import numpy as np

from ..core.runtime import float32_inputs
from .whisper_padding import shared_padding_states

WHISPER_INPUTS = ("padded", "window", "past", "shared_padding")
WHISPER_DEFAULT = "shared_padding"
"""What the extractors read by default, as every notebook does: the padded input at about a window's cost."""
HOP_SAMPLES = 160
"""Log-mel hop at 16 kHz (10 ms); the encoder's second convolution halves the frames to 20 ms."""


def whisper_input_seconds(extractor, window_s, whisper_input, name, window_trs):
    """Length (s) of the audio the encoder reads for a window of ``window_s`` seconds.

    Raises
    ------
    ValueError
        When the window is longer than the model's input.
    """
    limit_s = extractor.n_samples / extractor.sampling_rate
    if window_s > limit_s + 1e-9:
        raise ValueError(f"{name} reads at most {limit_s:g} s of audio, but the window is {window_s:.1f} s "
                         f"({window_trs} TRs); use a shorter window_trs")
    return limit_s if whisper_input == "past" else window_s


@contextlib.contextmanager
def encoder_positions(encoder, n_positions):
    """Run a Whisper encoder on ``n_positions`` frames: its position table cut to its first rows, then restored.

    Parameters
    ----------
    encoder : transformers WhisperEncoder
    n_positions : int
        Encoder frames (20 ms each) of the input, at most the model's.
    """
    import torch

    table, limit = encoder.embed_positions, encoder.config.max_source_positions
    if not 0 < n_positions <= table.num_embeddings:
        raise ValueError(f"the encoder has {table.num_embeddings} positions; {n_positions} asked")
    encoder.embed_positions = torch.nn.Embedding.from_pretrained(table.weight[:n_positions], freeze=True)
    encoder.config.max_source_positions = n_positions
    try:
        yield encoder
    finally:
        encoder.embed_positions, encoder.config.max_source_positions = table, limit


def whisper_encoder_states(net, extractor, batch, sr, whisper_input, device, top=None):
    """Encoder hidden states over the encoder's whole input, for every layer.

    Parameters
    ----------
    net : transformers WhisperModel
    extractor : transformers WhisperFeatureExtractor
    batch : float32 array of shape (n_windows, n_samples)
        Encoder inputs, each ending at the end of its TR.
    sr : int
    whisper_input : {"padded", "window", "past", "shared_padding"}
    device : torch.device
    top : int, optional
        ``"shared_padding"`` only: states ``0..top`` (below the last), the layers above not run
        (:func:`~.whisper_padding.shared_padding_states`); the other inputs return every layer.

    Returns
    -------
    tuple of torch.Tensor of shape (n_windows, n_frames, d_model)
        Layer 0 (the input to the first transformer layer) to the last (after
        the encoder's final layer norm: what the decoder cross-attends to).
        ``"padded"``: the model's whole input, the window's frames first;
        ``"shared_padding"``: the window's frames, and the whole input in the
        last; otherwise the input's own frames, the window's last.
    """
    if whisper_input == "shared_padding":
        return shared_padding_states(net.encoder, extractor, batch, sr, device, top)
    if whisper_input == "padded":
        with float32_inputs():
            feats = extractor(list(batch), sampling_rate=sr, return_tensors="pt").input_features
        return net.encoder(feats.to(device), output_hidden_states=True).hidden_states
    with float32_inputs():
        feats = extractor(list(batch), sampling_rate=sr, return_tensors="pt", padding="longest").input_features
    feats = feats[..., feats.shape[-1] % 2:]  # an even number of mel frames: drop the oldest one if needed
    with encoder_positions(net.encoder, feats.shape[-1] // 2) as encoder:
        return encoder(feats.to(device), output_hidden_states=True).hidden_states


def whisper_window_states(net, extractor, batch, sr, window_samples, whisper_input, device, top=None):
    """Encoder hidden states of the window's frames, for every layer.

    Parameters
    ----------
    net : transformers WhisperModel
    extractor : transformers WhisperFeatureExtractor
    batch : float32 array of shape (n_windows, n_samples)
        Encoder inputs, each ending at the end of its TR; the window is the
        last ``window_samples`` samples (the whole input unless ``"past"``).
    sr : int
    window_samples : int
    whisper_input : {"padded", "window", "past", "shared_padding"}
    device : torch.device
    top : int, optional
        As in :func:`whisper_encoder_states`.

    Returns
    -------
    list of torch.Tensor of shape (n_windows, n_window_frames, d_model)
        Layer 0 (the input to the first transformer layer) to the last (to ``top`` where it applies).
    """
    states = whisper_encoder_states(net, extractor, batch, sr, whisper_input, device, top)
    return [window_frames(h, window_samples, whisper_input) for h in states]


def window_frames(states, window_samples, whisper_input):
    """The window's frames of encoder states (the first ones if ``"padded"`` or ``"shared_padding"``, else the last).

    Parameters
    ----------
    states : torch.Tensor of shape (n_windows, n_frames, d_model)
    window_samples : int
    whisper_input : {"padded", "window", "past", "shared_padding"}

    Returns
    -------
    torch.Tensor of shape (n_windows, n_window_frames, d_model)
    """
    n_window = int(np.ceil(window_samples / (2 * HOP_SAMPLES)))
    first = whisper_input in ("padded", "shared_padding")
    return states[:, :n_window] if first else states[:, -n_window:]
