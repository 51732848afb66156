"""The demo story spoken aloud: eSpeak NG speech, or the kit's synthetic buzz when eSpeak is missing.

:func:`speak_demo_story` speaks the sentences of :func:`encoding_kit.data.story_text.generate_story`
with eSpeak NG (:mod:`encoding_kit.demo.synthesis`; deterministic, cached by content),
one seeded speaking rate per sentence for variety, and returns the 16 kHz
waveform and the word table whose times come from the synthesiser's word
events: a real alignment of real speech. Two things make that table look
like a Gentle file rather than like eSpeak's event list:

* eSpeak speaks some word pairs as one unit ("from the", "was a") and emits
  one event for both; the second word gets no time of its own. The pair's
  interval is shared between its words in proportion to their letters
  (:func:`share_merged_words`), so every word has true times;
* about 1 % of rows, chosen by the story's seed, are then blanked as Gentle
  leaves the words it could not align.

When eSpeak NG cannot be loaded (a platform without the ``espeakng-loader``
wheel), one message says so and the story is voiced by
:func:`synthesize_speech` (voiced, formant-like bursts timed by the story
generator), as demos were before eSpeak.
"""

from __future__ import annotations

import numpy as np

from ..core.progress import tqdm
from ..data.course_files import AUDIO_SR, interpolate_unaligned
from . import synthesis as speech

SR = AUDIO_SR
RATES_WPM = (150, 185)
"""Range of the seeded per-sentence speaking rates (eSpeak words per minute; its default is 175)."""
MIN_PAUSE_S = 0.12
"""Shortest mean pause between sentences; sentences that do not fit with it are dropped from the end."""
VOICE = "en-us"


def speak_demo_story(words, duration_s, rng, sr=SR):
    """Speak a generated story with eSpeak NG, or voice it with the synthetic buzz when eSpeak is missing.

    Parameters
    ----------
    words : DataFrame from :func:`encoding_kit.data.story_text.generate_story`
        Columns ``word``, ``word_lower``, ``start``, ``end``, ``aligned``,
        ``topic``, ``sentence``.
    duration_s : float
        Length of the recording (s).
    rng : numpy.random.Generator
        Speaking rates and pauses (eSpeak) or the buzz's noise (fallback).
    sr : int

    Returns
    -------
    wav : float32 array of shape (round(duration_s * sr),)
    words : DataFrame
        The same columns, times those of the speech (s, audio time; every
        word has times, ``aligned`` False on the ~1 % blanked rows).
    kind : str
        ``"espeak"`` or ``"synthetic"``.
    """
    try:
        return (*_speak_with_espeak(words, duration_s, rng, sr), "espeak")
    except speech.SpeechUnavailable as exc:
        print(f"demo audio: {exc}; the story is voiced by the kit's synthetic buzz-and-formant speech instead, "
              "with the story generator's word times as the alignment")
        return synthesize_speech(words, duration_s, rng, sr), words, "synthetic"


def _speak_with_espeak(words, duration_s, rng, sr):
    sentences = [group["word"].tolist() for _, group in words.groupby("sentence", sort=True)]
    rates = rng.integers(RATES_WPM[0], RATES_WPM[1] + 1, len(sentences))
    clips, timed = speech.synthesize_sentences(sentences, VOICE, [int(r) for r in rates])
    seconds = np.array([len(c) for c in clips]) / speech.ESPEAK_SR
    start_s, tail_s = float(words["start"].iloc[0]), 3.0
    n = len(clips)
    while n > 1 and seconds[:n].sum() + MIN_PAUSE_S * n > duration_s - start_s - tail_s:
        n -= 1  # a slower synthesiser than the generator's timing: drop the story's last sentences
    keep = timed["sentence"].to_numpy() < n
    pauses = speech.pauses_to_fill(seconds[:n], duration_s, rng, start_s, tail_s)
    wav, table = speech.place_sentences(clips[:n], timed[keep].reset_index(drop=True), pauses, start_s, duration_s, sr)
    story = words[words["sentence"] < n].reset_index(drop=True)
    if len(table) != len(story) or not (table["word"].to_numpy() == story["word"].to_numpy()).all():
        raise RuntimeError("the words eSpeak NG spoke do not match the story's words; "
                           "a story word is not one alignment word (see speech.WORD_RE)")
    start, end = share_merged_words(table)
    if not np.isfinite(start).all():  # a sentence eSpeak gave no event at all: spread it over its gap
        start, end = interpolate_unaligned(start, end, np.isfinite(start))
    out = story.copy()
    out["start"], out["end"] = start, end
    out["aligned"] = story["aligned"].to_numpy()  # the generator's seeded ~1 % of Gentle-style blanks
    return wav, out


