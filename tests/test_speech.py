"""eSpeak NG speech synthesis: word timings from its events, the Gentle format, determinism and the cache."""

import csv

import numpy as np
import pytest

from encoding_kit.data.course_files import load_align
from encoding_kit.demo import synthesis as speech

pytest.importorskip("espeakng_loader", reason="espeakng-loader (eSpeak NG) is not installed")

SENTENCES = ["This is Los Angeles.", "And it’s the height of summer.",
             "In a small bungalow, Clara serves homemade chili -- wine in blue plastic."]


def test_word_onsets_come_from_the_synthesisers_events_and_mark_the_speech():
    clips, words = speech.synthesize_sentences(["one", "Yes, two three"], cache=False)
    assert words["word"].tolist() == ["one", "Yes", "two", "three"]
    assert words.loc[0, "onset"] == 0 and words.loc[1, "onset"] == 0  # each clip starts with its first word
    assert 0.3 < words.loc[2, "onset"] < words.loc[3, "onset"] < len(clips[1]) / speech.ESPEAK_SR
    # Sound between onset and offset, none after the clip.
    for s, on, off in words[["sentence", "onset", "offset"]].itertuples(index=False):
        clip = clips[s][int(on * speech.ESPEAK_SR):int(off * speech.ESPEAK_SR)]
        assert np.abs(clip).max() > 1000 and on < off <= len(clips[s]) / speech.ESPEAK_SR
    # The pause at the comma belongs to no word: "Yes" ends well before "two" starts.
    assert words.loc[1, "offset"] < words.loc[2, "onset"] - 0.08


def test_an_event_on_punctuation_goes_to_the_next_word():
    clips, words = speech.synthesize_sentences([SENTENCES[2]], cache=False)
    wine = words.set_index("word").loc["wine"]
    assert np.isfinite(wine["onset"]) and wine["onset"] > words.set_index("word").loc["chili", "onset"]


def test_placed_speech_is_deterministic_on_the_course_rate(tmp_path):
    wav, words = speech.speak_story(SENTENCES, 12.0, start_s=1.0, tail_s=1.0, cache=False)
    again, words_again = speech.speak_story(SENTENCES, 12.0, start_s=1.0, tail_s=1.0, cache=False)
    assert wav.dtype == np.float32 and wav.shape == (12 * 16000,) and np.array_equal(wav, again)
    assert words.equals(words_again)
    aligned = words[words.aligned]
    assert aligned["start"].iloc[0] == 1.0 and np.all(np.diff(aligned["start"]) > 0)
    assert aligned["end"].iloc[-1] <= 12.0 - 1.0 + 0.01
    # Energy where the words are, near-silence in the pause before the first sentence.
    assert np.abs(wav[:int(0.9 * 16000)]).max() < 1e-3
    first = wav[int(aligned["start"].iloc[0] * 16000):int(aligned["end"].iloc[0] * 16000)]
    assert np.sqrt(np.mean(first ** 2)) > 0.01


def test_the_alignment_file_is_in_the_exact_gentle_format(tmp_path):
    wav, words = speech.speak_story(SENTENCES, 12.0, start_s=1.0, tail_s=1.0, cache=False)
    words.loc[3, "aligned"] = False  # as Gentle leaves ~1-3 % of the words
    path = tmp_path / "align.csv"
    speech.write_gentle_csv(words, path)
    raw = path.read_bytes()
    assert raw.count(b"\r\n") == len(words) and b"\r\r" not in raw  # CRLF rows like the real files
    rows = list(csv.reader(open(path, newline="", encoding="utf-8")))
    assert all(len(r) == 4 for r in rows) and rows[0][0] == "This"
    assert rows[3] == [words.loc[3, "word"], "", "", ""]
    its = next(r for r in rows if r[0].startswith("it"))
    assert its[:2] == ["it’s", "it's"]  # unicode apostrophe spoken, ASCII in the lowercase column
    assert not any(ch in r[0] for r in rows for ch in ",.-")  # punctuation is not a word
    loaded = load_align(path)
    assert len(loaded) == len(words) and loaded["aligned"].sum() == words["aligned"].sum()
    assert np.allclose(loaded["start"][words.aligned], words["start"][words.aligned])


def test_the_cache_is_keyed_by_content(tmp_path):
    first = speech.synthesize_sentences(SENTENCES[:2], cache_dir=tmp_path)
    files = list(tmp_path.glob("speech-*.npz"))
    assert len(files) == 1
    again = speech.synthesize_sentences(SENTENCES[:2], cache_dir=tmp_path)
    assert all(np.array_equal(a, b) for a, b in zip(first[0], again[0])) and first[1].equals(again[1])
    faster = speech.synthesize_sentences(SENTENCES[:2], rate=220, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("speech-*.npz"))) == 2
    assert sum(map(len, faster[0])) < 0.9 * sum(map(len, first[0]))


def test_bad_input_says_what_is_wrong():
    with pytest.raises(ValueError, match="no voice 'xx-nonexistent'"):
        speech.synthesize_sentences(["hello"], voice="xx-nonexistent", cache=False)
    with pytest.raises(ValueError, match="one per sentence \\(2\\), got 3"):
        speech.synthesize_sentences(["a", "b"], rate=[170, 180, 190], cache=False)
    with pytest.raises(ValueError, match="more than the .* s available"):
        speech.speak_story(SENTENCES, 3.0, cache=False)


def test_missing_espeak_is_one_clear_sentence(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_espeak(name, *args, **kwargs):
        if name == "espeakng_loader":
            raise ImportError("No module named 'espeakng_loader'")
        return real_import(name, *args, **kwargs)

    speech.espeak.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_espeak)
    try:
        with pytest.raises(speech.SpeechUnavailable, match="espeakng-loader is not installed"):
            speech.espeak()
    finally:
        monkeypatch.undo()
        speech.espeak.cache_clear()
