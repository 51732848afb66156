"""TR-level features from the hidden states of audio models.

The window of TR ``k`` ends at the end of TR ``k`` and reaches back
``window_trs`` TRs (the kit's time base, :mod:`encoding_kit.data.timebase`); the
model never hears anything after TR ``k``. Windows are cut batch by batch from
the waveform, so memory stays bounded on the 56-minute story.

Pooling over model frames (about 20 ms each):

* ``frame_pooling="mean"``: all frames of the window;
* ``frame_pooling="tr"``: only the frames inside TR ``k`` (the last TR of
  the window); the earlier part of the window serves as context.

Families: wav2vec2, WavLM and HuBERT (``AutoModel`` + feature extractor);
Whisper (encoder hidden states; what the encoder reads is
``whisper_input``, see :mod:`.whisper_input`: the window padded with zeros
to the model's input as it was trained, the window alone, or the window
after real past audio; only the encoder frames of the window are pooled); CLAP (audio branch:
the Swin stages' hidden states averaged over time-frequency; CLAP works at
48 kHz, so each window is resampled after it is cut, and repeat-padded to
its 10 s input as it was trained; a longer window keeps its last 10 s; its
log-mel input is computed in torch, equal to its feature extractor's).
CLAP has only ``frame_pooling="mean"``: its Swin stages mix time and
frequency patches of the repeat-padded window, so no frames belong to the
last TR alone; asking it for ``"tr"`` raises a ValueError.
"""

from __future__ import annotations

import numpy as np

from ..core.progress import tqdm
from ..core.runtime import autocast, float32_inputs, precision, torch_device
from ..core.storage import FeatureCache, hash_array, processor_hash, weights_hash
from ..core.validation import check_audio_length
from ..data.timebase import TR, audio_window_bounds
from .identity import model_key
from .models import AUDIO_FAMILIES, LoadedModel, check_layers, load_model, model_family
from .quantize import is_quantized
from .wavlm_layout import store_attention_input_time_first
from .whisper_input import WHISPER_INPUTS, whisper_input_seconds, whisper_window_states

FRAME_POOLINGS = ("mean", "tr")


def windows_batch(wav, sr, starts, stops):
    """Cut windows [start, stop) from ``wav`` with zeros outside it, array (n, length)."""
    length = int(stops[0] - starts[0])
    out = np.zeros((len(starts), length), np.float32)
    for r, (a, b) in enumerate(zip(starts, stops)):
        lo, hi = max(a, 0), min(b, len(wav))
        if hi > lo:
            out[r, lo - a:hi - a] = wav[lo:hi]
    return out


def pool_frames(hidden, pooling, window_trs, n_valid=None):
    """hidden: (batch, frames, dim) -> (batch, dim); the window's frames are the first ``n_valid`` (all if None)."""
    n = hidden.shape[1] if n_valid is None else n_valid
    hidden = hidden[:, :n]
    n = hidden.shape[1]
    if pooling == "tr":
        first = int(np.floor(n * (window_trs - 1) / window_trs)) if window_trs > 1 else 0
        hidden = hidden[:, first:]
    return hidden.float().mean(1)


