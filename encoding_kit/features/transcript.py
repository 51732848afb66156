"""Punctuation and capitals for the alignment's words, from the story's transcript.

A Gentle alignment lists the words as spoken, without punctuation ("This is
Los Angeles And it's the height of summer"), so a text model reads the story
as one unpunctuated run. When the transcript is at hand, each alignment word
can get its spelling in the transcript with the punctuation around it
("This is Los Angeles. And it's the height of summer."):

* the transcript is cut into words the way Gentle cuts it (letters and digits
  with inner apostrophes: "low-ceiling" is two words, "--" none);
* the two word lists are matched in order on a key that ignores case and the
  apostrophe's form (difflib: words Gentle could not align keep their place);
* a matched word takes the transcript's spelling, the punctuation that
  follows it up to the next space (plus any free-standing mark such as
  ``--`` after that space), and the opening marks glued to its front
  (quotes, brackets). Joined with single spaces (as the text model's input
  is), the words give back the transcript's text, except that a word split
  inside a token gets a space ("low- ceiling").

Words without a match keep the alignment's spelling, and punctuation around
transcript words missing from the alignment is dropped. Trailing punctuation
belongs to its word, so ``word_pooling="last"`` reads a word at its closing
mark ("Angeles." at the period): what a listener hears as the word's final
fall and pause.
"""

from __future__ import annotations

import difflib
import re
import warnings
from pathlib import Path

import pandas as pd

GENTLE_WORD = re.compile(r"(?:\w|[’']\w)+")
"""A word as Gentle cuts a transcript: word characters with inner apostrophes."""

MIN_MATCHED = 0.8
"""Below this fraction of alignment words found in the transcript, a warning says the two may not match."""


def load_transcript(path):
    """Read a transcript: a CSV with a ``text`` column (one sentence per row, in story order) or a plain text file.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    text : str
        The sentences joined with single spaces.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"transcript {path}: no such file (expected a .csv with a 'text' column or a .txt)")
    if path.suffix.lower() == ".csv":
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "text" not in table.columns:
            raise ValueError(f"transcript {path}: expected a 'text' column (one sentence per row), "
                             f"found columns {list(table.columns)}")
        return " ".join(s.strip() for s in table["text"] if s.strip())
    return " ".join(path.read_text(encoding="utf-8").split())


def _key(word):
    """Match key of a word: lowercase, one apostrophe form."""
    return str(word).strip().lower().replace("’", "'").replace("‘", "'")


def transcript_words(text):
    """The transcript cut into Gentle's words, each with its spelling and punctuation.

    Parameters
    ----------
    text : str

    Returns
    -------
    keys : list of str
        Match key of each word.
    spellings : list of str
        The word as written with its punctuation (see module docstring).
    """
    spans = [m.span() for m in GENTLE_WORD.finditer(text)]
    if not spans:
        return [], []
    prefix, suffix = [""] * len(spans), [""] * len(spans)
    for i in range(len(spans) + 1):  # the gap before word i (the last gap: after the last word)
        gap = text[spans[i - 1][1] if i else 0: spans[i][0] if i < len(spans) else len(text)]
        chunks = gap.split()
        if not chunks:
            continue
        if i and not gap[0].isspace():  # glued to the word before: "Angeles." or "low-"
            suffix[i - 1] += chunks.pop(0)
        if chunks and i < len(spans) and not gap[-1].isspace():  # glued to the word after: "“You"
            prefix[i] = chunks.pop()
        if chunks and i:  # free-standing marks ("--") follow the word before, after a space
            suffix[i - 1] += " " + " ".join(chunks)
        elif chunks:  # free-standing marks before the first word
            prefix[0] = " ".join(chunks) + " " + prefix[0]
    spellings = [p + text[s:e] + q for (s, e), p, q in zip(spans, prefix, suffix)]
    return [_key(text[s:e]) for s, e in spans], spellings


def restore_punctuation(words, transcript):
    """Give each alignment word its transcript spelling with punctuation.

    Parameters
    ----------
    words : sequence of str, length n_words
        The alignment's words in story order (unaligned words included).
    transcript : str
        The transcript's text (see :func:`load_transcript`).

    Returns
    -------
    restored : list of str, length n_words
        One entry per alignment word, in the same order (so word times and
        TRs still apply); words not found in the transcript are unchanged.
    """
    words = [str(w) for w in words]
    keys, spellings = transcript_words(transcript)
    if not keys:
        raise ValueError("the transcript has no words")
    restored = list(words)
    matched = 0
    matcher = difflib.SequenceMatcher(None, [_key(w) for w in words], keys, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            restored[block.a + k] = spellings[block.b + k]
        matched += block.size
    if words and matched < MIN_MATCHED * len(words):
        warnings.warn(f"only {matched} of {len(words)} alignment words ({matched / len(words):.0%}) were found in "
                      "the transcript: is it the transcript of this story?", stacklevel=2)
    return restored
