"""TR-level features from the hidden states of Whisper's decoder.

For the audio window of TR ``k`` (the same window as the encoder path: it
ends at the end of TR ``k`` and reaches back ``window_trs`` TRs,
:func:`encoding_kit.data.timebase.audio_window_bounds`), the decoder reads the
window's transcript, teacher-forced, and cross-attends to the encoder's
output for the window's audio (what the encoder reads is ``whisper_input``,
as in :mod:`.whisper_input`):

* the transcript is the aligned words whose onsets fall inside the window
  (``k + 1 - window_trs <= (onset - onset_offset) / tr < k + 1``), in story
  order, lower-cased as the alignment has them (curly apostrophes made
  straight), each with a leading space, as Whisper writes words;
* it follows the model's start tokens: ``<|startoftranscript|>``, then
  ``<|en|><|transcribe|>`` for multilingual models only (none for ``.en``
  models), then ``<|notimestamps|>`` where the tokenizer has it.

Pooling over the decoder's tokens (``token_pooling``):

* ``"tr"``: the mean over the tokens of the words of TR ``k`` (the window's
  last TR); a TR without words takes the state of the last token read (the
  last word of the window's earlier TRs, or the last start token when the
  window has no words);
* ``"last"``: the state of the last token read.

Causality: the features of TR ``k`` depend only on the audio before the end
of TR ``k`` and on the words whose onsets are before the end of TR ``k``
(and in the window). A word with its onset in TR ``k`` is read whole, as in
the text features, although its audio may go on after the TR ends.
"""

from __future__ import annotations

import numpy as np

from ..core.progress import tqdm
from ..core.runtime import autocast, precision, torch_device
from ..core.storage import FeatureCache, hash_array, processor_hash, weights_hash
from ..core.validation import check_audio_length
from ..data.timebase import TR, audio_window_bounds, time_base_of_words
from .audio import ALLOW_SHORT, AUDIO_BATCH, FRAME_POOLINGS, MOVED, audio_caches, pool_frames, windows_batch
from .extraction_run import accepts_moved_keywords, resolve_run
from .families import family_of
from .hub import hub_reachable
from .identity import model_key
from .loaded import LoadedModel, check_layers
from .local_tokenizers import trained_tokenizer
from .models import load_model
from .quantize import INT8_SUFFIX, is_quantized
from .whisper_ct2 import package_model_dir, package_tokenizer
from .whisper_input import (
    WHISPER_DEFAULT,
    WHISPER_INPUTS,
    whisper_encoder_states,
    whisper_input_seconds,
    window_frames,
)

TOKEN_POOLINGS = ("tr", "last")
MULTILINGUAL_VOCAB = 51865
"""Multilingual Whisper vocabularies have 51865 tokens or more; English-only (``.en``) ones 51864."""


def whisper_tokenizer(loaded):
    """The tokenizer of a loaded Whisper (its ``processor`` is the feature extractor only).

    Real weights offline (``source="whisper-tiny.en"``): the export's
    tokenizer, also read by the random real-size models that time a
    checkpoint (``"random-real-size"``); a checkpoint: its own; a random-weight stand-in: the
    byte-level tokenizer trained on the demo language, which its decoder was
    built for.
    """
    source = loaded.source.removesuffix(INT8_SUFFIX)  # an int8 copy reads what its original reads
    if source in ("whisper-tiny.en", "random-real-size"):  # a real-size timing model reads Whisper's own BPE
        return package_tokenizer(package_model_dir())
    if source == "random":
        return trained_tokenizer("bytelevel")
    from transformers import AutoTokenizer  # lazy: heavy

    return AutoTokenizer.from_pretrained(loaded.name, local_files_only=not hub_reachable())


def start_tokens(tokenizer, config):
    """Ids the decoder reads before the transcript, list of int (see the module docstring)."""
    vocab = tokenizer.get_vocab()
    prompt = [int(config.decoder_start_token_id)]
    if config.vocab_size >= MULTILINGUAL_VOCAB:
        prompt += [vocab[t] for t in ("<|en|>", "<|transcribe|>") if t in vocab]
    if "<|notimestamps|>" in vocab:
        prompt.append(vocab["<|notimestamps|>"])
    return prompt


