"""Loaders on good and bad inputs, and the real Gentle format."""

import numpy as np
import pytest
import soundfile as sf
from conftest import SHARED_REFERENCE

from encoding_kit.data.course_files import DataFileError, data_dir, data_source, load_align, load_audio, load_fmri
from encoding_kit.data.story import load_story


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_load_align_reads_gentle_and_interpolates_unaligned_words(tmp_path):
    csv = write(tmp_path / "a.csv", "Well,,,\nThis,this,1.0,1.2\nis,,,\nit,,,\nLos,los,2.0,2.3\nI’m,i'm,3.1,3.4\nend,,,\n")
    words = load_align(csv)
    assert list(words.columns) == ["word", "word_lower", "start", "end", "aligned", "tr"]
    assert words["word"].tolist() == ["Well", "This", "is", "it", "Los", "I’m", "end"]
    assert words["aligned"].tolist() == [False, True, False, False, True, True, False]
    # The two middle words share the gap 1.2..2.0 s evenly, in order.
    assert words["start"].round(6).tolist()[2:4] == [1.2, 1.6]
    assert words["end"].round(6).tolist()[2:4] == [1.6, 2.0]
    assert words["start"].is_monotonic_increasing
    assert words["tr"].tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert words["word_lower"].tolist()[0] == "well"


def test_load_align_rejects_wrong_columns_and_decreasing_onsets(tmp_path):
    with pytest.raises(DataFileError, match=r"b\.csv.*4 columns.*found 3"):
        load_align(write(tmp_path / "b.csv", "a,a,1.0\n"))
    with pytest.raises(DataFileError, match=r"c\.csv.*must not decrease.*5\.0 s on line 1"):
        load_align(write(tmp_path / "c.csv", "a,a,5.0,5.2\nb,b,4.0,4.2\n"))
    with pytest.raises(DataFileError, match="seconds"):
        load_align(write(tmp_path / "d.csv", "a,a,x,5.2\n"))


@pytest.mark.skipif(not (SHARED_REFERENCE / "itsnotthefall_align.csv").exists(), reason="../shared absent")
def test_load_align_on_a_real_narratives_file():
    words = load_align(SHARED_REFERENCE / "itsnotthefall_align.csv")
    assert len(words) == 1601 and (~words["aligned"]).sum() == 40
    assert words["start"].is_monotonic_increasing and words["start"].notna().all()
    assert words.loc[1, "word"] == "I’m" and words.loc[1, "tr"] == 17  # 25.91 s / 1.5


def test_missing_file_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"21styear_all_subs_rois\.npy.*demo"):
        load_fmri(data_dir=tmp_path)


def save_dict(path, d):
    np.save(path, d, allow_pickle=True)
    return path


def test_load_fmri_good_and_bad(tmp_path):
    rng = np.random.default_rng(0)
    good = save_dict(tmp_path / "g.npy", {"sub-002": rng.standard_normal((10, 360)), 1: rng.standard_normal((10, 360))})
    fmri = load_fmri(good)
    assert list(fmri) == [1, 2] and fmri[1].dtype == np.float32 and fmri[2].shape == (10, 360)

    np.save(tmp_path / "arr.npy", np.zeros((10, 360)))
    with pytest.raises(DataFileError, match=r"arr\.npy.*pickled dict.*shape \(10, 360\)"):
        load_fmri(tmp_path / "arr.npy")
    uneq = save_dict(tmp_path / "u.npy", {1: np.zeros((10, 360)), 2: np.zeros((9, 360))})
    with pytest.raises(DataFileError, match="unequal TR counts"):
        load_fmri(uneq)
    bad = np.zeros((10, 360))
    bad[3, :2] = np.nan
    bad[4, 7] = np.inf
    with pytest.raises(DataFileError, match=r"subject 5 has 3 NaN/inf values \(in 3 ROIs\)"):
        load_fmri(save_dict(tmp_path / "n.npy", {5: bad}))
    with pytest.raises(DataFileError, match=r"\(n_trs, 360\), found shape \(10, 300\)"):
        load_fmri(save_dict(tmp_path / "r.npy", {1: np.zeros((10, 300))}))


def test_data_dir_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    assert data_dir("elsewhere").name == "elsewhere"
    assert data_source() == "missing"


def test_load_audio_resamples_and_mixes_to_mono(tmp_path):
    t = np.arange(8000) / 8000
    stereo = np.stack([np.sin(2 * np.pi * 440 * t)] * 2, 1)
    sf.write(tmp_path / "s.wav", stereo, 8000)
    with pytest.warns(UserWarning, match="8000 Hz, expected 16000 Hz; resampling"):
        wav, sr = load_audio(tmp_path / "s.wav")
    assert sr == 16000 and wav.ndim == 1 and abs(wav.size - 16000) <= 1


def test_load_story_max_trs_crops_scan_words_and_audio_together(small_demo):

    full = load_story(small_demo, subjects=2)
    short = load_story(small_demo, subjects=2, max_trs=120)
    assert short.n_trs == 120 and all(y.shape == (120, 360) for y in short.fmri.values())
    np.testing.assert_array_equal(short.fmri[1], full.fmri[1][:120])
    assert short.words["start"].max() < 120 * 1.5 <= full.words["start"].max()
    assert len(short.words) == int((full.words["start"] < 180).sum())
    assert len(short.wav) == 180 * short.sr
    assert load_story(small_demo, max_trs=10_000).n_trs == full.n_trs  # longer than the scan: no crop


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    from encoding_kit.core.storage import atomic_write

    target = tmp_path / "sub" / "table.csv"
    atomic_write(target, lambda p: p.write_text("old"))
    assert target.read_text() == "old"

    def half_then_fail(p):
        p.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old"
    assert sorted(x.name for x in target.parent.iterdir()) == ["table.csv"]  # no temporary left behind


def test_a_short_story_reads_only_its_audio_and_it_is_the_whole_files_start(tmp_path, small_demo):
    """`max_trs` reads the first seconds of the WAV only: the same samples as the whole file's start; a truncated
    file is still named, whatever part is read."""
    full, sr = load_audio(data_dir=small_demo)
    short = load_story(small_demo, max_trs=40)
    assert 0 < len(short.wav) < len(full) and np.array_equal(short.wav, full[:len(short.wav)])
    part, _ = load_audio(data_dir=small_demo, max_seconds=3.0)
    assert len(part) in (3 * sr, 3 * sr + 1) and np.array_equal(part, full[:len(part)])
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(3 * 16000, np.float32), 16000, subtype="PCM_16")
    wav.write_bytes(wav.read_bytes()[:50_000])
    with pytest.raises(DataFileError, match="truncated: the WAV header announces 3.00 s but the file holds 1.56 s"):
        load_audio(wav, max_seconds=0.5)
