"""How an extraction runs, as one value (ExtractionRun): checked once, the same cache keys and features as the
keywords it replaced, and the old keywords still accepted with a warning that names the new form."""

import dataclasses
import inspect
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from encoding_kit.features import audio, text
from encoding_kit.features.audio import extract_audio_features
from encoding_kit.features.audio_frames import extract_frame_sequences
from encoding_kit.features.extraction_run import ExtractionRun, MovedKeywordWarning
from encoding_kit.features.models import standin
from encoding_kit.features.text import extract_text_features
from encoding_kit.features.whisper_decoder import whisper_decoder_features
from encoding_kit.run import sweeps

SR, N_TRS = 16000, 4
WORDS = ("This is Los Angeles. And it’s the height of summer. In a small bungalow off of La Cienega, "
         "Clara serves homemade chili").split()
TRS = np.repeat(np.arange(4), [5, 6, 5, 6])
EXTRACTORS = (extract_text_features, extract_audio_features, whisper_decoder_features, extract_frame_sequences)


def fixed_weights(loaded):
    """The stand-in with every parameter set to a ramp: its weight hash does not hang on torch's random init."""
    with torch.no_grad():
        for p in loaded.model.parameters():
            p.copy_(torch.linspace(-0.05, 0.05, p.numel()).reshape(p.shape))
    return loaded


def settings(make):
    """{label: (extractor, positional inputs, what to compute)} on tiny stand-ins built by ``make(name, type)``."""
    words = pd.DataFrame({"word": WORDS, "tr": TRS, "start": 1.5 * TRS + 0.1 * (np.arange(len(WORDS)) % 5)})
    wav = 0.1 * np.random.default_rng(0).standard_normal(int(N_TRS * 1.5 * SR)).astype(np.float32)
    gpt2, bert = make("gpt2", "gpt2"), make("random-bert", "bert")
    w2v, whisper = make("wav2vec2", "wav2vec2"), make("whisper", "whisper")
    return {
        "text-exact": (extract_text_features, (WORDS, gpt2), dict(layers=[1], context_tokens=8)),
        "text-strided": (extract_text_features, (WORDS, gpt2), dict(layers=[1], context_tokens=8, mode="strided")),
        "text-tr-bert": (extract_text_features, (words, bert), dict(layers=[1], context_tokens=16, mode="tr",
                                                                    word_pooling="mean")),
        "text-apostrophes": (extract_text_features, (WORDS, gpt2), dict(layers=[1], context_tokens=8,
                                                                        normalize_apostrophes=False)),
        "audio-wav2vec2": (extract_audio_features, (wav, SR, N_TRS, w2v), dict(layers=[1], window_trs=2)),
        "audio-whisper-shared": (extract_audio_features, (wav, SR, N_TRS, whisper), dict(layers=[1], window_trs=2)),
        "audio-whisper-window": (extract_audio_features, (wav, SR, N_TRS, whisper),
                                 dict(layers=[1], window_trs=2, frame_pooling="tr", whisper_input="window")),
        "decoder": (whisper_decoder_features, (wav, SR, words, N_TRS, whisper), dict(layers=[1], window_trs=2)),
        "frames": (extract_frame_sequences, (wav, SR, N_TRS, whisper), dict(layers=[1], frames_per_tr=2,
                                                                             window_trs=2)),
    }


MAIN_KEYS = {
    "text-exact": ["text-cd091574a1df5d6e", "text-dd0bbf42142d817c"],
    "text-strided": ["text-4134b53822f14eb5", "text-de510a710342be04"],
    "text-tr-bert": ["text-6ded36437ef51ba0", "text-ef7d7123a0238ffa"],
    "text-apostrophes": ["text-c1ef5b4171575380", "text-d8dad0f9bf3be58d"],
    "audio-wav2vec2": ["audio-4fc92564b4d6d130", "audio-d1ea0899bb058340"],
    "audio-whisper-shared": ["audio-334af4ebab6cc724", "audio-b24f1077f6788d01"],
    "audio-whisper-window": ["audio-0a0d540295937970", "audio-bc300815ba90e473"],
    "decoder": ["audio-334af4ebab6cc724", "audio-b24f1077f6788d01",  # the encoder's features of the same pass
                "whisper_decoder-11892562c0bb120b", "whisper_decoder-13f122aeaf4e27f0"],
    "frames": ["audio-frames-7e43ee71fa519bb3"],
}
"""The cache folders each setting wrote with main's keywords (commit cd14b7c, before ExtractionRun), float32, on the
fixed-weight stand-ins: the same settings must find the features their caches already hold. The text keys were
pinned again after the tokenizer's vocabulary joined the key (``core.storage.processor_hash``), which changed them
once on purpose; the audio keys are cd14b7c's."""