def word_texts(words):
    """The words as the decoder reads them: lower-case, straight apostrophes, list of str."""
    column = "word_lower" if "word_lower" in words.columns else "word"
    return [str(w).lower().replace("\u2019", "'").strip() for w in words[column]]


def word_token_ids(tokenizer, texts):
    """Token ids of each word with its leading space, list of lists (each distinct word tokenized once).

    Byte-level BPE never merges across a space before a word, so the
    concatenation equals the tokens of the words joined by spaces.
    """
    distinct = sorted(set(texts))
    ids = tokenizer([" " + t for t in distinct], add_special_tokens=False).input_ids if distinct else []
    table = dict(zip(distinct, ids))
    return [table[t] if t else [] for t in texts]


def window_word_spans(onsets, n_trs, window_trs, tr=TR, onset_offset=0.0):
    """Words of each TR's window and of its last TR.

    Parameters
    ----------
    onsets : array of shape (n_words,)
        Word onsets (s, audio time).
    n_trs : int
    window_trs, tr, onset_offset : float

    Returns
    -------
    list of (int array, bool array), one per TR
        Indices (story order) of the words whose onsets are in the window of
        TR ``k``, and which of them are in TR ``k`` itself.
    """
    position = (np.asarray(onsets, float) - onset_offset) / tr + 1e-9  # in TRs; the tolerance of word_trs
    spans = []
    for k in range(n_trs):
        inside = np.flatnonzero((position >= k + 1 - window_trs) & (position < k + 1))
        spans.append((inside, position[inside] >= k))
    return spans


def _check_words(words):
    missing = [c for c in ("word", "start") if c not in getattr(words, "columns", [])]
    if missing:
        raise ValueError(f"words must be a DataFrame with columns 'word' and 'start' (onset, s) as load_align "
                         f"gives; missing {missing}")
    onsets = words["start"].to_numpy(float)
    if not np.isfinite(onsets).all():
        raise ValueError(f"words has {int((~np.isfinite(onsets)).sum())} onsets that are not numbers; load_align "
                         "interpolates the onsets of unaligned words")
    return onsets


def _token_layout(prompt, word_ids, span):
    """Decoder input of one window and the positions pooled by "tr" (list of int ids, list of int)."""
    inside, in_tr = span
    ids, pooled = list(prompt), []
    for index, last in zip(inside, in_tr):
        if last:
            pooled.extend(range(len(ids), len(ids) + len(word_ids[index])))
        ids.extend(word_ids[index])
    return ids, pooled


def _pooling_weights(layouts, length):
    """{pooling: float32 array (n_windows, length)}: rows that average each window's pooled positions."""
    weights = {p: np.zeros((len(layouts), length), np.float32) for p in TOKEN_POOLINGS}
    for row, (ids, pooled) in enumerate(layouts):
        weights["last"][row, len(ids) - 1] = 1.0
        chosen = pooled or [len(ids) - 1]  # a TR without words: the last token read
        weights["tr"][row, chosen] = 1.0 / len(chosen)
    return weights


def _decode(net, encoded, layouts, pad_id, device):
    """Pooled decoder states {pooling: {layer: (n_windows, d_model)}} of one batch, every layer.

    Right padding: the decoder is causal, so no real token attends to the padding.
    """
    import torch

    length = max(len(ids) for ids, _ in layouts)
    if length > net.config.max_target_positions:
        raise ValueError(f"a window's transcript has {length} tokens, more than the decoder's "
                         f"{net.config.max_target_positions} positions; use a shorter window_trs")
    ids = torch.full((len(layouts), length), pad_id, dtype=torch.long)
    for row, (tokens, _) in enumerate(layouts):
        ids[row, :len(tokens)] = torch.tensor(tokens)
    states = net.decoder(input_ids=ids.to(device), encoder_hidden_states=encoded, output_hidden_states=True,
                         use_cache=False).hidden_states
    weights = {p: torch.from_numpy(w).to(device) for p, w in _pooling_weights(layouts, length).items()}
    return {p: {layer: torch.einsum("bl,bld->bd", w, h.float()) for layer, h in enumerate(states)}
            for p, w in weights.items()}


