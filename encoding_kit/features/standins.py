"""Random-weight models built from configs, and tokenizers trained locally.

Used offline: by tests (every code path with no download) and by the demo
when a named model is unreachable. Tokenizers are trained with the
``tokenizers`` package on text from the demo grammar plus every printable
ASCII character, in the three families whose word-to-token rules differ (a word is not a token):
byte-level BPE (GPT-2), WordPiece (BERT) and SentencePiece-style
Metaspace BPE (Llama, Qwen).
"""

from __future__ import annotations

import string

import numpy as np

WHISPER_STANDIN_S = 12
"""Input length of the Whisper stand-in (s): the longest audio window the notebooks use (8 TRs). The real
Whisper pads every input to 30 s; the stand-in's shorter input makes the offline demo ~4x cheaper and changes
nothing else in the extraction code, which reads the length from the feature extractor."""

SIZES = {"tiny": dict(hidden=64, layers=4, heads=4), "small": dict(hidden=768, layers=12, heads=12)}


def training_corpus(n_sentences=3000, seed=0):
    """Sentences from the demo grammar plus an alphabet line, list of str."""
    from ..demo.story_text import generate_story

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
    from transformers import PreTrainedTokenizerFast

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
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        tok.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special))
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


TEXT_TOKENIZER = {"gpt2": "bytelevel", "bert": "wordpiece", "llama": "sentencepiece", "qwen2": "sentencepiece"}


def build(family, size="tiny"):
    """(model, processor) with random weights for a family; deterministic (seed 0)."""
    import torch

    torch.manual_seed(0)
    s = SIZES[size]
    if family in TEXT_TOKENIZER:
        from .models import trained_tokenizer

        tokenizer = trained_tokenizer(TEXT_TOKENIZER[family])
        return _text_model(family, tokenizer, s), tokenizer
    return _audio_model(family, s)


def _text_model(family, tokenizer, s):
    import transformers as tf

    special = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
    common = dict(vocab_size=len(tokenizer), bos_token_id=special, eos_token_id=tokenizer.eos_token_id,
                  pad_token_id=tokenizer.pad_token_id)
    if family == "gpt2":
        config = tf.GPT2Config(n_embd=s["hidden"], n_layer=s["layers"], n_head=s["heads"], n_positions=1024, **common)
    elif family == "bert":
        config = tf.BertConfig(hidden_size=s["hidden"], num_hidden_layers=s["layers"], num_attention_heads=s["heads"],
                               intermediate_size=4 * s["hidden"], max_position_embeddings=512, **common)
    else:
        cls = tf.Qwen2Config if family == "qwen2" else tf.LlamaConfig
        config = cls(hidden_size=s["hidden"], intermediate_size=4 * s["hidden"], num_hidden_layers=s["layers"],
                     num_attention_heads=s["heads"], num_key_value_heads=s["heads"], max_position_embeddings=4096,
                     **common)
    return tf.AutoModel.from_config(config)


def _audio_model(family, s):
    import transformers as tf

    h = min(s["hidden"], 64) if s is SIZES["tiny"] else s["hidden"]
    # 320-sample (20 ms) hop. Layer norm over channels with conv biases (as in the large wav2vec2 / WavLM
    # checkpoints): the default group norm normalises each channel over the whole window, which removes its loudness
    # from a random network (held-out r with the demo's acoustic driver 0.12 vs 0.36 with this setting).
    conv = dict(conv_dim=(h,) * 4, conv_kernel=(10, 4, 4, 4), conv_stride=(5, 4, 4, 4), feat_extract_norm="layer",
                conv_bias=True)
    enc = dict(hidden_size=h, num_hidden_layers=s["layers"], num_attention_heads=s["heads"], intermediate_size=2 * h,
               num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    # No per-window normalisation: a random network then keeps the loudness of the window.
    extractor = tf.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                            do_normalize=False, return_attention_mask=True)
    if family == "wav2vec2":
        return tf.Wav2Vec2Model(tf.Wav2Vec2Config(**conv, **enc)), extractor
    if family == "wavlm":
        return tf.WavLMModel(tf.WavLMConfig(**conv, **enc, num_buckets=32, max_bucket_distance=200)), extractor
    if family == "hubert":
        return tf.HubertModel(tf.HubertConfig(**conv, **enc)), extractor
    if family == "whisper":
        from .models import trained_tokenizer

        # The decoder reads the byte-level tokenizer trained on the demo language (its <|endoftext|>, id 0, is
        # also the start token): see whisper_decoder.whisper_tokenizer.
        config = tf.WhisperConfig(d_model=h, encoder_layers=s["layers"], decoder_layers=2,
                                  encoder_attention_heads=s["heads"], decoder_attention_heads=s["heads"],
                                  encoder_ffn_dim=2 * h, decoder_ffn_dim=2 * h, num_mel_bins=80,
                                  max_source_positions=50 * WHISPER_STANDIN_S,
                                  vocab_size=len(trained_tokenizer("bytelevel")), pad_token_id=0, bos_token_id=0,
                                  eos_token_id=0, decoder_start_token_id=0)
        extractor = tf.WhisperFeatureExtractor(feature_size=80, sampling_rate=16000, chunk_length=WHISPER_STANDIN_S)
        return tf.WhisperModel(config), extractor
    if family == "clap":
        return _clap(h, s)
    raise ValueError(f"no stand-in for model family {family!r}")


def _clap(h, s):
    import transformers as tf

    from .models import trained_tokenizer

    tokenizer = trained_tokenizer("bytelevel")
    text = dict(vocab_size=len(tokenizer), hidden_size=h, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=2 * h, max_position_embeddings=130, pad_token_id=0)
    audio = dict(hidden_size=4 * h, patch_embeds_hidden_size=h // 2, depths=[1, 1, 1, 1],
                 num_attention_heads=[2, 2, 4, 4], window_size=8, spec_size=256, num_mel_bins=64, patch_stride=[4, 4])
    config = tf.ClapConfig(text_config=text, audio_config=audio, projection_dim=32)
    # 4 s inputs (the real CLAP: 10 s) keep the offline demo's mel extraction 2.5x cheaper; the Swin stages
    # interpolate the spectrogram to their fixed size either way.
    extractor = tf.ClapFeatureExtractor(feature_size=64, sampling_rate=48000, max_length_s=4)
    return tf.ClapModel(config), tf.ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer)
