"""Which tokens each word's window holds, in the three modes of :mod:`.text` (see its docstring), and the special
tokens around a window."""

from __future__ import annotations

import numpy as np

from .families import UnknownFamily, family_of
from .models import max_positions


def word_windows(tokens, context_tokens, mode, stride, word_trs=None):
    """For every word: (window start, window end), token indices of the story."""
    n_tok = len(tokens.ids)
    if mode in ("exact", "tr"):
        ends = tokens.word_last + 1
        if mode == "tr":  # every word's window ends at the last token of its TR's last word
            ends = tr_window_ends(ends, word_trs)
        starts = np.maximum(0, ends - context_tokens)
        if mode == "tr":
            check_words_inside(tokens, starts, ends, context_tokens, word_trs)
        return starts, ends
    width = context_tokens + stride
    window_of_token = np.maximum(0, (np.arange(n_tok) - context_tokens) // stride)
    k = window_of_token[np.maximum(tokens.word_last, 0)]
    starts = k * stride
    return starts, np.minimum(starts + width, n_tok)


def check_words_inside(tokens, starts, ends, context_tokens, word_trs):
    """Refuse ``mode="tr"`` windows that leave out a word altogether (its TR holds more tokens than the context).

    A word's window ends at the end of its TR; with fewer ``context_tokens`` than the tokens from the word's last
    token to the TR's end, the word is not in its own window: ``"last"`` pooling would read another token and
    ``"mean"`` an empty slice. (A word cut in part keeps the mean of its tokens inside the window, as in exact mode.)
    """
    last = tokens.word_last
    outside = np.flatnonzero(last < starts)
    if len(outside):
        need = int((ends - last).max())
        word = outside[0]
        raise ValueError(f"mode='tr' with context_tokens={context_tokens}: TR {int(word_trs[word])} holds more "
                         f"tokens from word {int(word)} to its end ({int(ends[word] - last[word])}) than the "
                         f"context, so the word falls outside its own window; use context_tokens >= {need} "
                         f"(the longest such stretch in this story) or mode='exact'")


def tr_window_ends(word_ends, word_trs):
    """End (exclusive token index) of the last word of each word's TR; words are in story order."""
    out = np.array(word_ends, copy=True)
    for i in range(len(out) - 2, -1, -1):
        if word_trs[i] == word_trs[i + 1]:
            out[i] = out[i + 1]
    return out


def fill_tokenless_words(tokens):
    """Words without tokens borrow the previous word's last token (first word: the next word's first)."""
    last = tokens.word_last
    for i in np.flatnonzero(last < 0):
        prev = last[:i][last[:i] >= 0]
        last[i] = prev[-1] if len(prev) else tokens.word_first[tokens.word_first >= 0][0]
        tokens.word_first[i] = last[i]


def usable_contexts(model, contexts, mode="exact", stride=None):
    """The context lengths (tokens) that fit the model's position limit in this mode.

    Parameters
    ----------
    model : LoadedModel
    contexts : list of int
    mode : {"exact", "strided", "tr"}
        See the module docstring; ``"tr"`` lets a word see the rest of its own TR.
    stride : int, optional
        Strided mode step (default ``context // 4``, as in :func:`~encoding_kit.features.text.extract_text_features`).

    Returns
    -------
    list of int
    """
    limit = max_positions(model.model)
    prefix, suffix = special_template(text_inputs(model)[1])
    if limit is None:
        return list(contexts)
    width = {c: c + (int(stride or max(1, c // 4)) if mode == "strided" else 0) for c in contexts}
    return [c for c in contexts if width[c] + len(prefix) + len(suffix) <= limit]


def text_inputs(loaded):
    """(network, tokenizer) the text extractor reads: the family's text branch (CLAP: its text model).

    A model the caller loaded (source ``"given"``) of a type no family reads is read as given.
    """
    try:
        family = family_of(loaded)
    except UnknownFamily:
        if loaded.source == "given":
            return loaded.model, loaded.processor
        raise
    if not family.reads_text:
        raise ValueError(f"model {loaded.name!r} is a {family.name} model ({loaded.family}), which reads audio; text "
                         "features need a text model (e.g. 'gpt2', 'bert-base-uncased') or CLAP; audio models go to "
                         "extract_audio_features")
    return family.text_inputs(loaded)


def special_template(tokenizer):
    """Special tokens the model's tokenizer puts before and after a sequence.

    Returns
    -------
    prefix, suffix : lists of int
    """
    plain = tokenizer("hello world", add_special_tokens=False)["input_ids"]
    full = tokenizer("hello world")["input_ids"]
    for k in range(len(full) - len(plain) + 1):
        if full[k:k + len(plain)] == plain:
            return list(full[:k]), list(full[k + len(plain):])
    return [], []