def share_merged_words(table):
    """Times for the words eSpeak spoke without an event of their own.

    A run of words without times after a timed word of the same sentence
    shares that word's interval with it, in proportion to the letters of
    each word; a run at the start of a sentence shares the next timed word's.
    Shared times are rounded to Gentle's 10 ms; the other words keep theirs
    (with the binary noise of their sums, as Gentle's files have).

    Parameters
    ----------
    table : DataFrame with ``word``, ``start``, ``end``, ``sentence``
        NaN times where eSpeak gave no event.

    Returns
    -------
    start, end : float arrays of shape (n_words,)
        Finite everywhere a sentence has at least one timed word.
    """
    start, end = table["start"].to_numpy(float).copy(), table["end"].to_numpy(float).copy()
    letters = table["word"].str.len().to_numpy(float)
    for rows in table.groupby("sentence", sort=False).indices.values():
        groups, lead = [], []
        for i in rows:
            if np.isfinite(start[i]):
                groups.append(lead + [i])
                lead = []
            elif groups:
                groups[-1].append(i)
            else:
                lead.append(i)  # untimed words before the sentence's first timed word
        for group in (g for g in groups if len(g) > 1):  # a word with its own event keeps its times
            anchor = next(i for i in group if np.isfinite(start[i]))
            edges = start[anchor] + (end[anchor] - start[anchor]) * np.concatenate(
                [[0], np.cumsum(letters[group]) / letters[group].sum()])
            start[group], end[group] = np.round(edges[:-1], 2), np.round(edges[1:], 2)
    return start, end


def synthesize_speech(words, duration_s, rng, sr=SR):
    """Voiced, pitched, formant-like bursts for each word; silence between (the fallback without eSpeak).

    Parameters
    ----------
    words : DataFrame with ``word``, ``start``, ``end``, ``topic``, ``sentence``
    duration_s : float
    rng : numpy.random.Generator
    sr : int

    Returns
    -------
    wav : float32 array of shape (round(duration_s * sr),)
    """
    wav = rng.standard_normal(int(round(duration_s * sr))).astype(np.float32) * 0.002
    harmonics = np.arange(1, 9)[:, None]
    for word, start, end, topic, sentence in tqdm(
        words[["word", "start", "end", "topic", "sentence"]].itertuples(index=False),
        total=len(words), desc="demo audio", leave=False,
    ):
        i0, i1 = int(start * sr), min(int(end * sr), wav.size)
        t = np.arange(i1 - i0) / sr
        dur = max(end - start, 1e-3)
        n_syl = max(1, round(len(word) / 3))
        f0 = (110 + 15 * (sentence % 7)) * (1.1 - 0.15 * t / dur)
        phase = 2 * np.pi * np.cumsum(f0) / sr
        f1, f2 = 300 + 500 * rng.random(), 900 + 1500 * rng.random()
        amp = np.exp(-(((harmonics * f0.mean() - f1) / 250) ** 2)) + 0.6 * np.exp(-(((harmonics * f0.mean() - f2) / 400) ** 2))
        voiced = (amp * np.sin(harmonics * phase[None, :])).sum(0) / (amp.sum() + 1e-9)
        envelope = np.abs(np.sin(np.pi * n_syl * t / dur)) ** 0.7
        loud = rng.uniform(0.3, 0.8) * (1.3 if topic else 1.0)
        segment = loud * envelope * voiced
        if word[0].lower() in "sfzch":  # a fricative onset: short high-passed noise
            n = min(int(0.06 * sr), segment.size)
            segment[:n] += 0.25 * loud * np.diff(rng.standard_normal(n + 1))
        wav[i0:i1] += segment.astype(np.float32)
    return np.clip(wav, -1, 1)
