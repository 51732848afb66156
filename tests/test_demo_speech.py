"""The demo's audio is eSpeak NG speech with a Gentle-format alignment from its word events; without eSpeak,
the synthetic buzz with one message; phoneme-class drivers planted where nothing else is."""

import re

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_REFERENCE

from encoding_kit.data.course_files import data_source, load_align, load_audio, load_fmri
from encoding_kit.data.rois import AREAS, N_AREAS, roi_names
from encoding_kit.demo import generate as demo
from encoding_kit.demo import speech as demo_speech
from encoding_kit.demo import synthesis as speech
from encoding_kit.demo.generate import hrf_convolved_drivers, load_truth, make_demo_dataset
from encoding_kit.features.phonemes import phoneme_class_features

GENTLE_ROW = re.compile(r"^[^,]+,([^,]*),(\d+\.\d+)?,(\d+\.\d+)?$")


def test_the_demo_audio_is_espeak_speech_aligned_by_its_word_events(small_demo):
    pytest.importorskip("espeakng_loader", reason="espeakng-loader (eSpeak NG) is not installed")
    truth = load_truth(small_demo)
    assert str(truth["speech"]) == "espeak"
    words = load_align(data_dir=small_demo)
    wav, sr = load_audio(data_dir=small_demo)
    aligned = words[words["aligned"]]
    # Every aligned word holds sound; the gaps between sentences longer than 0.3 s are near-silent.
    rms = [np.sqrt(np.mean(wav[int(a * sr):int(b * sr)] ** 2)) for a, b in aligned[["start", "end"]].to_numpy()]
    assert np.median(rms) > 0.03
    gaps = [(b + 0.05, a - 0.05) for b, a in zip(aligned["end"].to_numpy()[:-1], aligned["start"].to_numpy()[1:])
            if a - b > 0.3]
    assert len(gaps) > 20
    assert np.median([np.abs(wav[int(a * sr):int(b * sr)]).max() for a, b in gaps]) < 0.01
    # The true times of every word (the blanked rows too) drive the truth; the file agrees where it has times.
    np.testing.assert_allclose(truth["word_start_true"][words["aligned"].to_numpy()], aligned["start"], atol=1e-6)


def test_the_alignment_file_looks_like_the_real_gentle_file(small_demo):
    files = [small_demo / "21styear_align.csv", SHARED_REFERENCE / "itsnotthefall_align.csv"]
    for raw in (f.read_bytes() for f in files if f.exists()):  # the real file checks the checks (../shared)
        lines = raw.decode("utf-8").split("\r\n")
        assert lines[-1] == "" and all(GENTLE_ROW.match(line) for line in lines[:-1])  # CRLF rows, 4 fields
        blank = [line for line in lines[:-1] if line.endswith(",,,")]
        assert 0.003 < len(blank) / (len(lines) - 1) < 0.05  # ~1-3 % unaligned rows, word kept
        assert "’" in raw.decode("utf-8")
        noisy = [line for line in lines if re.search(r"\d\.\d{6,}", line)]  # 27.669999999999998, as Gentle sums
        assert 0.1 < len(noisy) / len(lines) < 0.7
    rows = pd.read_csv(small_demo / "21styear_align.csv", header=None, dtype=str, keep_default_na=False)
    spoken = rows[rows[0].str.contains("’")]
    assert (spoken[1][spoken[2] != ""] == spoken[0][spoken[2] != ""].str.lower().str.replace("’", "'")).all()


def test_merged_words_share_their_events_interval_by_letters():
    table = pd.DataFrame({"word": ["from", "the", "car", "a", "bus"], "sentence": [0, 0, 0, 1, 1],
                          "start": [1.0, np.nan, 1.7, np.nan, 3.0], "end": [1.7, np.nan, 2.0, np.nan, 3.4]})
    start, end = demo_speech.share_merged_words(table)
    np.testing.assert_allclose(start, [1.0, 1.4, 1.7, 3.0, 3.1])
    np.testing.assert_allclose(end, [1.4, 1.7, 2.0, 3.1, 3.4])


def test_without_espeak_the_demo_is_the_synthetic_buzz_with_one_message(tmp_path, monkeypatch, capsys):
    def no_espeak():
        raise speech.SpeechUnavailable("eSpeak NG is not available: the package espeakng-loader is not installed")

    monkeypatch.setattr(speech, "espeak", no_espeak)
    out = make_demo_dataset(tmp_path / "d", n_subjects=2, n_trs=60, seed=3)
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and "eSpeak NG is not available" in printed  # one line: what, and what instead
    assert "synthetic buzz-and-formant speech" in printed
    truth = load_truth(out)
    assert str(truth["speech"]) == "synthetic" and data_source(out) == "demo"
    wav, sr = load_audio(data_dir=out)
    assert wav.size == int((60 * 1.5 + 0.75) * sr)
    words = load_align(data_dir=out)
    assert words["aligned"].mean() > 0.9 and np.isfinite(truth["drivers"]).all()
    monkeypatch.undo()
    spoken = make_demo_dataset(tmp_path / "e", n_subjects=2, n_trs=60, seed=3)
    if str(load_truth(spoken)["speech"]) == "espeak":  # with eSpeak installed, other audio
        assert (out / "21styear_audio.wav").read_bytes() != (spoken / "21styear_audio.wav").read_bytes()


def test_phoneme_drivers_are_planted_alone_in_their_areas(medium_demo):
    truth = load_truth(medium_demo)
    names, drivers = roi_names(), list(truth["driver_names"])
    weights = truth["weights"]
    fmri = load_fmri(data_dir=medium_demo)
    mean = np.mean(list(fmri.values()), axis=0)
    convolved = hrf_convolved_drivers(truth["drivers"], truth["hrf"])
    for area, phone_class in demo.PHONEME_ROIS.items():
        column = drivers.index(f"phoneme_{phone_class}")
        for hemi in (0, 1):
            roi = AREAS.index(area) + hemi * N_AREAS
            assert np.flatnonzero(weights[roi]).tolist() == [column], names[roi]  # nothing else planted there
            assert np.corrcoef(convolved[:, column], mean[:, roi])[0, 1] > 0.4, names[roi]
            assert abs(np.corrcoef(convolved[:, 0], mean[:, roi])[0, 1]) < 0.3, names[roi]  # not the energy
        assert np.count_nonzero(weights[:, column]) == 2  # left and right of this area only
    # The phoneme drivers are the class seconds beyond the amount of speech: uncorrelated with the phone total.
    seconds, _ = phoneme_class_features(pd.DataFrame({"word": truth["word_text"],
                                                            "start": truth["word_start_true"],
                                                            "end": truth["word_end_true"]}),
                                              truth["drivers"].shape[0], weighting="duration")
    for phone_class in demo.PHONEME_ROIS.values():
        column = truth["drivers"][:, drivers.index(f"phoneme_{phone_class}")]
        assert abs(np.corrcoef(column, seconds.sum(1))[0, 1]) < 1e-6