@accepts_moved_keywords(*MOVED)
def whisper_decoder_features(wav, sr, words, n_trs, model, layers=None, window_trs=2, token_pooling="tr",
                             whisper_input=WHISPER_DEFAULT, tokenizer=None, *, timebase=None, run=None):
    """Hidden states of Whisper's decoder reading each TR window's transcript while hearing its audio.

    With the cache on, the encoder features of the same pass (every layer,
    both frame poolings) are stored too, under the keys of
    :func:`encoding_kit.features.audio.extract_audio_features` with the same
    ``window_trs`` and ``whisper_input``: asking for them afterwards costs
    nothing (the encoder is ~90 % of the decoder features' cost).

    Parameters
    ----------
    wav : array of shape (n_samples,)
        Mono story audio, sample 0 at audio time 0.
    sr : int
    words : DataFrame
        Columns ``word`` (or ``word_lower``) and ``start`` (onset, s), in
        story order, as :func:`encoding_kit.data.course_files.load_align` gives.
    n_trs : int
    model : str or LoadedModel
        A Whisper model (family ``"whisper"`` of :mod:`.families`).
    layers : int or list of int, optional
        Decoder hidden-state layers (0 = token and position embeddings, the
        last = after the final layer norm); ``None`` = all.
    window_trs : float
        Window length in TRs, ending at the end of each TR (audio and words).
    token_pooling : {"tr", "last"}
        See the module docstring.
    whisper_input : {"shared_padding", "padded", "window", "past"}
        What the encoder reads (:mod:`.whisper_input`; the options and their
        fidelity: :func:`encoding_kit.features.audio.extract_audio_features`);
        the decoder cross-attends to all of the encoder's output.
    tokenizer : tokenizer, optional
        Default :func:`whisper_tokenizer`.
    timebase : TimeBase, optional
        Time base of the audio windows and of the words in them; ``None`` takes the words' own
        (``words.attrs``, from ``load_align``; a table built by hand: 1.5 s and 0); a different one raises.
    run : ExtractionRun, optional
        How the extraction runs (:class:`~encoding_kit.features.extraction_run.ExtractionRun`; batch size default
        8 windows), as in :func:`encoding_kit.features.audio.extract_audio_features`; the encoder features it
        stores go to the same cache (``run.cache``, ``run.cache_dir``).

    Returns
    -------
    dict {layer: float32 array of shape (n_trs, d_model)}
    """
    run = resolve_run(run, "whisper_decoder_features")
    if token_pooling not in TOKEN_POOLINGS:
        raise ValueError(f"token_pooling must be one of {TOKEN_POOLINGS}, got {token_pooling!r}")
    if whisper_input not in WHISPER_INPUTS:
        raise ValueError(f"whisper_input must be one of {WHISPER_INPUTS}, got {whisper_input!r}")
    wav = np.asarray(wav, dtype=np.float32)
    onsets = _check_words(words)
    timebase = time_base_of_words(words, *((None, None) if timebase is None else (timebase.tr, timebase.onset_offset)))
    tr, onset_offset = timebase.tr, timebase.onset_offset
    loaded = model if isinstance(model, LoadedModel) else load_model(model, allow_standin=run.allow_standin)
    if family_of(loaded).name != "whisper":
        raise ValueError(f"whisper_decoder_features needs a Whisper model; {loaded.name} is {loaded.family}")
    # one activation scale per batch: later windows of a quantized model must not share it (see .quantize)
    batch_size = 1 if is_quantized(loaded) else run.batch(AUDIO_BATCH)
    tokenizer = whisper_tokenizer(loaded) if tokenizer is None else tokenizer
    net, dev = loaded.model, torch_device(run.device)
    net.to(dev).eval()
    layers = check_layers(layers, net.config.decoder_layers, loaded.name)
    prompt = start_tokens(tokenizer, net.config)
    word_ids = word_token_ids(tokenizer, word_texts(words))
    largest = max([*prompt, *(i for ids in word_ids for i in ids)])
    if largest >= net.config.vocab_size:
        raise ValueError(f"the tokenizer gives token id {largest}, but {loaded.name}'s decoder has "
                         f"{net.config.vocab_size} tokens: pass the model's own tokenizer")
    check_audio_length(wav, sr, n_trs, tr, onset_offset, run.allow_short_audio,
                       stacklevel=4, allow=ALLOW_SHORT)  # the caller, past the run= wrapper
    params = {"model": model_key(loaded), "source": loaded.source, "weights": weights_hash(net),
              "processor": processor_hash(loaded.processor), "window_trs": window_trs, "sr": sr, "n_trs": n_trs,
              "tr": tr, "onset_offset": onset_offset, "audio": hash_array(wav), "whisper_input": whisper_input,
              "prompt": prompt, "tokens": hash_array([" ".join(map(str, ids)) for ids in word_ids]),
              "onsets": hash_array(np.round(onsets, 6)), "precision": precision(dev)}
    stores = {p: FeatureCache("whisper_decoder", {**params, "token_pooling": p}, run.cache_dir, enabled=run.cache)
              for p in TOKEN_POOLINGS}
    cached = stores[token_pooling].load(layers)
    if cached is not None:
        return cached
    encoder_stores = audio_caches(loaded, wav, sr, n_trs, window_trs, timebase, whisper_input, FRAME_POOLINGS, run)
    layouts = [_token_layout(prompt, word_ids, span)
               for span in window_word_spans(onsets, n_trs, window_trs, tr, onset_offset)]
    with_encoder = any(store.missing(range(net.config.encoder_layers + 1)) for store in encoder_stores.values())
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else prompt[0]
    out, encoder_out = _run_windows(loaded, wav, sr, layouts, window_trs, tr, onset_offset, whisper_input, pad_id,
                                    batch_size, dev, run.progress, run.cache and with_encoder)
    for p, features in out.items():
        stores[p].save(features)
    for p, features in encoder_out.items():
        encoder_stores[p].save(features)
    return {layer: out[token_pooling][layer] for layer in layers}