def _forward(loaded, batch, sr, layers, poolings, window_trs, device, whisper_input="padded", window_samples=None):
    """Pooled hidden states {pooling: {layer: (batch, dim)}} of one batch of windows.

    ``batch`` holds the model's inputs, the window at their end (Whisper's ``"past"`` input is longer than the
    window: its last ``window_samples`` samples are the window).
    """

    family, net, proc = loaded.family, loaded.model, loaded.processor
    if family == "whisper":
        states = whisper_window_states(net, proc, batch, sr, window_samples, whisper_input, device)
        return {p: {layer: pool_frames(states[layer], p, window_trs) for layer in layers} for p in poolings}
    if family == "clap":
        # CLAP works at 48 kHz. Each window is resampled after it is cut, so the resampling filter cannot
        # reach audio after the end of the TR (resampling the whole story first would leak a few ms).
        from fractions import Fraction

        from scipy.signal import resample_poly

        target = proc.feature_extractor.sampling_rate
        ratio = Fraction(target, sr)
        batch = resample_poly(batch, ratio.numerator, ratio.denominator, axis=1).astype(np.float32)
        # A window longer than CLAP's input keeps its most recent part (the extractor would crop at random).
        batch = batch[:, -int(proc.feature_extractor.max_length_s * target):]
        feats = clap_log_mel(batch, proc.feature_extractor).to(device)
        states = net.audio_model(input_features=feats, output_hidden_states=True).hidden_states
        pooled = {layer: states[layer].float().mean(dim=(2, 3)) for layer in layers}  # over time and frequency
        return {p: pooled for p in poolings}
    with float32_inputs():
        inputs = proc(list(batch), sampling_rate=sr, return_tensors="pt")
    states = net(inputs.input_values.to(device), output_hidden_states=True).hidden_states
    return {p: {layer: pool_frames(states[layer], p, window_trs) for layer in layers} for p in poolings}


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


def _n_layers(loaded):
    config = loaded.model.config
    if loaded.family == "whisper":
        return config.encoder_layers
    if loaded.family == "clap":
        return len(config.audio_config.depths)
    return config.num_hidden_layers


def audio_caches(loaded, wav, sr, n_trs, window_trs, tr, onset_offset, whisper_input, device, poolings,
                 cache_dir=None, enabled=True):
    """The feature caches of :func:`extract_audio_features`, one per frame pooling.

    Also used by :func:`encoding_kit.features.whisper_decoder.whisper_decoder_features`, which stores the
    encoder features of its own encoder pass under the same keys.

    Returns
    -------
    dict {frame_pooling: FeatureCache}
    """
    params = {"model": model_key(loaded), "source": loaded.source, "weights": weights_hash(loaded.model),
              "processor": processor_hash(loaded.processor), "window_trs": window_trs, "sr": sr, "n_trs": n_trs,
              "tr": tr, "onset_offset": onset_offset, "audio": hash_array(wav),
              "precision": precision(device)}
    if loaded.family == "whisper":
        params["whisper_input"] = whisper_input
    return {p: FeatureCache("audio", {**params, "frame_pooling": p}, cache_dir, enabled=enabled) for p in poolings}


def _not_audio(name, family):
    return (f"model {name!r} is a {family} text model; extract_audio_features needs a speech model "
            f"({', '.join(AUDIO_FAMILIES)}), e.g. 'facebook/wav2vec2-base'; text models go to extract_text_features")


