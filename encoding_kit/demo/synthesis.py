"""Speech synthesis with eSpeak NG, with word timings from the synthesiser itself.

eSpeak NG (the ``espeakng-loader`` wheel ships ``libespeak-ng.so`` and its
``espeak-ng-data``) is driven through ctypes in synchronous mode: its callback
hands over 16-bit samples at 22,050 Hz and word events (character position,
length and sample position of every word it speaks). The word events are a
real alignment of real speech, written in the Narratives Gentle CSV format.

Two steps (the engine itself is :mod:`encoding_kit.demo.espeak`):

* :func:`synthesize_sentences` speaks each sentence on its own (cached by
  content under the feature cache: the sentences, voices, rates and the
  eSpeak version are the key) and returns per-sentence clips at 22,050 Hz
  with each word's onset and offset inside its clip;
* :func:`place_sentences` lays the clips on one time line (a start and a
  pause after each sentence), resamples to the course rate (16 kHz) and
  returns the waveform and the word table.

:func:`speak_story` does both, spreading seeded pauses so the speech fills a
given duration. Everything is deterministic.
"""

from __future__ import annotations

import hashlib
import json
import re
from fractions import Fraction

import numpy as np
import pandas as pd

from ..data.course_files import AUDIO_SR
from .espeak import CHUNK_SENTENCES, ESPEAK_SR, WORD_EVENT, SpeechUnavailable, espeak, speak_in_fresh_processes

__all__ = ["CHUNK_SENTENCES", "ESPEAK_SR", "SpeechUnavailable", "espeak", "synthesize_sentences", "place_sentences",
           "pauses_to_fill", "speak_story", "write_gentle_csv", "sentence_words", "word_times_from_events"]
SYNTH_VERSION = 1
"""Bump when the synthesis or the timing rules change: part of the cache key."""
WORD_RE = re.compile(r"[A-Za-z0-9’']+")
"""A word of the alignment: letters, digits and apostrophes (Gentle drops punctuation; hyphens split words)."""
SILENCE_FRACTION = 0.02
"""A 10 ms frame is silent below this fraction of the clip's peak amplitude (trims word offsets)."""


def sentence_words(sentence):
    """The words of a sentence as the alignment lists them, with their character spans.

    Parameters
    ----------
    sentence : str

    Returns
    -------
    list of (word, start_char, end_char)
    """
    return [(m.group(), m.start(), m.end()) for m in WORD_RE.finditer(sentence)]


def word_times_from_events(sentence, wav, events):
    """Onset and offset (s, inside the clip) of each word of ``sentence`` from eSpeak's word events.

    A word's onset is the sample of the first word event that starts inside
    its character span; its offset is the last non-silent 10 ms frame
    before the next word's onset (or the clip's end). A word without an
    event (eSpeak merged or skipped it) gets NaN times: unaligned.

    Returns
    -------
    onsets, offsets : float arrays of shape (n_words,)
    """
    spans = sentence_words(sentence)
    onsets = np.full(len(spans), np.nan)
    starts = np.array([a for _w, a, _b in spans])
    ends = np.array([b for _w, _a, b in spans])
    chars = [(position - 1, sample) for kind, position, _n, sample in events if kind == WORD_EVENT]  # 1-based
    for char, sample in chars:
        inside = np.flatnonzero((starts <= char) & (char < ends))
        if inside.size and np.isnan(onsets[inside[0]]):
            onsets[inside[0]] = sample / ESPEAK_SR
    event_chars = np.array([c for c, _s in chars])
    for char, sample in chars:
        # An event on punctuation ("bowls -- wine") belongs to the next word, when that word has no event of its own.
        after = np.flatnonzero(starts > char)
        if after.size and not ((starts <= char) & (char < ends)).any():
            w = after[0]
            if np.isnan(onsets[w]) and not ((event_chars >= starts[w]) & (event_chars < ends[w])).any():
                onsets[w] = sample / ESPEAK_SR
    return onsets, _offsets(onsets, wav)


def _offsets(onsets, wav):
    frame = ESPEAK_SR // 100
    n_frames = len(wav) // frame
    loud = np.abs(wav[:n_frames * frame].astype(np.float32)).reshape(n_frames, frame).max(1)
    voiced = np.flatnonzero(loud > SILENCE_FRACTION * max(loud.max(initial=0.0), 1.0))
    offsets = np.full(len(onsets), np.nan)
    known = np.flatnonzero(~np.isnan(onsets))
    for i, w in enumerate(known):
        stop = onsets[known[i + 1]] if i + 1 < len(known) else len(wav) / ESPEAK_SR
        inside = voiced[(voiced * frame / ESPEAK_SR >= onsets[w]) & ((voiced + 1) * frame / ESPEAK_SR <= stop)]
        offsets[w] = (inside[-1] + 1) * frame / ESPEAK_SR if inside.size else stop
    return offsets


