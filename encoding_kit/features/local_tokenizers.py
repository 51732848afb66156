"""Tokenizers trained locally on the demo story's language, for the random-weight stand-ins.

Trained with the ``tokenizers`` package on text from the demo grammar
(:mod:`encoding_kit.data.story_text`) plus every printable ASCII character, in
the three kinds whose word-to-token rules differ (a word is not a token):
byte-level BPE (GPT-2), WordPiece (BERT) and SentencePiece-style Metaspace BPE
(Llama, Qwen).
"""

from __future__ import annotations

import functools
import string

import numpy as np

from ..data.story_text import generate_story


def training_corpus(n_sentences=3000, seed=0):
    """Sentences from the demo grammar plus an alphabet line, list of str."""
    words = generate_story(n_sentences * 3.0, np.random.default_rng(seed))
    text = [" ".join(group["word"]) + "." for _, group in words.groupby("sentence")]
    return text + [" ".join(string.printable.split()), string.ascii_letters, "’ “ ” — … é"]


def train_tokenizer(kind, vocab_size=2000):
    """Train a fast tokenizer of one family.

    Parameters
    ----------
    kind : {"bytelevel", "wordpiece", "sentencepiece"}
    vocab_size : int

    Returns
    -------
    transformers.PreTrainedTokenizerFast
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast  # lazy: heavy, and this module is imported by every extractor

    corpus = training_corpus()
    if kind == "bytelevel":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(corpus, trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                       unk_token="<|endoftext|>")
    if kind == "wordpiece":
        special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok = Tokenizer(models.WordPiece(wordpiece_vocab(corpus, vocab_size, special), unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")),
                                                     ("[SEP]", tok.token_to_id("[SEP]"))])
        return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                       cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    if kind == "sentencepiece":
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
        tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size,
                                                            special_tokens=["<unk>", "<s>", "</s>"]))
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
        return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    raise ValueError(f"unknown tokenizer kind {kind!r}; expected bytelevel, wordpiece or sentencepiece")


def wordpiece_vocab(corpus, vocab_size, special):
    """A WordPiece vocabulary, the same in every process: {token: id}.

    The ``tokenizers`` WordPiece trainer breaks ties between equally frequent pairs in hash-map order, which changes
    from one process to the next (another vocabulary, other ids, other features for the same stand-in). A BPE over
    word-initial pieces (``"▁"``) is trained instead, whose result is stable, and turned into WordPiece form: a
    word-initial piece loses its ``"▁"``, every other piece gets ``"##"``; each character is in both forms.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.normalizer = normalizers.BertNormalizer(lowercase=True)
    bpe.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.BertPreTokenizer(),
                                                 pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")])
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special))
    pieces = [t for t, _ in sorted(bpe.get_vocab().items(), key=lambda kv: kv[1]) if t not in special]
    chars = sorted({c for piece in pieces for c in piece if c != "▁"})
    tokens = [*special, *chars, *("##" + c for c in chars)]
    tokens += [p[1:] if p.startswith("▁") else "##" + p for p in pieces if p.strip("▁")]
    return {token: i for i, token in enumerate(dict.fromkeys(tokens))}


@functools.lru_cache(maxsize=4)
def trained_tokenizer(kind):
    """A tokenizer trained locally on the demo story language (cached per process); ``kind`` as in
    :func:`train_tokenizer`."""
    return train_tokenizer(kind)
