"""TR-level features from the hidden states of audio models.

The window of TR ``k`` ends at the end of TR ``k`` and reaches back
``window_trs`` TRs (the kit's time base, :mod:`encoding_kit.data.timebase`); the
model never hears anything after TR ``k``. Windows are cut batch by batch from
the waveform, so memory stays bounded on the 56-minute story.

Pooling over model frames (about 20 ms each):

* ``frame_pooling="mean"``: all frames of the window;
* ``frame_pooling="tr"``: only the frames inside TR ``k`` (the last TR of
  the window); the earlier part of the window serves as context.

Which models: every family of :mod:`.families` that reads audio (wav2vec2-like
models, Whisper's encoder, CLAP's audio branch). This loop does not know them:
the family gives the number of layers, the hidden states of a batch of windows,
the input length (Whisper reads more than the window with
``whisper_input="past"``) and the frame poolings it supports (CLAP's Swin
stages mix time and frequency, so it has ``"mean"`` only).
"""

from __future__ import annotations

import numpy as np

from ..core.progress import tqdm
from ..core.runtime import autocast, run_precision, torch_device
from ..core.storage import FeatureCache, hash_array, processor_hash, weights_hash
from ..core.validation import check_audio_length
from ..data.timebase import TimeBase, audio_window_bounds
from .extraction_run import accepts_moved_keywords, resolve_run
from .families import REGISTRY, family_of
from .identity import identity, model_key
from .loaded import LoadedModel, check_layers
from .models import known_family, load_model, model_type_of_name
from .quantize import is_quantized
from .whisper_input import WHISPER_DEFAULT, WHISPER_INPUTS

FRAME_POOLINGS = ("mean", "tr")
AUDIO_BATCH = 8
"""Audio windows per forward pass when the run does not say (``ExtractionRun(batch_size=None)``)."""
MOVED = ("batch_size", "device", "allow_standin", "cache", "cache_dir", "progress", "allow_short_audio")
"""The keywords of the audio extractors that moved into :class:`.ExtractionRun` (still accepted, with a warning)."""
ALLOW_SHORT = "run=ExtractionRun(allow_short_audio=True)"
"""How a caller of the audio extractors accepts short audio (named in the refusal)."""


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


def _forward(loaded, batch, sr, layers, poolings, window_trs, device, whisper_input=WHISPER_DEFAULT,
             window_samples=None):
    """Pooled hidden states {pooling: {layer: (batch, dim)}} of one batch of windows.

    ``batch`` holds the model's inputs, the window at their end (Whisper's ``"past"`` input is longer than the
    window: its last ``window_samples`` samples are the window). Where the family can, the layers above
    ``max(layers)`` are not run (:func:`highest_state`).
    """
    family = family_of(loaded)
    top = highest_state(family, family.n_layers(loaded.model.config), layers, whisper_input)
    extra = {} if top is None else {"top": top}
    states = family.window_states(loaded, batch, sr, window_samples, whisper_input, device, **extra)
    return {p: {layer: pool_frames(states[layer], p, window_trs) for layer in layers} for p in poolings}


def highest_state(family, n_layers, layers, whisper_input=WHISPER_DEFAULT):
    """``max(layers)`` when the family computes states ``0..max(layers)`` without the layers above, else ``None``.

    Only below the last state (it has the encoder's final norm) and for the inputs the family lists in
    ``lower_states``.
    """
    top = max(layers)
    return top if top < n_layers and whisper_input in family.lower_states else None


def audio_n_layers(loaded):
    """Hidden-state layers of an audio model (its family says where the config keeps them)."""
    return family_of(loaded).n_layers(loaded.model.config)


