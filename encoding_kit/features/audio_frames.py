"""Sub-TR frame sequences of an audio model: the input of the time-resolved encoder.

Instead of one pooled vector per TR (:mod:`.audio`), each TR keeps a short
sequence: the model's frames (Whisper encoder frames are 20 ms) that fall
inside the TR, averaged into ``frames_per_tr`` equal bins. The window the
model reads still ends at the end of the TR and reaches back ``window_trs``
TRs (the kit's time base), so every frame has heard up to 1.5 s of context
before it and nothing after the TR's end.

With FIR delays (:func:`encoding_kit.encoding.cv.make_delays`) the frames of TRs
``t - 1 .. t - 4`` become one sequence of ``4 * frames_per_tr`` frames
covering 1.5-7.5 s before the end of TR ``t``; :func:`frame_times` gives the
time of each position, in seconds before that TR's end.
"""

from __future__ import annotations

import numpy as np

from ..core.progress import tqdm
from ..core.runtime import autocast, precision, torch_device
from ..core.storage import FeatureCache, hash_array, weights_hash
from ..core.validation import check_audio_length
from ..data.timebase import TR, TimeBase, audio_window_bounds
from .audio import ALLOW_SHORT, AUDIO_BATCH, windows_batch
from .extraction_run import accepts_moved_keywords, resolve_run
from .families import REGISTRY, family_of
from .identity import model_key
from .loaded import LoadedModel, check_layers
from .models import load_model
from .whisper_input import WHISPER_INPUTS

MOVED_FRAMES = ("batch_size", "device", "allow_standin", "cache", "cache_dir", "progress")
"""The keywords of :func:`extract_frame_sequences` that moved into :class:`.ExtractionRun` (it never took
``allow_short_audio``: that one is only a field of the run)."""


def bin_last_tr(hidden, window_trs, frames_per_tr):
    """Average the frames of the window's last TR into ``frames_per_tr`` equal bins.

    Parameters
    ----------
    hidden : array or tensor of shape (n_windows, n_frames, dim)
        The window's frames, oldest first.
    window_trs : int
    frames_per_tr : int

    Returns
    -------
    array or tensor of shape (n_windows, frames_per_tr, dim)
    """
    n = hidden.shape[1]
    first = int(np.floor(n * (window_trs - 1) / window_trs)) if window_trs > 1 else 0
    last_tr = hidden[:, first:]
    if last_tr.shape[1] < frames_per_tr:
        raise ValueError(f"the last TR of the window has {last_tr.shape[1]} model frames, fewer than "
                         f"frames_per_tr={frames_per_tr}")
    edges = np.linspace(0, last_tr.shape[1], frames_per_tr + 1).round().astype(int)
    bins = [last_tr[:, a:b].mean(1) for a, b in zip(edges[:-1], edges[1:])]
    if isinstance(bins[0], np.ndarray):
        return np.stack(bins, 1)
    import torch  # lazy: heavy

    return torch.stack(bins, 1)


def frame_times(delays, frames_per_tr, tr=TR):
    """Centre of each frame of a delayed sequence, in seconds before the end of the predicted TR.

    Parameters
    ----------
    delays : sequence of int
        The FIR delays (in TRs) in the order :func:`~encoding_kit.encoding.cv.make_delays` stacks them.
    frames_per_tr : int

    Returns
    -------
    float array of shape (len(delays) * frames_per_tr,)
        Position ``j * frames_per_tr + f`` is frame ``f`` (oldest first) of
        delay ``delays[j]``: the TR ``t - d`` ends ``d * tr`` s before TR
        ``t`` does, and its frame ``f`` is centred ``(f + 0.5) / frames_per_tr``
        of a TR after that TR's start.
    """
    width = tr / frames_per_tr
    return np.array([d * tr + tr - (f + 0.5) * width for d in delays for f in range(frames_per_tr)])