def _per_sentence(value, n, name):
    values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value] * n
    if len(values) != n:
        raise ValueError(f"{name} must be one value or one per sentence ({n}), got {len(values)}")
    return values


def _speech_key(sentences, voices, rates, version):
    text = json.dumps([sentences, voices, [int(r) for r in rates], version, SYNTH_VERSION])
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def synthesize_sentences(sentences, voice="en-us", rate=175, cache=True, cache_dir=None):
    """Speak each sentence with eSpeak NG (cached by content).

    Parameters
    ----------
    sentences : list of str or list of list of str
        A sentence is a string, or its words (joined with spaces).
    voice : str or list of str
        eSpeak voice name, one for all or one per sentence (``"en-us"``, ``"en-us+m3"``, ...).
    rate : int or list of int
        Words per minute (eSpeak's default 175).
    cache : bool
        Load / store the clips under ``<feature cache>/speech-<hash>.npz``.
    cache_dir : str or Path, optional
        Feature cache root (default :func:`encoding_kit.core.storage.cache_root`).

    Returns
    -------
    clips : list of int16 arrays of shape (n_samples_i,)
        One per sentence, at 22,050 Hz.
    words : DataFrame
        One row per word: ``word``, ``sentence`` (index), ``onset`` and
        ``offset`` (s inside the clip; NaN where eSpeak gave no event).
    """
    from ..core.storage import atomic_write, cache_root

    texts = [s if isinstance(s, str) else " ".join(s) for s in sentences]
    voices = _per_sentence(voice, len(texts), "voice")
    rates = _per_sentence(rate, len(texts), "rate")
    path = cache_root(cache_dir) / f"speech-{_speech_key(texts, voices, rates, espeak().version)}.npz"
    if cache and path.exists():
        return _load_clips(path)
    clips, rows = [], []
    for s, (text, (wav, events)) in enumerate(zip(texts, speak_in_fresh_processes(texts, voices, rates))):
        onsets, offsets = word_times_from_events(text, wav, events)
        rows += [(word, s, on, off) for (word, _a, _b), on, off in zip(sentence_words(text), onsets, offsets)]
        clips.append(wav)
    words = pd.DataFrame(rows, columns=["word", "sentence", "onset", "offset"])
    if cache:
        lengths = np.array([len(c) for c in clips])
        atomic_write(path, lambda tmp: np.savez(
            tmp, samples=np.concatenate(clips) if clips else np.zeros(0, np.int16), lengths=lengths,
            word=words["word"].to_numpy(str), sentence=words["sentence"].to_numpy(), onset=words["onset"].to_numpy(),
            offset=words["offset"].to_numpy()))
    return clips, words


def _load_clips(path):
    with np.load(path) as f:
        clips = np.split(f["samples"], np.cumsum(f["lengths"])[:-1])
        words = pd.DataFrame({"word": f["word"].astype(str), "sentence": f["sentence"], "onset": f["onset"],
                              "offset": f["offset"]})
    return clips, words


