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

from .families import family_of
from .loaded import LoadedModel

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
"""name -> (model type, config values that differ from transformers' defaults). The wav2vec2, WavLM, HuBERT and CLAP
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
        Source ``"random-real-size"``; built by the model type's family (``real_size``).
    """
    import torch  # lazy: heavy

    if name not in REAL_CONFIGS:
        raise ValueError(f"no real-size config for {name!r}; known: {', '.join(REAL_CONFIGS)}")
    model_type, values = REAL_CONFIGS[name]
    torch.manual_seed(0)
    model, processor = family_of(model_type).real_size(model_type, values)
    return LoadedModel(model.eval(), processor, name, "random-real-size", model_type)


def n_parameters(loaded):
    """Parameters of a loaded model (int)."""
    return sum(p.numel() for p in loaded.model.parameters())