def audio_caches(loaded, wav, sr, n_trs, window_trs, timebase, whisper_input, poolings, run):
    """The feature caches of :func:`extract_audio_features`, one per frame pooling.

    Also used by :func:`encoding_kit.features.whisper_decoder.whisper_decoder_features`, which stores the
    encoder features of its own encoder pass under the same keys. ``run`` (:class:`.ExtractionRun`) gives the
    cache folder, whether the cache is on, and the device, whose precision the keys record.

    Returns
    -------
    dict {frame_pooling: FeatureCache}
    """
    ids = identity(loaded, "audio", lambda: audio_identity(loaded))  # without building a deferred stand-in
    params = {"model": model_key(loaded), "source": loaded.source, "weights": ids["weights"],
              "processor": ids["processor"], "window_trs": window_trs, "sr": sr, "n_trs": n_trs,
              "tr": float(timebase.tr), "onset_offset": float(timebase.onset_offset), "audio": hash_array(wav),
              "precision": run_precision(run.device)}
    if family_of(loaded).input_options:
        params["whisper_input"] = whisper_input
    return {p: FeatureCache("audio", {**params, "frame_pooling": p}, run.cache_dir, enabled=run.cache)
            for p in poolings}


def audio_identity(loaded):
    """The audio model's part of the cache key: weights and feature extractor hashes, hidden layers."""
    return {"weights": weights_hash(loaded.model), "processor": processor_hash(loaded.processor),
            "n_layers": family_of(loaded).n_layers(loaded.model.config)}


def _not_audio(name, model_type):
    audio = ", ".join(f.name for f in REGISTRY.families.values() if f.reads_audio)
    return (f"model {name!r} is a {model_type} text model; extract_audio_features needs a speech model (families: "
            f"{audio}), e.g. 'facebook/wav2vec2-base'; text models go to extract_text_features")