def place_sentences(clips, words, pauses_s, start_s=0.0, duration_s=None, sr=AUDIO_SR):
    """Lay sentence clips on one time line and resample to ``sr``.

    Parameters
    ----------
    clips, words
        From :func:`synthesize_sentences`.
    pauses_s : float or array of shape (n_sentences,)
        Silence after each sentence (s).
    start_s : float
        Onset of the first sentence.
    duration_s : float, optional
        Length of the output (zero-padded); default: the end of the last pause.
    sr : int
        Output rate (the course audio is 16 kHz).

    Returns
    -------
    wav : float32 array of shape (n_samples,)
        In [-1, 1] at ``sr``; ``round(duration_s * sr)`` samples when ``duration_s`` is given.
    words : DataFrame
        Columns ``word``, ``word_lower`` (lowercase, ASCII apostrophe),
        ``start``, ``end`` (s on the output's time line, rounded to the
        10 ms of Gentle's frames; NaN where unaligned), ``aligned`` and
        ``sentence``.
    """
    from scipy.signal import resample_poly

    pauses = np.asarray(_per_sentence(pauses_s, len(clips), "pauses_s"), float)
    # Sentence starts on the 22,050 Hz grid, so each clip lands on whole samples.
    lengths = np.array([len(c) for c in clips])
    gaps = np.round(pauses * ESPEAK_SR).astype(int)
    first = int(round(start_s * ESPEAK_SR))
    starts = first + np.concatenate([[0], np.cumsum(lengths + gaps)[:-1]]) if len(clips) else np.zeros(0, int)
    total = first + int((lengths + gaps).sum())
    if duration_s is not None:
        needed = int(round(duration_s * ESPEAK_SR))
        if total - gaps[-1:].sum() > needed:
            raise ValueError(f"the speech lasts {(total - gaps[-1:].sum()) / ESPEAK_SR:.1f} s but duration_s is "
                             f"{duration_s} s; shorten the pauses or the text")
        total = needed
    signal = np.zeros(total, np.float32)
    for clip, a in zip(clips, starts):
        signal[a:a + len(clip)] = clip[:max(0, total - a)] / 32768.0
    ratio = Fraction(sr, ESPEAK_SR)
    wav = resample_poly(signal, ratio.numerator, ratio.denominator).astype(np.float32)
    if duration_s is not None:  # resampling rounds the length up: exactly round(duration_s * sr) samples
        wav = np.pad(wav, (0, max(0, int(round(duration_s * sr)) - len(wav))))[:int(round(duration_s * sr))]
    offset = np.round(starts[words["sentence"].to_numpy()] / ESPEAK_SR, 2)
    table = pd.DataFrame({"word": words["word"].to_numpy(str)})
    table["word_lower"] = table["word"].str.lower().str.replace("’", "'")
    # Gentle's times are 10 ms frames summed in floating point (hence its 27.669999999999998); rounding the
    # sentence start to 10 ms moves a time by at most 5 ms, within Gentle's resolution.
    table["start"] = offset + np.round(words["onset"].to_numpy(float), 2)
    table["end"] = offset + np.round(words["offset"].to_numpy(float), 2)
    table["aligned"] = ~np.isnan(table["start"].to_numpy())
    table["sentence"] = words["sentence"].to_numpy()
    return np.clip(wav, -1, 1), table


def pauses_to_fill(clip_seconds, duration_s, rng, start_s=6.0, tail_s=3.0, spread=0.6):
    """Seeded pauses after each sentence so the speech ends ``tail_s`` before ``duration_s``.

    Parameters
    ----------
    clip_seconds : array of shape (n_sentences,)
    duration_s, start_s, tail_s : float
    rng : numpy.random.Generator
    spread : float
        Relative variation of the pauses (0 = all equal).

    Returns
    -------
    pauses : array of shape (n_sentences,), the last one 0
    """
    clip_seconds = np.asarray(clip_seconds, float)
    free = duration_s - tail_s - start_s - clip_seconds.sum()
    if free < 0:
        raise ValueError(f"the sentences last {clip_seconds.sum():.1f} s, more than the {duration_s - tail_s - start_s:.1f}"
                         " s available; use fewer sentences or a faster rate")
    weights = 1 + spread * rng.uniform(-1, 1, len(clip_seconds))
    weights[-1] = 0.0
    return free * weights / max(weights.sum(), 1e-12)


def speak_story(sentences, duration_s, voice="en-us", rate=175, seed=0, start_s=6.0, tail_s=3.0, sr=AUDIO_SR,
                cache=True, cache_dir=None):
    """Speak sentences with eSpeak NG so they fill ``duration_s`` seconds.

    Returns
    -------
    wav : float32 array of shape (round(duration_s * sr),)
    words : DataFrame (see :func:`place_sentences`)
    """
    clips, words = synthesize_sentences(sentences, voice, rate, cache=cache, cache_dir=cache_dir)
    pauses = pauses_to_fill([len(c) / ESPEAK_SR for c in clips], duration_s, np.random.default_rng(seed), start_s,
                            tail_s)
    return place_sentences(clips, words, pauses, start_s, duration_s, sr)


def _time_text(value):
    return "" if not np.isfinite(value) else repr(float(value))


def write_gentle_csv(words, path):
    """Write a word table in the Narratives Gentle format, as the real files are.

    No header; columns word as spoken (unicode apostrophes kept), lowercase
    word (ASCII apostrophe), onset (s), offset (s); an unaligned word keeps
    its spoken form with the three other fields empty; floats as Python
    writes them (with their binary noise); CRLF line ends.

    Parameters
    ----------
    words : DataFrame with ``word``, ``word_lower``, ``start``, ``end``, ``aligned``
    path : str or Path
    """
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        for word, lower, start, end, aligned in words[["word", "word_lower", "start", "end", "aligned"]].itertuples(
                index=False):
            if aligned and np.isfinite(start) and np.isfinite(end):
                writer.writerow([word, lower, _time_text(start), _time_text(end)])
            else:
                writer.writerow([word, "", "", ""])
