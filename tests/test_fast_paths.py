"""Fast paths keep their causality and their definition: BERT with one window per TR, Whisper without padding."""

import copy

import numpy as np
import pandas as pd
import pytest

from encoding_kit.features.audio import extract_audio_features
from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.models import is_causal, standin
from encoding_kit.features.quantize import quantize_dynamic
from encoding_kit.features.text import extract_text_features
from encoding_kit.features.text_windows import tr_window_ends
from encoding_kit.features.whisper_input import encoder_positions

SR = 16000
WORDS = ("this is los angeles and it is the height of summer in a small bungalow off of la cienega clara serves "
         "homemade chili and chips in red plastic bowls wine in blue plastic").split()
TRS = np.repeat(np.arange(11), [3, 2, 4, 3, 1, 3, 3, 2, 3, 4, 5])  # 33 words in 11 TRs

NO_CACHE = ExtractionRun(cache=False, progress=False)
"""Features computed afresh (never read from or written to the cache), without a progress bar."""


def story_words(words=WORDS):
    return pd.DataFrame({"word": words, "tr": TRS[:len(words)]})


@pytest.fixture(scope="module")
def bert():
    return standin("random-bert", "bert")  # bidirectional: every token sees its whole window


TEXT_KW = dict(layers=[1, 4], context_tokens=12, run=NO_CACHE)


def test_tr_windows_end_at_the_last_word_of_each_tr():
    ends = np.arange(1, len(TRS) + 1) * 2  # two tokens per word
    expected = np.array([ends[np.flatnonzero(TRS == t)[-1]] for t in TRS])
    np.testing.assert_array_equal(tr_window_ends(ends, TRS), expected)


def test_tr_mode_is_causal_across_trs(bert):
    """Changing the words of TR 6 moves no word of TRs 0-5 (it does move TR 6 itself)."""
    changed = list(WORDS)
    for i in np.flatnonzero(TRS == 6):
        changed[i] = "plastic"
    a = extract_text_features(story_words(), bert, mode="tr", **TEXT_KW)
    b = extract_text_features(story_words(changed), bert, mode="tr", **TEXT_KW)
    before = TRS < 6
    for layer in (1, 4):
        np.testing.assert_allclose(a[layer][before], b[layer][before], atol=1e-5)
        assert not np.allclose(a[layer][TRS == 6], b[layer][TRS == 6], atol=1e-4)


def test_tr_mode_lookahead_is_the_rest_of_the_own_tr_only(bert):
    """The documented lookahead: the first word of a TR sees its TR's last word in mode 'tr', not in exact mode."""
    tr2 = np.flatnonzero(TRS == 2)
    changed = list(WORDS)
    changed[tr2[-1]] = "plastic"
    for mode, moves in (("tr", True), ("exact", False)):
        a = extract_text_features(story_words(), bert, mode=mode, **TEXT_KW)[4]
        b = extract_text_features(story_words(changed), bert, mode=mode, **TEXT_KW)[4]
        assert (not np.allclose(a[tr2[0]], b[tr2[0]], atol=1e-4)) == moves, mode


def test_tr_mode_equals_exact_mode_for_the_last_word_of_every_tr(bert):
    last = np.r_[TRS[1:] != TRS[:-1], True]
    exact = extract_text_features(story_words(), bert, mode="exact", **TEXT_KW)
    per_tr = extract_text_features(story_words(), bert, mode="tr", **TEXT_KW)
    for layer in (1, 4):
        np.testing.assert_allclose(per_tr[layer][last], exact[layer][last], atol=1e-5)
        assert not np.allclose(per_tr[layer][~last], exact[layer][~last], atol=1e-4)


def test_tr_mode_needs_the_words_trs(bert):
    with pytest.raises(ValueError, match="needs the words' TRs"):
        extract_text_features(WORDS, bert, mode="tr", **TEXT_KW)
    shuffled = story_words().assign(tr=TRS[::-1])
    with pytest.raises(ValueError, match="story order"):
        extract_text_features(shuffled, bert, mode="tr", **TEXT_KW)


# --- Whisper ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def whisper():
    return standin("whisper", "whisper")  # random weights, 12 s input


def _noise(seconds, seed=0):
    return 0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR)).astype(np.float32)


AUDIO_KW = dict(layers=[1, 4], window_trs=2, run=NO_CACHE)


@pytest.mark.parametrize("whisper_input", ["padded", "window", "past", "shared_padding"])
def test_whisper_inputs_are_causal(whisper, whisper_input):
    wav = _noise(12 * 1.5)
    changed = wav.copy()
    changed[int(7 * 1.5 * SR):] = _noise(5 * 1.5, seed=1)  # audio after the end of TR 6 changes
    a = extract_audio_features(wav, SR, 12, whisper, whisper_input=whisper_input, **AUDIO_KW)
    b = extract_audio_features(changed, SR, 12, whisper, whisper_input=whisper_input, **AUDIO_KW)
    for layer in (1, 4):
        np.testing.assert_allclose(a[layer][:7], b[layer][:7], atol=1e-5)
        assert not np.allclose(a[layer][7:], b[layer][7:], atol=1e-4)


