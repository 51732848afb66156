"""Causality is proven, not assumed: strided mode refuses every model not shown to be causal."""

import importlib
import warnings

import pytest
import torch

from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.models import CAUSAL_TYPES, causality, is_causal, minilm, standin
from encoding_kit.features.text import extract_text_features

TINY = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=64)
# Bidirectional encoders that the old hand-written list of bidirectional types called causal.
BIDIRECTIONAL = {"roformer": {}, "big_bird": {}, "ernie": {}, "data2vec-text": {}, "megatron-bert": {},
                 "longformer": dict(attention_window=4), "nomic_bert": {},
                 "mobilebert": dict(embedding_size=32, intra_bottleneck_size=32, true_hidden_size=32),
                 "convbert": {}, "rembert": {}, "nystromformer": {}, "bert": {}}
CAUSAL = {"gpt2": dict(n_embd=32, n_layer=2, n_head=4, n_positions=64), "llama": dict(num_key_value_heads=2),
          "qwen2": dict(num_key_value_heads=2), "opt": dict(ffn_dim=64, word_embed_proj_dim=32),
          "bert": dict(is_decoder=True)}  # BERT with a causal mask is causal


def tiny_model(model_type, **extra):
    """A random-weight model of ``model_type`` from a tiny config (no download)."""
    from transformers import AutoConfig, AutoModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = AutoConfig.for_model(model_type, **{**TINY, **extra})
        torch.manual_seed(0)
        return AutoModel.from_config(config).eval()


@pytest.mark.parametrize("model_type", list(BIDIRECTIONAL))
def test_bidirectional_models_are_not_causal(model_type):
    model = tiny_model(model_type, **BIDIRECTIONAL[model_type])
    assert model_type not in CAUSAL_TYPES
    causal, why = causality(model)
    assert not causal and "bidirectional" in why
    assert not is_causal(model)


@pytest.mark.parametrize("model_type", list(CAUSAL))
def test_decoder_only_models_are_causal_by_the_probe(model_type):
    causal, why = causality(tiny_model(model_type, **CAUSAL[model_type]))
    assert causal and "probe" in why


def test_strided_mode_refuses_an_unlisted_bidirectional_model_with_the_reason():
    from transformers import PreTrainedTokenizerFast

    tok = standin("random-bert", "bert").processor
    assert isinstance(tok, PreTrainedTokenizerFast)
    model = tiny_model("roformer", vocab_size=len(tok))
    with pytest.raises(ValueError, match=r"strided.*shown to be causal.*roformer.*bidirectional.*mode='exact'"):
        extract_text_features("a small test story".split(), model, tokenizer=tok, mode="strided",
                              run=ExtractionRun(cache=False))


class _NoProbe(torch.nn.Module):
    """A model whose forward pass the probe cannot run (it needs other inputs)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.linear = torch.nn.Linear(2, 2)

    def forward(self, pixel_values):
        return self.linear(pixel_values)


@pytest.mark.parametrize("model_type, is_decoder, expected", [("gpt2", False, True), ("roformer", True, True),
                                                              ("some_new_encoder", False, False)])
def test_without_a_probe_only_positive_config_evidence_counts(model_type, is_decoder, expected):
    from types import SimpleNamespace

    config = SimpleNamespace(model_type=model_type, is_decoder=is_decoder, vocab_size=100)
    causal, why = causality(_NoProbe(config))
    assert causal is expected and "probe could not" in why


def test_a_model_that_mixes_no_tokens_proves_nothing():
    from types import SimpleNamespace

    class PerToken(torch.nn.Module):  # every position on its own: "causal" and "anti-causal" at once
        def __init__(self):
            super().__init__()
            self.config = SimpleNamespace(model_type="per_token", vocab_size=100)
            self.embed = torch.nn.Embedding(100, 8)

        def forward(self, input_ids, attention_mask=None, output_hidden_states=False):
            h = self.embed(input_ids)
            return SimpleNamespace(hidden_states=(h, torch.tanh(h)), last_hidden_state=torch.tanh(h))

    assert causality(PerToken()) == (False, "model type 'per_token' is not known to be decoder-only and the "
                                            "causality probe could not decide, so it is treated as bidirectional")


def test_the_kits_standins_are_classified_correctly():
    for family in ("gpt2", "llama", "qwen2"):
        assert is_causal(standin(family, family).model)
    assert not is_causal(standin("random-bert", "bert").model)
    assert not is_causal(minilm().model)


def test_the_probe_runs_once_per_model_and_again_when_its_weights_change(monkeypatch):
    """A notebook asks `is_causal`, then the strided extraction asks again: one probe; new weights: a new probe."""
    module = importlib.import_module("encoding_kit.features.causality")  # the package exports a function of that name

    calls = []
    real = module._causality_probe
    monkeypatch.setattr(module, "_causality_probe", lambda m: calls.append(m) or real(m))
    model, other = tiny_model("gpt2", **CAUSAL["gpt2"]), tiny_model("bert")
    assert causality(model) == causality(model) and is_causal(model) and len(calls) == 1
    assert not is_causal(other) and len(calls) == 2  # another object is probed for itself
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    assert is_causal(model) and len(calls) == 3
