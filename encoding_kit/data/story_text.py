"""A generated English-like story: the demo dataset's text, and the corpus of the stand-ins' local tokenizers.

A small grammar and lexicon written for the kit. Content words come from a
few topics whose mixture drifts slowly through the story, so that "semantic"
drivers derived from word identity change on the time scale of minutes, as
the themes of a real story do. Words are timed at about 2.5 words/s with
pauses between sentences, and about 1 % of rows are left unaligned the way
Gentle leaves them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TOPICS = {
    "kitchen": {
        "noun": "chili bowl wine cup kitchen table plate bread pepper spoon oven garlic soup dinner glass "
                "lemon knife butter recipe pot".split(),
        "verb": "cooked served poured tasted stirred washed baked sliced shared spilled".split(),
        "adj": "warm spicy red plastic homemade salty bitter sweet fresh crowded".split(),
    },
    "city": {
        "noun": "street car freeway bus corner city light building traffic sidewalk bridge apartment "
                "station downtown sign window neighborhood highway rooftop taxi".split(),
        "verb": "drove walked crossed parked waited passed turned stopped rushed watched".split(),
        "adj": "busy loud narrow dusty bright empty late distant concrete endless".split(),
    },
    "family": {
        "noun": "mother father sister brother daughter son house garden letter photograph wedding "
                "birthday cousin grandmother promise secret childhood memory bedroom porch".split(),
        "verb": "remembered called hugged promised forgave visited missed worried laughed cried".split(),
        "adj": "old quiet gentle proud lonely careful tender stubborn young familiar".split(),
    },
    "music": {
        "noun": "song guitar piano band stage drum singer record melody concert microphone chorus "
                "rhythm radio dance tune crowd speaker note violin".split(),
        "verb": "played sang danced listened practiced recorded clapped tuned hummed performed".split(),
        "adj": "soft electric slow golden rough smooth famous nervous wild beautiful".split(),
    },
}
NAMES = "Clara Marcus Lena Tomas Ruth".split()
DET = "the a this that my her his our".split()
PREP = "in on near behind under across beside".split()
CONNECT = "and then so but because".split()

# Slot strings; NOUN/VERB/ADJ draw from the sentence's topic.
TEMPLATES = [
    "DET ADJ NOUN VERB PREP DET NOUN",
    "NAME VERB DET NOUN",
    "NAME VERB DET ADJ NOUN PREP DET NOUN",
    "it’s DET ADJ NOUN",
    "we VERB DET NOUN and the NOUN was ADJ",
    "CONNECT NAME VERB",
    "NAME’s NOUN was ADJ",
    "i don’t know why the NOUN was so ADJ",
    "there was DET NOUN PREP DET ADJ NOUN",
    "she VERB DET NOUN and VERB",
    "CONNECT we VERB PREP the ADJ NOUN",
    "you could see DET ADJ NOUN from the NOUN",
]


def topic_mixture(n_sentences, n_topics, rng, timescale=40.0):
    """Slowly drifting topic probabilities, array of shape (n_sentences, n_topics)."""
    noise = rng.standard_normal((n_sentences + 400, n_topics))
    kernel = np.exp(-0.5 * (np.arange(-200, 201) / timescale) ** 2)
    smooth = np.stack([np.convolve(noise[:, k], kernel, "same") for k in range(n_topics)], 1)[200:-200]
    smooth /= smooth.std(0, keepdims=True)
    weights = np.exp(1.8 * smooth)
    return weights / weights.sum(1, keepdims=True)


def _sentence(template, topic, rng):
    words, topics = [], []
    for slot in template.split():
        base = slot.replace("’s", "")
        if base in ("NOUN", "VERB", "ADJ"):
            # Most content words come from the sentence topic, some from others.
            src = topic if rng.random() < 0.85 else rng.choice(list(TOPICS))
            word = rng.choice(TOPICS[src][base.lower()])
            words.append(word)
            topics.append(src)
            continue
        pool = {"DET": DET, "PREP": PREP, "CONNECT": CONNECT, "NAME": NAMES}.get(base)
        word = rng.choice(pool) if pool else base
        words.append(word + ("’s" if slot.endswith("’s") else ""))
        topics.append("")
    words[0] = words[0][0].upper() + words[0][1:]
    return words, topics


def _word_duration(word, rng):
    return 0.1 + 0.045 * len(word) + rng.uniform(-0.02, 0.06)


def generate_story(duration_s, rng, start_s=6.0, unaligned_frac=0.01):
    """Generate a timed story.

    Parameters
    ----------
    duration_s : float
        Length of the recording; the story stops about 3 s before it.
    rng : numpy.random.Generator
    start_s : float
        Onset of the first word (s).
    unaligned_frac : float
        Fraction of rows whose times are blanked as Gentle leaves them.

    Returns
    -------
    words : DataFrame
        Columns ``word`` (as spoken, capitalised, unicode apostrophes),
        ``word_lower``, ``start``, ``end`` (true times, s), ``aligned``
        (False where the alignment file will show empty times), ``topic``
        (content-word topic or ""), ``sentence`` (index).
    """
    topic_names = list(TOPICS)
    n_guess = int(duration_s / 3.0) + 10
    mixture = topic_mixture(n_guess, len(topic_names), rng)
    rows = []
    t = start_s
    for s in range(n_guess):
        topic = topic_names[rng.choice(len(topic_names), p=mixture[s])]
        words, topics = _sentence(TEMPLATES[rng.integers(len(TEMPLATES))], topic, rng)
        durations = [_word_duration(w, rng) for w in words]
        if t + sum(durations) + 0.05 * len(words) > duration_s - 3.0:
            break
        for word, top, dur in zip(words, topics, durations):
            rows.append((word, word.lower().replace("’", "'"), t, t + dur, top, s))
            t += dur + rng.uniform(0.0, 0.04)
        t += rng.uniform(0.15, 0.7)  # pause between sentences
    words = pd.DataFrame(rows, columns=["word", "word_lower", "start", "end", "topic", "sentence"])
    words["start"], words["end"] = words["start"].round(3), words["end"].round(3)
    words["aligned"] = rng.random(len(words)) >= unaligned_frac
    words.loc[0, "aligned"] = True
    return words[["word", "word_lower", "start", "end", "aligned", "topic", "sentence"]]
