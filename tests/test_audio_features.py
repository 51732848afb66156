"""Audio features: windows end at the end of each TR, every family runs offline, baselines."""

import numpy as np
import pytest

from encoding_kit.data.course_files import load_align, load_audio
from encoding_kit.data.timebase import audio_window_bounds
from encoding_kit.demo.generate import load_truth
from encoding_kit.features.audio import extract_audio_features, windows_batch
from encoding_kit.features.baseline import audio_features, baseline_features
from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.models import standin as make_standin

SR = 16000

NO_CACHE = ExtractionRun(cache=False, progress=False)
"""Features computed afresh (never read from or written to the cache), without a progress bar."""


def test_each_window_ends_at_the_last_sample_of_its_tr():
    wav = np.arange(1, 16001 * 10, dtype=np.float32)  # sample i holds i + 1
    starts, stops = audio_window_bounds(5, SR, tr=1.5, window_trs=2)
    batch = windows_batch(wav, SR, starts, stops)
    for k in range(5):
        assert batch[k, -1] == (k + 1) * 1.5 * SR  # value of sample (k+1)*TR*sr - 1
        assert batch[k].size == 3 * SR
    assert np.all(batch[0, : int(1.5 * SR)] == 0)  # before t = 0: zeros


@pytest.mark.parametrize("family", ["wav2vec2", "wavlm", "hubert", "whisper", "clap"])
def test_audio_families_run_offline_and_never_hear_the_future(family):
    lm = make_standin(family, family)
    rng = np.random.default_rng(0)
    wav = 0.1 * rng.standard_normal(int(12 * 1.5 * SR)).astype(np.float32)
    later = wav.copy()
    later[int(6 * 1.5 * SR):] = rng.standard_normal(later.size - int(6 * 1.5 * SR))  # change TR 6 onwards
    kw = dict(window_trs=2, run=ExtractionRun(cache=False, progress=False, batch_size=4))
    a = extract_audio_features(wav, SR, 12, lm, **kw)
    b = extract_audio_features(later, SR, 12, lm, **kw)
    n_layers = len(a)
    assert n_layers >= 3 and all(v.shape[0] == 12 and np.isfinite(v).all() for v in a.values())
    for layer in a:
        np.testing.assert_allclose(a[layer][:6], b[layer][:6], atol=1e-4)  # TRs 0..5 end before the change
        assert not np.allclose(a[layer][7:], b[layer][7:], atol=1e-4)


def test_windows_longer_than_the_model_input_are_refused_or_keep_their_end():
    wav = 0.1 * np.random.default_rng(2).standard_normal(int(12 * 1.5 * SR)).astype(np.float32)
    kw = dict(run=NO_CACHE, layers=[1])
    whisper = make_standin("whisper", "whisper")  # reads 12 s: 8 TRs fit, 9 do not
    assert extract_audio_features(wav, SR, 10, whisper, window_trs=8, **kw)[1].shape[0] == 10
    with pytest.raises(ValueError, match="at most 12 s of audio, but the window is 13.5 s"):
        extract_audio_features(wav, SR, 10, whisper, window_trs=9, **kw)
    clap = make_standin("clap", "clap")  # reads 4 s: longer windows keep their last 4 s, deterministically
    first = extract_audio_features(wav, SR, 10, clap, window_trs=6, **kw)[1]
    np.testing.assert_array_equal(first, extract_audio_features(wav, SR, 10, clap, window_trs=6, **kw)[1])
    np.testing.assert_allclose(first, extract_audio_features(wav, SR, 10, clap, window_trs=3, **kw)[1],
                               atol=1e-5)  # 6 TRs (9 s) and 3 TRs (4.5 s) both keep the same last 4 s


def test_tr_pooling_differs_from_mean_and_layers_are_checked():
    lm = make_standin("wav2vec2", "wav2vec2")
    wav = 0.1 * np.random.default_rng(1).standard_normal(int(6 * 1.5 * SR)).astype(np.float32)
    kw = dict(run=NO_CACHE, layers=[2])
    mean = extract_audio_features(wav, SR, 6, lm, frame_pooling="mean", **kw)
    last = extract_audio_features(wav, SR, 6, lm, frame_pooling="tr", **kw)
    assert not np.allclose(mean[2], last[2])
    with pytest.raises(ValueError, match=r"layers \[7\] out of range"):
        extract_audio_features(wav, SR, 6, lm, layers=[7], run=ExtractionRun(cache=False))
    with pytest.warns(UserWarning, match="zero-padded"):
        extract_audio_features(wav, SR, 8, lm, layers=[1], run=NO_CACHE)


