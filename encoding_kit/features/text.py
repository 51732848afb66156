"""Word-level features from the hidden states of text models.

What the model sees (each rule below exists because the course's sample code broke it):

* The story text is the words joined with single spaces and tokenized *once*
  with the model's own tokenizer; the ids that reach the model are slices of
  exactly that sequence (so GPT-2 sees ``'ĠThis'``, never the course code's
  re-tokenized ``'ĠÄłThis'``), with the model's own special tokens added around
  each window (``[CLS] ... [SEP]`` for BERT, ``<s>`` for Llama).
* The context of word ``i`` is the last ``context_tokens`` tokens of the story
  up to and including word ``i``'s last token; nothing after it.
* ``word_pooling="last"`` takes the hidden state of the word's last token (not
  ``[SEP]``), ``"mean"`` the mean over the word's tokens.

Three modes:

* ``"exact"``: one window per word (the definition; O(words x context)).
* ``"tr"`` (any model; meant for bidirectional ones such as BERT): the words
  of one TR share one window, which ends at the TR's last word and holds
  ``context_tokens`` tokens. About 3.7x fewer windows than exact mode on the
  course story (8,267 words in 2,249 TRs). The allowed lookahead: a word sees
  the later words of its own TR (at most 1.5 s of speech), never a word of a
  later TR, so every TR-level feature (words pooled into TRs) still depends
  only on words up to the end of its TR. Needs the words' TRs (a DataFrame
  with a ``tr`` column, as :func:`~encoding_kit.data.course_files.load_align` gives).
* ``"strided"`` (models shown to be causal, see
  :func:`~encoding_kit.features.causality.is_causal`): windows of ``context_tokens + stride``
  tokens moved by ``stride``; each token is read from the window in which it
  has at least ``context_tokens`` tokens before it (or the whole story so
  far), so each token is processed ``(context_tokens + stride) / stride``
  times. The default stride ``context_tokens // 4`` processes each token 5
  times and gives every word between ``context_tokens`` and
  ``1.25 * context_tokens`` tokens of context: a smaller stride is closer to
  exact mode and slower. Bidirectional models (BERT, RoBERTa) would let words
  see later words in a shared window, so strided mode refuses every model
  not shown to be causal.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import numpy as np

from ..core.progress import tqdm
from ..core.runtime import autocast, run_precision, torch_device
from ..core.storage import FeatureCache, hash_array, processor_hash, weights_hash
from ..core.validation import check_int
from ..data.timebase import time_base_of_words
from .causality import causality
from .early_exit import can_stop_early, lower_states
from .extraction_run import accepts_moved_keywords, resolve_run
from .identity import identity, model_key
from .loaded import LoadedModel, check_layers
from .models import load_model, max_positions
from .quantize import is_quantized
from .text_windows import (  # noqa: F401 - special_template and usable_contexts are public here
    fill_tokenless_words,
    special_template,
    text_inputs,
    usable_contexts,
    word_windows,
)
from .transcript import load_transcript, restore_punctuation


@dataclass
class StoryTokens:
    """The story tokenized once, with the word of every token.

    Attributes
    ----------
    text : str
    ids : int array of shape (n_tokens,)
    token_word : int array of shape (n_tokens,)
        Index of the word each token belongs to.
    word_first, word_last : int arrays of shape (n_words,)
        First and last token of each word; -1 for words with no token.
    """

    text: str
    ids: np.ndarray
    token_word: np.ndarray
    word_first: np.ndarray
    word_last: np.ndarray


WORD_POOLINGS = ("last", "mean")
TEXT_MODES = ("exact", "strided", "tr")
TEXT_BATCH = 16
"""Text windows per forward pass when the run does not say (``ExtractionRun(batch_size=None)``)."""
MOVED = ("batch_size", "device", "allow_standin", "cache", "cache_dir", "progress")
"""The keywords of :func:`extract_text_features` that moved into :class:`.ExtractionRun` (still accepted, with a
warning)."""


def story_text(words, normalize_apostrophes=True):
    """Join words with single spaces (unicode apostrophes -> ``'`` by default; empty rows add nothing).

    Returns
    -------
    text : str
    spans : list of (start, end) character offsets of each word
    """
    words = [str(w).strip() for w in words]
    if normalize_apostrophes:
        words = [w.replace("’", "'").replace("‘", "'") for w in words]
    spans, pos = [], 0
    for w in words:  # empty rows add no text (and no extra space)
        start = pos + 1 if (w and pos) else pos
        spans.append((start, start + len(w)))
        pos = start + len(w)
    return " ".join(w for w in words if w), spans


def tokenize_story(words, tokenizer, normalize_apostrophes=True):
    """Tokenize the story text once and map every token to its word.

    Parameters
    ----------
    words : sequence of str
    tokenizer : a fast Hugging Face tokenizer (offsets are needed)

    Returns
    -------
    StoryTokens
    """
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(f"{type(tokenizer).__name__} is not a fast tokenizer; word offsets need one (use_fast=True)")
    text, spans = story_text(words, normalize_apostrophes)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = np.asarray(enc["input_ids"], dtype=np.int64)
    # The space before a word belongs to it (GPT-2's 'Ġ', SentencePiece's '▁').
    char_word = np.full(len(text) + 1, -1)
    for i, (start, end) in enumerate(spans):
        if end > start:
            char_word[max(0, start - 1):end] = i
    token_word = np.array([char_word[max(s, e - 1)] if e > s else -1 for s, e in enc["offset_mapping"]], dtype=int)
    token_word = np.maximum.accumulate(np.where(token_word < 0, 0, token_word)) if len(token_word) else token_word
    n = len(spans)
    first, last = np.full(n, -1), np.full(n, -1)
    for j, w in enumerate(token_word):
        if first[w] < 0:
            first[w] = j
        last[w] = j
    return StoryTokens(text, ids, token_word, first, last)


def _resolve_model(model, tokenizer, allow_standin):
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, str):
        return load_model(model, allow_standin=allow_standin)
    if tokenizer is None:
        raise ValueError("pass tokenizer= together with a loaded model")
    return LoadedModel(model, tokenizer, getattr(model.config, "_name_or_path", "model"), "given",
                       model.config.model_type)


def text_identity(loaded):
    """The text model's part of the cache key: revision, weights and tokenizer hashes, hidden layers."""
    net, tok = text_inputs(loaded)
    return {"revision": getattr(net.config, "_commit_hash", None), "weights": weights_hash(net),
            "processor": processor_hash(tok), "n_layers": net.config.num_hidden_layers}


@accepts_moved_keywords(*MOVED)
def extract_text_features(words, model, tokenizer=None, layers=None, context_tokens=200, word_pooling="last",
                          mode="exact", stride=None, *, normalize_apostrophes=True, transcript=None, run=None):
    """Hidden states of a text model for every word of the story.

    Parameters
    ----------
    words : sequence of str, or DataFrame with a ``word`` column
        The story in order (unaligned words included); ``mode="tr"`` needs
        the DataFrame with its ``tr`` column.
    model : str, LoadedModel or transformers model
        Hugging Face id / folder, or a loaded model (then pass ``tokenizer``).
    tokenizer : fast tokenizer, optional
    layers : int or list of int, optional
        Hidden-state layers (0 = embeddings); ``None`` = all.
    context_tokens : int
        Tokens of context up to and including the word.
    word_pooling : {"last", "mean"}
    mode : {"exact", "strided", "tr"}
        See the module docstring; ``"tr"`` lets a word see the rest of its own TR.
    stride : int, optional
        Strided mode step; default ``context_tokens // 4`` (measured in
        ``benchmarks/bench_text_features.py``: // 2 fell just below r = 0.9
        against exact mode in the last layer of a RoPE model).
    normalize_apostrophes : bool
        Read unicode apostrophes as ``'`` (:func:`story_text`); it changes the tokens, so the cache key records it.
    transcript : str or Path, optional
        The story's transcript (CSV with a ``text`` column, or text): words get
        its spelling with punctuation (:mod:`~encoding_kit.features.transcript`).
    run : ExtractionRun, optional
        How the extraction runs (:class:`~encoding_kit.features.extraction_run.ExtractionRun`): batch size
        (default 16 windows), device (default cuda, then mps, then cpu; bf16 autocast on cuda and on CPUs with
        native bf16, :func:`~encoding_kit.core.runtime.precision`), an offline stand-in when the named model
        cannot be loaded (``allow_standin``), the feature cache (``cache``, ``cache_dir``) and the progress bar.
        Default ``ExtractionRun()``. The keywords ``batch_size``, ``device``, ``allow_standin``, ``cache``,
        ``cache_dir`` and ``progress`` moved there; passed directly they still work, with a
        :class:`~encoding_kit.features.extraction_run.MovedKeywordWarning`.

    Returns
    -------
    dict {layer: float32 array of shape (n_words, hidden_size)}
    """
    run = resolve_run(run, "extract_text_features")
    word_trs = None
    if mode == "tr":
        if not hasattr(words, "columns") or "tr" not in words.columns:
            raise ValueError("mode='tr' needs the words' TRs: pass a DataFrame with 'word' and 'tr' columns "
                             "(story.words), not a plain list of words")
        word_trs = words["tr"].to_numpy()
        if (np.diff(word_trs) < 0).any():
            raise ValueError("mode='tr' needs the words in story order (their 'tr' column never decreases)")
    context_tokens = check_int(context_tokens, "context_tokens", 1)
    words = list(words["word"]) if hasattr(words, "columns") else list(words)
    if not words:
        raise ValueError("the word list is empty")
    if transcript is not None:  # the restored words are hashed into the cache key like any words
        words = restore_punctuation(words, load_transcript(transcript))
    if word_pooling not in WORD_POOLINGS:
        raise ValueError(f"word_pooling must be 'last' or 'mean', got {word_pooling!r}")
    if mode not in TEXT_MODES:
        raise ValueError(f"mode must be one of {TEXT_MODES}, got {mode!r}")
    loaded = _resolve_model(model, tokenizer, run.allow_standin)
    name = loaded.name
    # The key's hashes without building a deferred stand-in (.identity): a request the cache answers never builds
    # it. A request refused below (non-causal strided, too wide a window) is never stored, so never answered here.
    ids = identity(loaded, "text", lambda: text_identity(loaded))
    layers = check_layers(layers, ids["n_layers"], name)
    stride = int(stride or max(1, context_tokens // 4)) if mode == "strided" else 0
    params = {"model": model_key(loaded), "source": loaded.source, "revision": ids["revision"],
              "weights": ids["weights"], "processor": ids["processor"], "context_tokens": context_tokens,
              "mode": mode, "stride": stride, "words": hash_array(words),
              "normalize_apostrophes": normalize_apostrophes, "precision": run_precision(run.device)}
    if mode == "tr":
        params["word_trs"] = hash_array(word_trs)
    stores = {p: FeatureCache("text", {**params, "word_pooling": p}, run.cache_dir, enabled=run.cache)
              for p in WORD_POOLINGS}
    cached = stores[word_pooling].load(layers)
    if cached is not None:
        return cached

    net, tok = text_inputs(loaded)
    net = net.to(torch_device(run.device)).eval()
    # one activation scale per batch: later windows of a quantized model must not share it (see .quantize)
    batch_size = 1 if is_quantized(loaded) else run.batch(TEXT_BATCH)
    if mode == "strided":
        causal, why = causality(net)
        if not causal:
            raise ValueError(
                f"mode='strided' needs a model shown to be causal (decoder-only); {name} is not ({why}). In a shared "
                "window a bidirectional model lets words see later words. Use mode='exact'."
            )
    prefix, suffix = special_template(tok)
    limit = max_positions(net)
    width = context_tokens + stride
    if limit is not None and width + len(prefix) + len(suffix) > limit:
        raise ValueError(
            f"context_tokens={context_tokens}{f' + stride={stride}' if stride else ''} plus "
            f"{len(prefix) + len(suffix)} special tokens exceeds the limit of {name}: {limit} positions"
        )
    n_layers = ids["n_layers"]
    # One forward pass yields every layer and both word poolings: all are cached together, so a later request
    # for another layer or pooling of the same model and context is a cache hit (with run.store_all_layers=False:
    # the layers up to the highest asked for).
    tokens = tokenize_story(words, tok, normalize_apostrophes)
    empty = tokens.word_last < 0
    if empty.all():
        raise ValueError("no word produced any token; check the words (punctuation-only or empty?)")
    if empty.any():
        warnings.warn(f"{int(empty.sum())} words produce no token (e.g. {words[int(np.flatnonzero(empty)[0])]!r}); "
                      "they get the features of the last token before them", stacklevel=3)  # past the run= wrapper
        fill_tokenless_words(tokens)
    starts, ends = word_windows(tokens, context_tokens, mode, stride, word_trs)
    # With the cache on, every state the pass computes is stored: all of them, or with store_all_layers=False
    # states 0..max(layers), the blocks above skipped (.early_exit; a later request for a higher layer runs again).
    computed = max(layers) if not run.store_all_layers and can_stop_early(net, max(layers)) else n_layers
    todo_layers, poolings = (list(range(computed + 1)), WORD_POOLINGS) if run.cache else (layers, (word_pooling,))
    out = _run_windows(net, tokens, starts, ends, prefix, suffix, todo_layers, poolings, batch_size,
                       torch_device(run.device), pad_id=tok.pad_token_id or 0, progress=run.progress,
                       desc=f"{name} ({mode})")
    for pooling, features in out.items():
        stores[pooling].save(features)
    return {layer: out[word_pooling][layer] for layer in layers}


def _run_windows(net, tokens, starts, ends, prefix, suffix, layers, poolings, batch_size, device, pad_id,
                 progress, desc):
    """Run the model once per distinct window and gather each word's pooled states.

    A model whose ``computes_read_positions_only`` is true (a brain-tuned model on cached frozen states,
    :class:`encoding_kit.brain_tuning.frozen.TopLayers`) is told which positions are read (``read_positions``,
    bool (batch, length)) and may leave the others of its top layer uncomputed.

    Returns
    -------
    dict {pooling: {layer: float32 array (n_words, hidden)}}
    """
    windows, word_window = np.unique(np.stack([starts, ends], 1), axis=0, return_inverse=True)
    word_window = word_window.ravel()
    words_of = [[] for _ in range(len(windows))]
    for i, w in enumerate(word_window):
        words_of[w].append(i)
    hidden = net.config.hidden_size
    tell_positions = bool(getattr(net, "computes_read_positions_only", False))
    out = {p: np.zeros((len(layers), len(starts), hidden), np.float32) for p in poolings}
    with contextlib.ExitStack() as stack:
        forward = _states_of(net, max(layers), stack)
        for b0 in tqdm(range(0, len(windows), batch_size), desc=desc, disable=not progress, leave=False):
            _gather_batch(forward, tokens, windows, words_of, b0, batch_size, prefix, suffix, layers, poolings,
                          device, pad_id, out, tell_positions)
    return {p: dict(zip(layers, values)) for p, values in out.items()}


def _states_of(net, top, stack):
    """A function (**inputs) -> hidden states 0..top of a batch (all of them when the model must run whole)."""
    if can_stop_early(net, top):
        return stack.enter_context(lower_states(net, top))
    return lambda **inputs: net(**inputs, output_hidden_states=True).hidden_states


def _gather_batch(forward, tokens, windows, words_of, b0, batch_size, prefix, suffix, layers, poolings, device, pad_id,
                  out, tell_positions=False):
    """Run one batch of windows and write each word's pooled states into ``out`` {pooling: (layers, words, dim)}.

    ``tell_positions``: pass the model the positions read (``read_positions``, see :func:`_run_windows`).
    """
    import torch

    batch = windows[b0:b0 + batch_size]
    seqs = [prefix + tokens.ids[s:e].tolist() + suffix for s, e in batch]
    length = max(map(len, seqs))
    ids = torch.full((len(seqs), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), length), dtype=torch.long)
    for r, seq in enumerate(seqs):
        ids[r, :len(seq)] = torch.as_tensor(seq)
        mask[r, :len(seq)] = 1
    reads = [(r, i, pooling, _word_positions(tokens, i, s, len(prefix), pooling))
             for r, (s, _) in enumerate(batch) for i in words_of[b0 + r] for pooling in poolings]
    extra = {"read_positions": _read_mask(reads, ids.shape).to(device)} if tell_positions else {}
    with torch.inference_mode(), autocast(device):
        states = forward(input_ids=ids.to(device), attention_mask=mask.to(device), **extra)
        hs = torch.stack([states[layer] for layer in layers]).float().cpu().numpy()
    for r, i, pooling, pos in reads:
        out[pooling][:, i] = hs[:, r, pos].mean(1)


def _word_positions(tokens, word, start, n_prefix, pooling):
    """Positions of word ``word``'s pooled tokens inside its padded window (which starts at token ``start``)."""
    first, last = tokens.word_first[word], tokens.word_last[word]
    return np.arange(max(first, start) if pooling == "mean" else last, last + 1) - start + n_prefix


def _read_mask(reads, shape):
    """Bool tensor (batch, length): the positions some word's pooling reads."""
    import torch

    rows = torch.zeros(shape, dtype=torch.bool)
    for r, _, _, pos in reads:
        rows[r, torch.as_tensor(pos)] = True
    return rows


def text_features_to_trs(features, words, n_trs, method="mean", timebase=None):
    """Pool word-level features of every layer into TRs.

    Parameters
    ----------
    features : dict {layer: array (n_words, dim)}
    words : DataFrame from :func:`~encoding_kit.data.course_files.load_align` (``tr`` and ``start`` columns)
    n_trs : int
    method : {"mean", "sum", "max", "last", "lanczos", "lanczos_noncausal"}
        See :func:`~encoding_kit.data.timebase.pool_to_trs`; all but ``"lanczos_noncausal"`` are causal.
    timebase : TimeBase, optional
        Default: the time base the words' ``tr`` column was computed with
        (``words.attrs``); a different one is refused, so the column and the
        pooling never disagree.

    Returns
    -------
    dict {layer: float32 array (n_trs, dim)}
    """
    timebase = time_base_of_words(words, *((None, None) if timebase is None else (timebase.tr, timebase.onset_offset)))
    trs = words["tr"].to_numpy()
    times = words["start"].to_numpy()
    return {layer: timebase.pool(values, trs, n_trs, method, times=times) for layer, values in features.items()}
