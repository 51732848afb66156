"""The demo dataset: formats, determinism, and planted truth really planted."""

import numpy as np
import pytest

from encoding_kit.data.course_files import data_source, load_align, load_audio, load_fmri
from encoding_kit.data.rois import roi_names
from encoding_kit.demo.generate import load_truth, make_demo_dataset, topic_columns
from encoding_kit.demo.planted import planted_verdict, verdict_text


def test_demo_has_course_formats_and_shapes(small_demo):
    fmri = load_fmri(data_dir=small_demo)
    assert list(fmri) == [1, 2, 3, 4, 5, 6]
    assert all(a.shape == (300, 360) for a in fmri.values())
    words = load_align(data_dir=small_demo)
    assert 0.003 < (~words["aligned"]).mean() < 0.05
    assert words["word"].str.contains("’").any()
    rate = len(words) / (300 * 1.5)
    assert 2.0 < rate < 3.0
    wav, sr = load_audio(data_dir=small_demo)
    assert sr == 16000 and wav.size == int((300 * 1.5 + 0.75) * sr)  # 0.75 s longer, like the real file
    assert data_source(small_demo) == "demo"


def test_demo_is_deterministic(tmp_path, small_demo):
    again = make_demo_dataset(tmp_path / "again", n_subjects=6, n_trs=300, seed=1)
    for a, b in zip(load_fmri(data_dir=small_demo).values(), load_fmri(data_dir=again).values()):
        np.testing.assert_array_equal(a, b)
    assert (small_demo / "21styear_align.csv").read_bytes() == (again / "21styear_align.csv").read_bytes()
    other = make_demo_dataset(tmp_path / "other", n_subjects=6, n_trs=300, seed=2)
    assert not np.array_equal(load_fmri(data_dir=other)[1], load_fmri(data_dir=small_demo)[1])


def test_planted_drivers_are_in_their_rois(medium_demo):
    truth = load_truth(medium_demo)
    fmri = load_fmri(data_dir=medium_demo)
    mean = np.mean(list(fmri.values()), axis=0)
    names = roi_names()

    def r_with_signal(name):
        i = names.index(name)
        return np.corrcoef(truth["signal"][:, i], mean[:, i])[0, 1]

    for roi in ("L_A1", "R_PBelt", "L_A5", "L_STSdp", "L_44", "L_PGi"):
        assert r_with_signal(roi) > 0.4, roi
    for roi in ("L_V1", "R_4", "L_FFC"):
        assert not truth["driven"][names.index(roi)]
        assert np.all(truth["signal"][:, names.index(roi)] == 0)
    # Acoustic energy drives A1 and not the language areas; topics drive 44 and not A1.
    drivers = list(truth["driver_names"])
    w = truth["weights"]
    assert w[names.index("L_A1"), drivers.index("acoustic_energy")] > 0.5
    assert w[names.index("L_44"), drivers.index("acoustic_energy")] == 0
    topics = topic_columns(drivers)
    assert np.abs(w[names.index("L_44"), topics]).sum() > 0 and np.all(w[names.index("L_A1"), topics] == 0)
    # The energy driver is measured from the audio file itself.
    wav, sr = load_audio(data_dir=medium_demo)
    energy = np.sqrt((wav[: 800 * 24000].reshape(800, -1) ** 2).mean(1))
    assert np.corrcoef(energy, truth["drivers"][:, 0])[0, 1] > 0.99


def test_isc_targets_span_zero_to_about_point_six(medium_demo):
    truth = load_truth(medium_demo)
    assert truth["isc_target"].min() == 0 and 0.5 < truth["isc_target"].max() < 0.7
    assert (truth["isc_target"] == 0).sum() > 250


def test_demo_never_overwrites(tmp_path, small_demo):
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_demo_dataset(small_demo, n_subjects=2, n_trs=50)
    course = tmp_path / "course"
    course.mkdir()
    (course / "21styear_all_subs_rois.npy").write_bytes(b"real data")
    with pytest.raises(FileExistsError, match="never writes over real data"):
        make_demo_dataset(course, n_subjects=2, n_trs=50, overwrite=True)
    assert (course / "21styear_all_subs_rois.npy").read_bytes() == b"real data"


def test_planted_verdict_reads_the_numbers_not_the_labels(small_demo):
    truth = load_truth(small_demo)
    weights, names = truth["weights"], list(truth["driver_names"])
    acoustic = weights[:, names.index("acoustic_energy")] > 0.5
    language = (np.abs(weights[:, topic_columns(names)]).sum(1) > 0) & ~acoustic
    text, audio = np.zeros(360), np.zeros(360)
    text[language], audio[acoustic] = 0.3, 0.25
    text[acoustic], audio[language] = 0.05, 0.04
    good = planted_verdict({"text": np.tile(text, (3, 1)), "audio": audio}, truth)
    assert good["as_planted"].all() and list(good["best"][:2]) == ["audio", "text"]
    assert "as planted" in verdict_text(good) and "NOT" not in verdict_text(good)
    swapped = planted_verdict({"text": audio, "audio": text}, truth)
    assert not swapped["as_planted"][:2].any()
    leaky = text.copy()
    leaky[~truth["driven"]] = 0.05  # noise-only ROIs predicted: not as planted
    assert not planted_verdict({"text": leaky, "audio": audio}, truth)["as_planted"].iloc[2]