def _run_windows(loaded, wav, sr, layouts, window_trs, tr, onset_offset, whisper_input, pad_id, batch_size, device,
                 progress, with_encoder):
    """Encoder and decoder over every TR's window, batch by batch.

    Returns
    -------
    decoder : dict {token_pooling: {layer: float32 array (n_trs, d_model)}}
    encoder : dict {frame_pooling: {layer: float32 array (n_trs, d_model)}}
        The encoder features of :func:`~encoding_kit.features.audio.extract_audio_features` (empty unless ``with_encoder``).
    """
    import torch  # lazy: heavy

    n_trs, net = len(layouts), loaded.model
    starts, stops = audio_window_bounds(n_trs, sr, tr, window_trs, onset_offset)
    window_samples = int(stops[0] - starts[0])
    input_s = whisper_input_seconds(loaded.processor, window_samples / sr, whisper_input, loaded.name, window_trs)
    starts = stops - int(round(input_s * sr))  # the encoder's input ends where the window ends
    out, encoder_out = {p: {} for p in TOKEN_POOLINGS}, {p: {} for p in (FRAME_POOLINGS if with_encoder else ())}

    def keep(target, pooled, b0):
        for p, by_layer in pooled.items():
            for layer, values in by_layer.items():
                target[p].setdefault(layer, np.zeros((n_trs, values.shape[-1]), np.float32))[b0:b0 + len(values)] \
                    = values.float().cpu().numpy()

    for b0 in tqdm(range(0, n_trs, batch_size), desc=f"{loaded.name} (decoder)", disable=not progress, leave=False):
        b1 = min(b0 + batch_size, n_trs)
        batch = windows_batch(wav, sr, starts[b0:b1], stops[b0:b1])
        with torch.inference_mode(), autocast(device):
            states = whisper_encoder_states(net, loaded.processor, batch, sr, whisper_input, device)
            keep(out, _decode(net, states[-1], layouts[b0:b1], pad_id, device), b0)
            if with_encoder:
                frames = [window_frames(h, window_samples, whisper_input) for h in states]
                keep(encoder_out, {p: {layer: pool_frames(h, p, window_trs) for layer, h in enumerate(frames)}
                                   for p in FRAME_POOLINGS}, b0)
    return out, encoder_out