@pytest.fixture(scope="module")
def fixed_settings():
    return settings(lambda name, model_type: fixed_weights(standin(name, model_type)))


@pytest.mark.parametrize("label", sorted(MAIN_KEYS))
def test_cache_keys_are_the_ones_of_the_keywords_it_replaced(fixed_settings, label, tmp_path, monkeypatch):
    monkeypatch.setenv("ENCODING_KIT_PRECISION", "float32")
    function, inputs, what = fixed_settings[label]
    function(*inputs, **what, run=ExtractionRun(batch_size=2, device="cpu", cache_dir=tmp_path, progress=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == MAIN_KEYS[label]


def test_old_keywords_compute_the_same_features_under_the_same_keys_with_one_warning(tmp_path):
    """Last term's call (``batch_size=2, cache_dir=..., progress=False``) runs exactly as its ``run=``, bit for bit."""
    for label, (function, inputs, what) in settings(standin).items():
        old_dir, new_dir = tmp_path / label / "old", tmp_path / label / "new"
        with pytest.warns(MovedKeywordWarning) as caught:
            old = function(*inputs, **what, batch_size=2, cache_dir=old_dir, progress=False)
        moved = [w for w in caught if issubclass(w.category, MovedKeywordWarning)]
        assert len(moved) == 1 and moved[0].filename == __file__, label  # pointed at the caller's line
        assert (f"{function.__name__}(..., run=ExtractionRun(batch_size=2, cache_dir={Path(old_dir)!r}, "
                "progress=False))") in str(moved[0].message)
        new = function(*inputs, **what, run=ExtractionRun(batch_size=2, cache_dir=new_dir, progress=False))
        assert sorted(old) == sorted(new), label
        for layer in new:
            np.testing.assert_array_equal(old[layer], new[layer], err_msg=label)
        assert sorted(p.name for p in old_dir.iterdir()) == sorted(p.name for p in new_dir.iterdir()), label


def test_a_moved_keyword_next_to_run_and_a_run_of_another_type_are_refused():
    gpt2 = standin("gpt2", "gpt2")
    with pytest.raises(TypeError, match=r"got run= and batch_size=4; .*run=ExtractionRun\(batch_size=4, cache=False\)"):
        extract_text_features(WORDS, gpt2, batch_size=4, run=ExtractionRun(cache=False))
    with pytest.raises(TypeError, match=r"extract_text_features: run must be an ExtractionRun .* found \{'cache'"):
        extract_text_features(WORDS, gpt2, run={"cache": False})
    with pytest.raises(TypeError, match="unexpected keyword argument 'batchsize'"):
        extract_text_features(WORDS, gpt2, batchsize=4)
    with pytest.raises(TypeError, match="positional argument"):  # the old 9th positional, batch_size, lands nowhere
        extract_text_features(WORDS, gpt2, None, [1], 8, "last", "exact", None, 4)
    with pytest.raises(TypeError, match="unexpected keyword argument 'allow_short_audio'"):  # text never took it
        extract_text_features(WORDS, gpt2, allow_short_audio=True)


def test_the_sweeps_take_the_run_and_warn_about_their_old_keywords(monkeypatch):
    seen = []
    monkeypatch.setattr(sweeps, "extract_text_features", lambda *a, **kw: seen.append(kw["run"]) or {})
    monkeypatch.setattr(sweeps, "text_features_to_trs", lambda *a, **kw: {})
    story = type("Story", (), {"words": None, "n_trs": 3})()
    sweeps.text_layers(story, object(), run=ExtractionRun(batch_size=3))
    with pytest.warns(MovedKeywordWarning, match=r"text_layers\(\.\.\., run=ExtractionRun\(cache=False\)\)"):
        sweeps.text_layers(story, object(), cache=False)
    assert seen == [ExtractionRun(batch_size=3), ExtractionRun(cache=False)]


def test_no_extractor_signature_shows_a_moved_keyword():
    fields = {f.name for f in dataclasses.fields(ExtractionRun)}
    for function in (*EXTRACTORS, sweeps.text_layers, sweeps.audio_layers, sweeps.decoder_layers):
        parameters = inspect.signature(function).parameters
        assert not fields & set(parameters), function.__name__
        assert parameters["run"].kind is inspect.Parameter.KEYWORD_ONLY or function.__module__.endswith("sweeps")


def test_the_extractors_default_batch_sizes_are_kept(monkeypatch):
    """``batch_size=None``: 16 text windows, 8 audio windows per pass, as the old defaults."""
    sizes = {}
    run_windows, forward = text._run_windows, audio._forward
    monkeypatch.setattr(text, "_run_windows", lambda *a, **kw: sizes.setdefault("text", a[8]) and run_windows(*a, **kw))
    monkeypatch.setattr(audio, "_forward", lambda *a, **kw: sizes.setdefault("audio", len(a[1])) and forward(*a, **kw))
    extract_text_features(WORDS * 2, standin("gpt2", "gpt2"), layers=[1], context_tokens=8,
                          run=ExtractionRun(cache=False, progress=False))
    wav = np.zeros(int(10 * 1.5 * SR), np.float32)
    extract_audio_features(wav, SR, 10, standin("wav2vec2", "wav2vec2"), layers=[1],
                           run=ExtractionRun(cache=False, progress=False))
    assert sizes == {"text": 16, "audio": 8}


@pytest.mark.parametrize("field, value, error", [
    ("batch_size", 0, ValueError), ("batch_size", 2.5, TypeError), ("batch_size", True, TypeError),
    ("batch_size", "4", TypeError), ("device", "gpu 0", ValueError), ("device", 0, TypeError),
    ("allow_standin", "yes", TypeError), ("cache", None, TypeError), ("cache_dir", 5, TypeError),
    ("progress", 1, TypeError), ("allow_short_audio", "no", TypeError)])
def test_each_field_is_checked_once_with_one_sentence(field, value, error):
    with pytest.raises(error) as caught:
        ExtractionRun(**{field: value})
    message = str(caught.value)
    assert message.startswith(f"ExtractionRun: {field} must be ") and message.endswith(f"found {value!r}.")
    assert message.count(". ") == 0  # one sentence
    with pytest.raises(error):  # a copy is checked like a new one
        ExtractionRun().replace(**{field: value})


def test_a_run_is_a_frozen_value_printed_by_what_differs_from_the_defaults():
    run = ExtractionRun(batch_size=np.int64(4), device=torch.device("cuda", 1), cache_dir="features")
    assert repr(run) == "ExtractionRun(batch_size=4, device='cuda:1', cache_dir=PosixPath('features'))"
    assert repr(ExtractionRun()) == "ExtractionRun()"
    assert run == ExtractionRun(batch_size=4, device="cuda:1", cache_dir=Path("features")) != ExtractionRun()
    assert len({run, run.replace(), ExtractionRun()}) == 2  # hashable, equal by value
    assert type(run.batch_size) is int and run.batch(16) == 4 and ExtractionRun().batch(16) == 16
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.cache = False


def test_old_keywords_are_accepted_without_a_warning_filter():
    """Shown by default: a FutureWarning, not a DeprecationWarning that Python hides outside ``__main__``."""
    assert issubclass(MovedKeywordWarning, FutureWarning) and not issubclass(MovedKeywordWarning, DeprecationWarning)
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()  # Python's own default filters
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        extract_text_features(["a", "b"], standin("gpt2", "gpt2"), layers=[1], context_tokens=4, cache=False,
                              progress=False)
    assert [w.category for w in caught if issubclass(w.category, FutureWarning)] == [MovedKeywordWarning]