def extract_audio_features(wav, sr, n_trs, model, layers=None, window_trs=2, frame_pooling="mean", batch_size=8,
                           tr=TR, onset_offset=0.0, device=None, allow_standin=False, cache=True, cache_dir=None,
                           progress=True, allow_short_audio=False, whisper_input="padded"):
    """Hidden states of an audio model for the window ending at each TR.

    Parameters
    ----------
    wav : array of shape (n_samples,)
        Mono story audio, sample 0 at audio time 0.
    sr : int
        Sample rate (16 kHz for the course models).
    n_trs : int
    model : str or LoadedModel
    layers : int or list of int, optional
        Hidden-state layers (0 = the input to the first transformer layer);
        ``None`` = all.
    window_trs : float
        Window length in TRs, ending at the end of each TR.
    frame_pooling : {"mean", "tr"}
        ``"tr"`` is refused for CLAP (see the module docstring).
    batch_size : int
    tr, onset_offset : float
        Time base.
    device : str, optional
    allow_standin, cache, cache_dir, progress
        As in :func:`extract_text_features`.
    allow_short_audio : bool
        Accept audio more than 2 TRs shorter than the scan (zero-filled, with a
        warning); see :func:`encoding_kit.core.validation.check_audio_length`.
    whisper_input : {"padded", "window", "past"}
        Whisper only: what the encoder reads (:mod:`.whisper_input`).
        ``"padded"``: the window then zeros up to the model's input (30 s),
        as Whisper was trained; ``"window"``: the window alone, the encoder's
        position table cut to the window's frames (a 3 s window: 10x fewer
        frames); ``"past"``: the model's whole input of real audio ending at
        the end of the TR, the window's frames last. All three are causal.

    Returns
    -------
    dict {layer: float32 array of shape (n_trs, dim)}
    """
    import torch

    if frame_pooling not in FRAME_POOLINGS:
        raise ValueError(f"frame_pooling must be 'mean' or 'tr', got {frame_pooling!r}")
    wav = np.asarray(wav, dtype=np.float32)
    if isinstance(model, str) and model_family(model) not in (*AUDIO_FAMILIES, "unknown"):
        raise ValueError(_not_audio(model, model_family(model)))
    loaded = model if isinstance(model, LoadedModel) else load_model(model, allow_standin=allow_standin)
    if loaded.family not in (*AUDIO_FAMILIES, "unknown"):
        raise ValueError(_not_audio(loaded.name, loaded.family))
    if is_quantized(loaded):  # one activation scale per batch: later windows must not share it (see .quantize)
        batch_size = 1
    dev = torch_device(device)
    loaded.model.to(dev).eval()
    if loaded.family == "wavlm":  # its attention's projections stay one product under bf16 autocast
        store_attention_input_time_first(loaded.model)
    layers = check_layers(layers, _n_layers(loaded), loaded.name)
    if whisper_input not in WHISPER_INPUTS:
        raise ValueError(f"whisper_input must be one of {WHISPER_INPUTS}, got {whisper_input!r}")
    if whisper_input != "padded" and loaded.family != "whisper":
        raise ValueError(f"whisper_input={whisper_input!r} applies to Whisper models only; {loaded.name} is "
                         f"{loaded.family}")
    supported = ("mean",) if loaded.family == "clap" else FRAME_POOLINGS
    if frame_pooling not in supported:
        raise ValueError(f"frame_pooling='{frame_pooling}' is not available for {loaded.name} (CLAP): its audio "
                         "branch mixes time and frequency patches of the whole repeat-padded window, so no frames "
                         "belong to the last TR alone; use frame_pooling='mean' (a shorter window_trs narrows it)")
    # One pass gives every layer and every frame pooling: with the cache on, all of them are stored.
    todo, poolings = (list(range(_n_layers(loaded) + 1)), supported) if cache else (layers, (frame_pooling,))
    starts, stops = audio_window_bounds(n_trs, sr, tr, window_trs, onset_offset)
    window_samples = int(stops[0] - starts[0])
    if loaded.family == "whisper":  # the encoder's input ends where the window ends; "past" reaches further back
        input_s = whisper_input_seconds(loaded.processor, window_samples / sr, whisper_input, loaded.name, window_trs)
        starts = stops - int(round(input_s * sr))
    check_audio_length(wav, sr, n_trs, tr, onset_offset, allow_short_audio)
    stores = audio_caches(loaded, wav, sr, n_trs, window_trs, tr, onset_offset, whisper_input, dev, poolings,
                          cache_dir, cache)
    cached = stores[frame_pooling].load(layers)
    if cached is not None:
        return cached
    out = {p: {} for p in poolings}
    for b0 in tqdm(range(0, n_trs, batch_size), desc=f"{loaded.name} (audio)", disable=not progress, leave=False):
        batch = windows_batch(wav, sr, starts[b0:b0 + batch_size], stops[b0:b0 + batch_size])
        with torch.inference_mode(), autocast(dev):
            pooled = _forward(loaded, batch, sr, todo, poolings, window_trs, dev, whisper_input, window_samples)
        for p, by_layer in pooled.items():
            for layer, values in by_layer.items():
                out[p].setdefault(layer, np.zeros((n_trs, values.shape[-1]), np.float32))[b0:b0 + len(batch)] = \
                    values.float().cpu().numpy()
    for p, features in out.items():
        stores[p].save(features)
    return {layer: out[frame_pooling][layer] for layer in layers}