@accepts_moved_keywords(*MOVED)
def extract_audio_features(wav, sr, n_trs, model, layers=None, window_trs=2, frame_pooling="mean", *, timebase=None,
                           whisper_input=WHISPER_DEFAULT, run=None):
    """Hidden states of an audio model for the window ending at each TR.

    Parameters
    ----------
    wav : array of shape (n_samples,)
        Mono story audio, sample 0 at audio time 0.
    sr : int
        Sample rate (``AUDIO_SR`` of :mod:`encoding_kit.data.course_files` for the course models).
    n_trs : int
    model : str or LoadedModel
        A model of an audio family (:mod:`.families`).
    layers : int or list of int, optional
        Hidden-state layers (0 = the input to the first transformer layer);
        ``None`` = all.
    window_trs : float
        Window length in TRs, ending at the end of each TR.
    frame_pooling : {"mean", "tr"}
        ``"tr"`` is refused for CLAP (see the module docstring).
    timebase : TimeBase, optional
        Where the TRs lie in the audio (``story.timebase``); default ``TimeBase()`` (TR 1.5 s, scan start at
        audio time 0).
    whisper_input : {"shared_padding", "padded", "window", "past"}
        Whisper only (other models accept the default and refuse the rest):
        what the encoder reads (:mod:`.whisper_input`). All four are causal.

        * ``"shared_padding"`` (default, what every notebook reads): the padded
          input at about a window's cost; the window's frames are encoded as in
          ``"padded"`` and attend to padding states computed once per padding
          level from a silent input (:mod:`.whisper_padding`). The one
          approximation: the padding's states do not see the window.
        * ``"padded"``: the window then zeros up to the model's input (30 s),
          exactly as Whisper was trained; the reference the others are
          measured against, and the slowest.
        * ``"window"``: the window alone, the encoder's position table cut to
          the window's frames (a 3 s window: 10x fewer frames); its frames do
          not attend to any padding, so it departs most from ``"padded"``.
        * ``"past"``: the model's whole input of real audio ending at the end
          of the TR, the window's frames last (as costly as ``"padded"``).

        Their fidelity to ``"padded"`` (per-dimension r of the features,
        held-out encoding r) and their speed are measured on the real Whisper
        tiny.en weights by ``benchmarks/bench_fast_paths.py --only whisper``.
    run : ExtractionRun, optional
        How the extraction runs (:class:`~encoding_kit.features.extraction_run.ExtractionRun`: batch size,
        default 8 windows; device; stand-ins; cache; progress bar; ``allow_short_audio``); default
        ``ExtractionRun()``. The keywords ``batch_size``, ``device``, ``allow_standin``, ``cache``,
        ``cache_dir``, ``progress`` and ``allow_short_audio`` moved there; passed directly they still work, with a
        :class:`~encoding_kit.features.extraction_run.MovedKeywordWarning`.

    Returns
    -------
    dict {layer: float32 array of shape (n_trs, dim)}
    """
    run = resolve_run(run, "extract_audio_features")
    timebase = TimeBase() if timebase is None else timebase
    if frame_pooling not in FRAME_POOLINGS:
        raise ValueError(f"frame_pooling must be 'mean' or 'tr', got {frame_pooling!r}")
    if whisper_input not in WHISPER_INPUTS:
        raise ValueError(f"whisper_input must be one of {WHISPER_INPUTS}, got {whisper_input!r}")
    wav = np.asarray(wav, dtype=np.float32)
    named = known_family(model) if isinstance(model, str) else None  # a name the kit knows: refused before loading
    if named is not None and not named.reads_audio:
        raise ValueError(_not_audio(model, model_type_of_name(model)))
    loaded = model if isinstance(model, LoadedModel) else load_model(model, allow_standin=run.allow_standin)
    family = family_of(loaded)
    if not family.reads_audio:
        raise ValueError(_not_audio(loaded.name, loaded.family))
    # one activation scale per batch: later windows of a quantized model must not share it (see .quantize)
    batch_size = 1 if is_quantized(loaded) else run.batch(AUDIO_BATCH)
    n_layers = identity(loaded, "audio", lambda: audio_identity(loaded))["n_layers"]
    layers = check_layers(layers, n_layers, loaded.name)
    if whisper_input != WHISPER_DEFAULT and whisper_input not in family.input_options:
        raise ValueError(f"whisper_input={whisper_input!r} applies to Whisper models only; {loaded.name} is "
                         f"{loaded.family} ({family.name})")
    if frame_pooling not in family.frame_poolings:
        raise ValueError(f"frame_pooling='{frame_pooling}' is not available for {loaded.name} ({family.name}): its "
                         "hidden states mix time and frequency patches of the whole window, so no frames belong to "
                         f"the last TR alone; use frame_pooling={family.frame_poolings[0]!r} (a shorter window_trs "
                         "narrows it)")
    # One pass gives every layer it runs and every frame pooling: with the cache on, all of them are stored (all
    # layers, or with store_all_layers=False 0..max(layers) where the family skips the layers above).
    supported = family.frame_poolings
    top = None if run.store_all_layers else highest_state(family, n_layers, layers, whisper_input)
    computed = n_layers if top is None else top
    todo, poolings = (list(range(computed + 1)), supported) if run.cache else (layers, (frame_pooling,))
    check_audio_length(wav, sr, n_trs, timebase.tr, timebase.onset_offset, run.allow_short_audio,
                       stacklevel=4, allow=ALLOW_SHORT)  # the caller, past the run= wrapper
    stores = audio_caches(loaded, wav, sr, n_trs, window_trs, timebase, whisper_input, poolings, run)
    cached = stores[frame_pooling].load(layers)
    if cached is not None:
        return cached
    import torch  # lazy, and only when computing: heavy (about 1.5 s), and a request the cache answers needs none

    dev = torch_device(run.device)
    loaded.model.to(dev).eval()
    if family.prepare is not None:
        family.prepare(loaded.model)
    starts, stops = audio_window_bounds(n_trs, sr, timebase.tr, window_trs, timebase.onset_offset)
    window_samples = int(stops[0] - starts[0])
    if family.input_seconds is not None:  # the input ends where the window ends; it may reach further back
        input_s = family.input_seconds(loaded, window_samples / sr, whisper_input, window_trs)
        starts = stops - int(round(input_s * sr))
    out = {p: {} for p in poolings}
    for b0 in tqdm(range(0, n_trs, batch_size), desc=f"{loaded.name} (audio)", disable=not run.progress,
                   leave=False):
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
