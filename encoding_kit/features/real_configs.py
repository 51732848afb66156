"""The notebooks' checkpoints at their real sizes, with random weights, for timing offline.

The compute of a forward pass depends on the architecture and the input
length, not on the weights, so a random-weight model built from a
checkpoint's config times that checkpoint. The config values below are those
of the checkpoints' ``config.json`` on the Hugging Face hub (model cards of
``gpt2``, ``bert-base-uncased``, ``Qwen/Qwen2.5-0.5B``,
``facebook/wav2vec2-base``, ``microsoft/wavlm-base-plus``,
``facebook/hubert-base-ls960``, ``openai/whisper-base`` and
``laion/clap-htsat-unfused``). Text models get the kit's locally trained
tokenizers (byte-level BPE, WordPiece, SentencePiece-style; their ids are
below every real vocabulary): the number of tokens per word differs a little
from the real tokenizer's, so benchmarks report it.

Used by ``benchmarks/bench_real_models.py`` and ``scripts/gpu_check.py``.
Numbers computed from these models describe nothing but time and memory.
"""

from __future__ import annotations

REAL_STORY_WORDS = 8267
"""Words of the course story (the Gentle alignment, unaligned words included)."""
REAL_STORY_TRS = 2249

REAL_CONFIGS = {
    "gpt2": ("gpt2", dict(n_embd=768, n_layer=12, n_head=12, n_positions=1024, vocab_size=50257)),
    "bert-base-uncased": ("bert", dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                       intermediate_size=3072, max_position_embeddings=512, vocab_size=30522)),
    "Qwen/Qwen2.5-0.5B": ("qwen2", dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                                        rope_theta=1000000.0, tie_word_embeddings=True, vocab_size=151936)),
    "facebook/wav2vec2-base": ("wav2vec2", dict(do_normalize=True, return_attention_mask=False)),
    "microsoft/wavlm-base-plus": ("wavlm", dict(do_normalize=False, return_attention_mask=True)),
    "facebook/hubert-base-ls960": ("hubert", dict(do_normalize=True, return_attention_mask=False)),
    "openai/whisper-base": ("whisper", dict(d_model=512, encoder_layers=6, decoder_layers=6,
                                            encoder_attention_heads=8, decoder_attention_heads=8,
                                            encoder_ffn_dim=2048, decoder_ffn_dim=2048, num_mel_bins=80,
                                            max_source_positions=1500, vocab_size=51865)),
    "laion/clap-htsat-unfused": ("clap", {}),
}
"""name -> (family, config values that differ from transformers' defaults). The wav2vec2, WavLM, HuBERT and CLAP
defaults of transformers are the base / HTSAT-unfused checkpoints' architectures (their entries hold the feature
extractor's settings)."""


def real_size_model(name):
    """A random-weight model with the real checkpoint's architecture, and a processor like the real one.

    Parameters
    ----------
    name : str
        One of :data:`REAL_CONFIGS`.

    Returns
    -------
    LoadedModel
        Source ``"random-real-size"``.
    """
    import torch
    import transformers as tf

    from .models import LoadedModel, trained_tokenizer
    from .standins import TEXT_TOKENIZER

    if name not in REAL_CONFIGS:
        raise ValueError(f"no real-size config for {name!r}; known: {', '.join(REAL_CONFIGS)}")
    family, values = REAL_CONFIGS[name]
    torch.manual_seed(0)
    if family in TEXT_TOKENIZER:
        tokenizer = trained_tokenizer(TEXT_TOKENIZER[family])
        special = dict(bos_token_id=tokenizer.bos_token_id if tokenizer.bos_token_id is not None
                       else tokenizer.cls_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)
        config = {"gpt2": tf.GPT2Config, "bert": tf.BertConfig, "qwen2": tf.Qwen2Config}[family](**values, **special)
        model, processor = tf.AutoModel.from_config(config), tokenizer
    elif family == "whisper":
        model = tf.WhisperModel(tf.WhisperConfig(**values, pad_token_id=50257, bos_token_id=50257,
                                                 eos_token_id=50257, decoder_start_token_id=50258))
        processor = tf.WhisperFeatureExtractor(feature_size=80, sampling_rate=16000, chunk_length=30)
    elif family == "clap":
        model = tf.ClapModel(tf.ClapConfig())
        processor = tf.ClapProcessor(feature_extractor=tf.ClapFeatureExtractor(),
                                     tokenizer=trained_tokenizer("bytelevel"))
    else:
        config = {"wav2vec2": tf.Wav2Vec2Config, "wavlm": tf.WavLMConfig, "hubert": tf.HubertConfig}[family]()
        model = tf.AutoModel.from_config(config)
        processor = tf.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, **values)
    return LoadedModel(model.eval(), processor, name, "random-real-size", family)


def n_parameters(loaded):
    """Parameters of a loaded model (int)."""
    return sum(p.numel() for p in loaded.model.parameters())
