"""Punctuation and capitals restored from a transcript onto the alignment's words."""

import re

import numpy as np
import pytest
from conftest import SHARED_REFERENCE

from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.models import standin
from encoding_kit.features.text import extract_text_features, tokenize_story
from encoding_kit.features.transcript import GENTLE_WORD, load_transcript, restore_punctuation

TRANSCRIPT = ("This is Los Angeles. And it’s the height of summer. “You didn’t get half the things on my list,” "
              "she hisses -- at Gary. Grad students fill the low-ceiling space.")
# As Gentle lists them: no punctuation, hyphenated words split, plus a filler the transcript lacks ("um") and a
# transcript word the alignment lacks ("the" before "things").
ALIGNMENT = ("This is Los Angeles um And it's the height of summer You didn’t get half things on my list she hisses "
             "at Gary Grad students fill the low ceiling space").split()


def test_each_word_gets_its_transcript_spelling_and_punctuation():
    restored = restore_punctuation(ALIGNMENT, TRANSCRIPT)
    assert len(restored) == len(ALIGNMENT)
    expected = {"Angeles": "Angeles.", "um": "um", "it's": "it’s", "summer": "summer.", "You": "“You",
                "list": "list,”", "hisses": "hisses --", "Gary": "Gary.", "low": "low-", "space": "space."}
    for word, spelling in expected.items():
        assert restored[ALIGNMENT.index(word)] == spelling, word
    # every alignment word keeps its letters (case and apostrophe form aside): word times and TRs still apply
    for old, new in zip(ALIGNMENT, restored):
        assert re.sub(r"[^\w]", "", new.replace("’", "'")).lower() == re.sub(r"[^\w]", "", old).lower()


def test_case_is_restored_from_the_transcript():
    restored = restore_punctuation([w.lower() for w in ALIGNMENT], TRANSCRIPT)
    assert restored[:4] == ["This", "is", "Los", "Angeles."] and "“You" in restored


def test_a_transcript_of_another_story_warns():
    with pytest.warns(UserWarning, match="found in the transcript"):
        restored = restore_punctuation(ALIGNMENT, "Completely different words here.")
    assert restored == ALIGNMENT


def test_bad_transcript_files(tmp_path):
    with pytest.raises(ValueError, match="no words"):
        restore_punctuation(ALIGNMENT, " -- ... ")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_transcript(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("sentence,words\nA1,hello\n")
    with pytest.raises(ValueError, match="'text' column.*found columns \\['sentence', 'words'\\]"):
        load_transcript(bad)


def test_the_model_reads_the_punctuated_text(tmp_path):
    path = tmp_path / "transcript.txt"
    path.write_text(TRANSCRIPT)
    lm = standin("gpt2", "gpt2")
    kw = dict(layers=[2], context_tokens=64, run=ExtractionRun(cache=False, progress=False))
    plain = extract_text_features(ALIGNMENT, lm, **kw)[2]
    punct = extract_text_features(ALIGNMENT, lm, transcript=path, **kw)[2]
    assert punct.shape == plain.shape == (len(ALIGNMENT), lm.model.config.hidden_size)
    np.testing.assert_allclose(punct[:3], plain[:3], atol=1e-5)  # "This is Los": nothing restored yet
    assert not np.allclose(punct[3], plain[3])  # "Angeles." is read at its period
    tokens = tokenize_story(restore_punctuation(ALIGNMENT, TRANSCRIPT), lm.processor)
    assert "." in lm.processor.convert_ids_to_tokens(tokens.ids.tolist())


@pytest.mark.skipif(not (SHARED_REFERENCE / "21styear_sentences.csv").exists(), reason="../shared absent")
def test_restores_the_real_transcript():
    text = load_transcript(SHARED_REFERENCE / "21styear_sentences.csv")
    # A Gentle-like alignment of the real story: its words as Gentle cuts them, lowercased with plain apostrophes
    # on every third word, every 40th word missing and a filler after every 100th.
    gentle = [m.group(0) for m in GENTLE_WORD.finditer(text)]
    alignment = []
    for i, w in enumerate(gentle):
        if i % 40 == 39:
            continue
        alignment.append(w.lower().replace("’", "'") if i % 3 == 0 else w)
        if i % 100 == 99:
            alignment.append("um")
    restored = restore_punctuation(alignment, text)
    assert len(restored) == len(alignment)
    assert restored[:4] == ["This", "is", "Los", "Angeles."]
    assert sum(w == "um" for w in restored) == sum(w == "um" for w in alignment)
    sentences = sum(bool(re.search(r"[.?!][”\"]*$", w)) for w in restored)
    assert sentences > 0.9 * 984 * 39 / 40  # about one sentence end per sentence (some ended on a dropped word)
    # With nothing dropped, the words give back the transcript, but for a space inside tokens that Gentle splits
    # ("low-ceiling" -> "low- ceiling").
    full = restore_punctuation(gentle, text)
    assert "".join("".join(full).split()) == "".join(text.split())
    assert len(" ".join(full)) - len(" ".join(text.split())) < 0.02 * len(full)