@accepts_moved_keywords(*MOVED_FRAMES)
def extract_frame_sequences(wav, sr, n_trs, model, layers=None, frames_per_tr=5, window_trs=2, *, timebase=None,
                            whisper_input="window", run=None):
    """Frames of the last TR of each TR's window, binned: {layer: (n_trs, frames_per_tr, dim)}.

    Parameters
    ----------
    wav : array of shape (n_samples,)
    sr : int
    n_trs : int
    model : str or LoadedModel
        A model of an audio family whose frames are a sequence over time (:mod:`.families`: Whisper,
        wav2vec2-like; not CLAP).
    layers : int or list of int, optional
        Hidden-state layers (0 = input to the first layer); ``None`` = all.
    frames_per_tr : int
        Sub-TR bins (5 at a 1.5 s TR: 0.3 s each).
    window_trs : int
        Window length in TRs (the earlier TRs are context only).
    whisper_input : {"padded", "window", "past"}
        What Whisper's encoder reads (:mod:`.whisper_input`); default the
        window alone (a tenth of the cost of ``"padded"``).
    timebase : TimeBase, optional
        As in :func:`encoding_kit.features.audio.extract_audio_features`.
    run : ExtractionRun, optional
        How the extraction runs (:class:`~encoding_kit.features.extraction_run.ExtractionRun`; batch size default
        8 windows); as in :func:`encoding_kit.features.audio.extract_audio_features`.

    Returns
    -------
    dict {layer: float32 array of shape (n_trs, frames_per_tr, dim)}
    """
    import torch  # lazy: heavy

    run = resolve_run(run, "extract_frame_sequences")
    timebase = TimeBase() if timebase is None else timebase
    tr, onset_offset = float(timebase.tr), float(timebase.onset_offset)
    wav = np.asarray(wav, dtype=np.float32)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, allow_standin=run.allow_standin)
    family = family_of(loaded)
    if not (family.reads_audio and family.frames_in_time):
        usable = [f.name for f in REGISTRY.families.values() if f.reads_audio and f.frames_in_time]
        raise ValueError(f"model={loaded.name!r} is {loaded.family} ({family.name}); frame sequences need a model "
                         f"whose frames are a sequence over time: {usable}")
    if whisper_input not in WHISPER_INPUTS:
        raise ValueError(f"whisper_input must be one of {WHISPER_INPUTS}, got {whisper_input!r}")
    if int(frames_per_tr) < 1 or int(window_trs) != window_trs or window_trs < 1:
        raise ValueError(f"frames_per_tr and window_trs must be positive integers, got {frames_per_tr}, {window_trs}")
    batch_size = run.batch(AUDIO_BATCH)
    dev = torch_device(run.device)
    loaded.model.to(dev).eval()
    if family.prepare is not None:
        family.prepare(loaded.model)
    n_layers = family.n_layers(loaded.model.config)
    layers = check_layers(layers, n_layers, loaded.name)
    starts, stops = audio_window_bounds(n_trs, sr, tr, window_trs, onset_offset)
    window_samples = int(stops[0] - starts[0])
    if family.input_seconds is not None:
        input_s = family.input_seconds(loaded, window_samples / sr, whisper_input, window_trs)
        starts = stops - int(round(input_s * sr))
    check_audio_length(wav, sr, n_trs, tr, onset_offset, run.allow_short_audio,
                       stacklevel=4, allow=ALLOW_SHORT)  # the caller, past the run= wrapper
    params = {"model": model_key(loaded), "source": loaded.source, "weights": weights_hash(loaded.model), "sr": sr,
              "n_trs": n_trs, "tr": tr, "onset_offset": onset_offset, "window_trs": window_trs,
              "frames_per_tr": int(frames_per_tr), "audio": hash_array(wav), "precision": precision(dev),
              "whisper_input": whisper_input if family.input_options else None}
    store = FeatureCache("audio-frames", params, run.cache_dir, enabled=run.cache)
    cached = store.load(layers)
    if cached is not None:
        return cached
    todo = list(range(n_layers + 1)) if run.cache else layers  # one pass stores every layer
    out = {}
    for b0 in tqdm(range(0, n_trs, batch_size), desc=f"{loaded.name} (frames)", disable=not run.progress,
                   leave=False):
        batch = windows_batch(wav, sr, starts[b0:b0 + batch_size], stops[b0:b0 + batch_size])
        with torch.inference_mode(), autocast(dev):
            states = family.window_states(loaded, batch, sr, window_samples, whisper_input, dev)
        for layer in todo:
            binned = bin_last_tr(states[layer].float(), window_trs, frames_per_tr).cpu().numpy()
            out.setdefault(layer, np.zeros((n_trs, *binned.shape[1:]), np.float32))[b0:b0 + len(batch)] = binned
    store.save(out)
    return {layer: out[layer] for layer in layers}