def test_audio_cache_hit(tmp_path, monkeypatch):
    import encoding_kit.features.audio as audio

    lm = make_standin("hubert", "hubert")
    wav = 0.1 * np.random.default_rng(2).standard_normal(int(4 * 1.5 * SR)).astype(np.float32)
    kw = dict(layers=[1], run=ExtractionRun(cache_dir=tmp_path, progress=False))
    first = extract_audio_features(wav, SR, 4, lm, **kw)
    tr_pooled = extract_audio_features(wav, SR, 4, lm, **{**kw, "frame_pooling": "tr",
                                                         "run": kw["run"].replace(cache=False)})
    monkeypatch.setattr(audio, "_forward", lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
    np.testing.assert_array_equal(first[1], extract_audio_features(wav, SR, 4, lm, **kw)[1])
    assert list(extract_audio_features(wav, SR, 4, lm, **{**kw, "layers": [3]})) == [3]  # all layers stored
    np.testing.assert_allclose(extract_audio_features(wav, SR, 4, lm, **{**kw, "frame_pooling": "tr"})[1],
                               tr_pooled[1], rtol=1e-5, atol=1e-6)  # and both frame poolings
    with pytest.raises(AssertionError, match="recomputed"):
        extract_audio_features(wav, SR, 4, lm, **{**kw, "window_trs": 3})
    monkeypatch.setattr(audio, "run_precision", lambda device=None, requested=None: "bf16-autocast")  # as on a GPU
    with pytest.raises(AssertionError, match="recomputed"):
        extract_audio_features(wav, SR, 4, lm, **kw)


def test_baselines_track_the_planted_drivers(small_demo):
    words = load_align(data_dir=small_demo)
    wav, sr = load_audio(data_dir=small_demo)
    feats = baseline_features(words, wav, sr, 300)
    assert set(feats) == {"word_rate", "phoneme_rate", "word_length", "log_frequency", "envelope", "log_mel"}
    assert all(v.shape[0] == 300 for v in feats.values()) and feats["log_mel"].shape[1] == 32
    truth = load_truth(small_demo)
    assert np.corrcoef(feats["envelope"][:, 0], truth["drivers"][:, 0])[0, 1] > 0.95
    assert np.corrcoef(feats["word_rate"][:, 0], truth["drivers"][:, 1])[0, 1] > 0.95
    assert np.corrcoef(feats["phoneme_rate"][:, 0], feats["word_rate"][:, 0])[0, 1] > 0.5


def test_audio_standins_hear_the_loudness_of_the_demo(small_demo):
    """A random wav2vec2-style stand-in must keep loudness, or the demo's audio models predict nothing."""
    wav, sr = load_audio(data_dir=small_demo)
    drive = load_truth(small_demo)["drivers"][:, 0]  # acoustic energy per TR
    X = extract_audio_features(wav, sr, len(drive), make_standin("wav2vec2", "wav2vec2"), layers=[4],
                                     run=NO_CACHE)[4]
    Z = np.c_[(X - X.mean(0)) / (X.std(0) + 1e-9), np.ones(len(X))]
    half = len(X) // 2
    w = np.linalg.lstsq(Z[:half], drive[:half], rcond=None)[0]
    assert np.corrcoef(Z[half:] @ w, drive[half:])[0, 1] > 0.25  # held-out decoding of the acoustic driver


@pytest.mark.parametrize("seconds", [1.5, 3.0, 4.0, 10.0])
def test_clap_log_mel_equals_the_clap_feature_extractor(seconds):
    from transformers import ClapFeatureExtractor

    from encoding_kit.features.families.clap import clap_log_mel

    standin = make_standin("clap", "clap").processor.feature_extractor  # 4 s input
    real = ClapFeatureExtractor(frequency_min=50)  # the layout of laion/clap-htsat-unfused: 10 s, 50-14000 Hz
    batch = 0.1 * np.random.default_rng(3).standard_normal((3, int(seconds * 48000))).astype(np.float32)
    batch[1, : batch.shape[1] // 3] = 0  # silence: the -100 dB floor, where float32 differs most
    for extractor in (standin, real):
        if batch.shape[1] > extractor.nb_max_samples:
            with pytest.raises(ValueError, match="longer than CLAP's input"):
                clap_log_mel(batch, extractor)
            continue
        expected = extractor(list(batch), sampling_rate=48000, return_tensors="np", truncation="rand_trunc",
                             padding="repeatpad").input_features
        got = clap_log_mel(batch, extractor).numpy()
        assert got.shape == expected.shape  # dB: float32 STFT against the extractor's float64
        audible = expected > -60
        np.testing.assert_allclose(got[audible], expected[audible], atol=1e-3)
        np.testing.assert_allclose(got, expected, atol=0.1)  # near-silent bins, close to the -100 dB floor


@pytest.mark.parametrize("k", [3, 4])
def test_baseline_audio_hears_nothing_of_a_sound_that_starts_at_the_next_tr(k):
    # Silence, then a tone from exactly k * 1.5 s: TR k - 1 must see none of it (frames assigned by their start
    # read 30 ms into the next TR), TR k must.
    sr, n_trs = 16000, 8
    t = np.arange(int(n_trs * 1.5 * sr)) / sr
    wav = np.where(t >= k * 1.5, 0.5 * np.sin(2 * np.pi * 440 * t), 0.0).astype(np.float32)
    feats = audio_features(wav, sr, n_trs)
    silent_mel = feats["log_mel"][0]
    assert np.all(feats["envelope"][:k, 0] == 0) and feats["envelope"][k, 0] > 0.1
    np.testing.assert_array_equal(feats["log_mel"][k - 1], silent_mel)
    assert feats["log_mel"][k].max() > silent_mel.max() + 5


def test_clap_refuses_tr_frame_pooling_instead_of_returning_the_mean():
    clap = make_standin("clap", "clap")
    wav = 0.1 * np.random.default_rng(4).standard_normal(int(4 * 1.5 * SR)).astype(np.float32)
    with pytest.raises(ValueError, match="frame_pooling='tr' is not available for clap"):
        extract_audio_features(wav, SR, 4, clap, layers=[1], frame_pooling="tr", run=NO_CACHE)
    assert extract_audio_features(wav, SR, 4, clap, layers=[1], frame_pooling="mean", run=NO_CACHE)[1].shape[0] == 4