def test_window_input_is_a_model_whose_input_is_the_window(whisper):
    """'window' = the same encoder with its position table cut to 3 s, fed the 3 s window (no padding)."""
    from transformers import WhisperFeatureExtractor

    wav = _noise(8 * 1.5, seed=2)
    ours = extract_audio_features(wav, SR, 8, whisper, whisper_input="window", **AUDIO_KW)
    cut = copy.deepcopy(whisper)
    with encoder_positions(cut.model.encoder, 150):  # 3 s = 150 frames of 20 ms
        cut.processor = WhisperFeatureExtractor(feature_size=80, sampling_rate=SR, chunk_length=3)
        reference = extract_audio_features(wav, SR, 8, cut, whisper_input="padded", **AUDIO_KW)
    for layer in (1, 4):
        np.testing.assert_allclose(ours[layer], reference[layer], atol=1e-4)
    padded = extract_audio_features(wav, SR, 8, whisper, whisper_input="padded", **AUDIO_KW)
    assert not np.allclose(ours[4], padded[4], atol=1e-3)  # the padding does change what the encoder computes
    assert whisper.model.encoder.embed_positions.num_embeddings == 600  # the model is left as it was
    assert whisper.model.config.max_source_positions == 600


def test_past_input_keeps_the_windows_frames(whisper):
    """'past' on a 2-TR window reads the model's 12 s ending at the TR: its last TR's frames are those of an 8-TR
    (12 s, unpadded) window's last TR."""
    wav = _noise(12 * 1.5, seed=3)
    kw = dict(AUDIO_KW, frame_pooling="tr", layers=[1, 4])
    past = extract_audio_features(wav, SR, 12, whisper, whisper_input="past", **kw)
    long = extract_audio_features(wav, SR, 12, whisper, **dict(kw, window_trs=8))
    for layer in (1, 4):
        np.testing.assert_allclose(past[layer], long[layer], atol=1e-4)


def test_whisper_input_is_checked(whisper):
    wav = _noise(6)
    with pytest.raises(ValueError, match="whisper_input must be one of"):
        extract_audio_features(wav, SR, 3, whisper, whisper_input="none", **AUDIO_KW)
    with pytest.raises(ValueError, match="applies to Whisper models only"):
        extract_audio_features(wav, SR, 3, standin("wav2vec2", "wav2vec2"), whisper_input="window",
                                     **AUDIO_KW)


# --- int8 --------------------------------------------------------------------------------------------------------


def test_int8_is_close_refused_by_strided_mode_causal_in_exact_mode_and_cached_apart(tmp_path):
    lm = standin("gpt2", "gpt2")
    q = quantize_dynamic(lm)
    assert q.source == lm.source + "+int8"
    # One activation scale per tensor: a late token moves earlier states a little, and the probe sees it.
    assert is_causal(lm.model) and not is_causal(q.model)
    with pytest.raises(ValueError, match="shown to be causal"):
        extract_text_features(WORDS, q, context_tokens=10, mode="strided",
                              run=NO_CACHE)
    kw = dict(layers=[2, 4], context_tokens=10, mode="exact",
              run=ExtractionRun(batch_size=16, cache=False, progress=False))
    exact = extract_text_features(WORDS, lm, **kw)
    fast = extract_text_features(WORDS, q, **kw)  # run one window at a time whatever batch_size says
    changed = extract_text_features(WORDS[:-3] + ["plastic"] * 3, q, **kw)
    for layer in (2, 4):
        r = [np.corrcoef(exact[layer][:, j], fast[layer][:, j])[0, 1] for j in range(exact[layer].shape[1])]
        assert np.median(r) > 0.95 and not np.allclose(exact[layer], fast[layer], atol=1e-6)
        np.testing.assert_array_equal(fast[layer][:-3], changed[layer][:-3])
    cached = dict(kw, run=kw["run"].replace(cache=True, cache_dir=tmp_path))
    extract_text_features(WORDS, lm, **cached)
    assert not np.allclose(extract_text_features(WORDS, q, **cached)[4], exact[4], atol=1e-6)


def test_int8_audio_windows_do_not_share_a_batch(whisper):
    q = quantize_dynamic(whisper)
    wav = _noise(10 * 1.5, seed=4)
    changed = wav.copy()
    changed[int(5 * 1.5 * SR):] *= 5  # louder after TR 4: a shared activation scale would move TRs 0-4
    kw = dict(AUDIO_KW, run=AUDIO_KW["run"].replace(batch_size=8), whisper_input="window")
    a = extract_audio_features(wav, SR, 10, q, **kw)
    b = extract_audio_features(changed, SR, 10, q, **kw)
    for layer in (1, 4):
        np.testing.assert_array_equal(a[layer][:5], b[layer][:5])
