"""Whisper's padded input at about a window's cost: the zero padding's states computed once, not per window.

Whisper reads 30 s. A window of ``w`` seconds is followed by ``30 - w``
seconds of zeros, and the log-mel of zeros is one constant for the whole
padding: the clamp floor, 8 log10 units below the window's loudest bin (its
*padding level*). Encoding those 27 s again for every TR is most of the cost
of ``whisper_input="padded"``.

``whisper_input="shared_padding"`` encodes the window's own frames exactly as
in the padded input (the same log-mel, convolutions and positions) and lets
them attend, in every layer, to their own keys and values and to those of the
padding taken from one pass over an all-padding input at the window's padding
level (rounded to :data:`LEVEL_STEP`). Those passes are few (one per level met,
kept in memory up to :data:`CACHE_BYTES`). The one approximation: the padding's
states do not see the window (in the padded input they attend to it too), so
the window sees padding states of a silent input at its own level.

The window's features depend on the window's audio only: causal as
``"padded"``. Its fidelity to ``"padded"`` (per-dimension r, held-out encoding
r) is measured on the real Whisper tiny.en by
``benchmarks/bench_fast_paths.py --only whisper``.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict

import numpy as np

from ..core.runtime import autocast_state, float32_inputs

LEVEL_STEP = 0.02
"""Padding levels are rounded to this step (normalised log-mel units, 0.08 log10 units)."""
CACHE_BYTES = 1 << 30
"""Most memory the padding states of one encoder keep (least recently used levels are dropped)."""
TAIL_S = 0.2
"""Seconds of zeros after the window when its log-mel is computed: the boundary frames and the padding level."""
_CACHES = weakref.WeakKeyDictionary()


def window_log_mel(extractor, batch, sr):
    """The padded input's log-mel over the window and a short zero tail, and each window's padding level.

    Parameters
    ----------
    extractor : transformers WhisperFeatureExtractor
    batch : float32 array of shape (n_windows, n_samples)
    sr : int

    Returns
    -------
    mel : torch.Tensor of shape (n_windows, n_mels, n_frames)
        Equal to the first ``n_frames`` frames of the input padded to 30 s
        (the normalisation's maximum never falls in the zeros).
    levels : numpy array of shape (n_windows,)
        The value every mel bin of the padding takes.
    """
    tail = np.zeros((len(batch), int(round(TAIL_S * sr))), np.float32)
    padded = np.concatenate([np.asarray(batch, np.float32), tail], axis=1)
    with float32_inputs():
        mel = extractor(list(padded), sampling_rate=sr, return_tensors="pt", padding="longest").input_features
    return mel, mel[:, 0, -1].numpy().astype(np.float64)


def _embed(encoder, mel, n_frames):
    """Convolutions and positions of the first ``n_frames`` encoder frames, tensor (batch, n_frames, d_model)."""
    import torch.nn.functional as F

    x = F.gelu(encoder.conv2(F.gelu(encoder.conv1(mel))))
    x = x.transpose(1, 2)[:, :n_frames]
    return x + encoder.embed_positions.weight[:n_frames].to(x.dtype)


def _keys_values(attention, h):
    """Keys and values of layer-normed states ``h`` (batch, frames, d), each (batch, heads, frames, head_dim)."""
    b, t, _ = h.shape
    shape = (b, t, attention.num_heads, attention.head_dim)
    return (attention.k_proj(h).view(shape).transpose(1, 2), attention.v_proj(h).view(shape).transpose(1, 2))


def rounded_levels(levels):
    """Padding levels rounded to :data:`LEVEL_STEP`, float64 array of the same shape: windows that share one pass."""
    return np.round(np.asarray(levels, np.float64) / LEVEL_STEP) * LEVEL_STEP


def padding_entry(encoder, level, n_mels, n_mel_frames):
    """Keys and values at every layer, and the output, of an input that is all padding at ``level``.

    Returns
    -------
    keys_values : list of (keys, values) per layer, each of shape (1, heads, n_positions, head_dim)
    output : torch.Tensor of shape (1, n_positions, d_model)
        The last layer's output after the final layer norm.
    """
    import torch

    weight = encoder.conv1.weight
    mel = torch.full((1, n_mels, n_mel_frames), float(level), dtype=weight.dtype, device=weight.device)
    h = _embed(encoder, mel, encoder.config.max_source_positions)
    keys_values = []
    for layer in encoder.layers:
        keys_values.append(_keys_values(layer.self_attn, layer.self_attn_layer_norm(h)))
        h = layer(h, None)
        h = h[0] if isinstance(h, tuple) else h
    return keys_values, encoder.layer_norm(h)


def padding_states(encoder, levels, n_mels, n_mel_frames):
    """The shared padding entries for ``levels``, computed once per rounded level and kept (LRU, bounded).

    Returns
    -------
    list of (keys_values, output) per window, as :func:`padding_entry` returns them
    """
    cache = _CACHES.setdefault(encoder, OrderedDict())
    weight, entries = encoder.conv1.weight, []
    for level in rounded_levels(levels):
        # a model moved or cast, or autocast turned on or off: new entries
        key = (round(float(level), 6), str(weight.dtype), str(weight.device), autocast_state(weight.device))
        if key not in cache:
            cache[key] = padding_entry(encoder, level, n_mels, n_mel_frames)
            entry_bytes = sum(t.numel() * t.element_size() for kv in cache[key][0] for t in kv)
            while len(cache) > 1 and len(cache) * entry_bytes > CACHE_BYTES:
                cache.popitem(last=False)
        cache.move_to_end(key)
        entries.append(cache[key])
    return entries


def _layer_with_padding(layer, x, pad_keys, pad_values):
    """One encoder layer over the window's frames ``x`` (batch, n, d), attending also to the padding's keys/values."""
    import torch
    import torch.nn.functional as F

    attention = layer.self_attn
    h = layer.self_attn_layer_norm(x)
    b, n, d = h.shape
    query = (attention.q_proj(h) * attention.scaling).view(b, n, attention.num_heads, -1).transpose(1, 2)
    keys, values = _keys_values(attention, h)
    keys = torch.cat([keys, pad_keys.to(keys.dtype)], dim=2)
    values = torch.cat([values, pad_values.to(values.dtype)], dim=2)
    out = F.scaled_dot_product_attention(query, keys, values, scale=1.0)
    x = x + attention.out_proj(out.transpose(1, 2).reshape(b, n, d))
    return x + layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(x))))


def shared_padding_states(encoder, extractor, batch, sr, device, top=None):
    """Encoder states of windows followed by Whisper's padding, the padding's states shared between windows.

    Parameters
    ----------
    encoder : transformers WhisperEncoder
    extractor : transformers WhisperFeatureExtractor
    batch : float32 array of shape (n_windows, n_samples)
        The windows, no longer than the model's input.
    sr : int
    device : torch.device
    top : int, optional
        The highest state wanted, below the last: the layers above it are not run and states ``0..top`` are
        returned (the same tensors as the first ``top + 1`` of the whole pass). Default: every layer.

    Returns
    -------
    tuple of torch.Tensor
        Layer 0 (the input to the first transformer layer) to the last: the
        window's frames, shape (n_windows, n_window_frames, d_model), except
        the last (after the final layer norm, what the decoder cross-attends
        to), which holds the whole input (n_windows, n_positions, d_model):
        the window's frames, then the shared padding's. With ``top``: layers 0 to ``top``, the window's frames.
    """
    import torch

    n_positions = encoder.config.max_source_positions
    n_window = int(np.ceil(batch.shape[1] / (2 * extractor.hop_length)))
    mel, levels = window_log_mel(extractor, batch, sr)
    entries = padding_states(encoder, levels, mel.shape[1], 2 * n_positions)
    x = _embed(encoder, mel.to(device=device, dtype=encoder.conv1.weight.dtype), n_window)
    states = [x]
    n_layers = len(encoder.layers)
    if top is not None and not 0 <= top < n_layers:
        raise ValueError(f"top must be a state below the last (0..{n_layers - 1}), got {top}")
    for i, layer in enumerate(encoder.layers[:n_layers if top is None else top]):
        pad_keys = torch.cat([kv[i][0][:, :, n_window:] for kv, _ in entries])
        pad_values = torch.cat([kv[i][1][:, :, n_window:] for kv, _ in entries])
        x = _layer_with_padding(layer, x, pad_keys, pad_values)
        states.append(x)
    if top is not None:
        return tuple(states)
    last = encoder.layer_norm(x)
    padding_out = torch.cat([out[:, n_window:] for _, out in entries]).to(last.dtype)
    states[-1] = torch.cat([last, padding_out], dim=1)
    return tuple(states)
