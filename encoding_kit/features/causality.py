"""Is a text model causal? A perturbation probe that fails closed, with the config as a fallback.

Strided text extraction is exact only for causal models, so the kit must
never take a bidirectional model for a causal one (see :func:`causality`).
"""

from __future__ import annotations

import weakref

from ..core.storage import weights_hash
from .loaded import LoadedModel

CAUSAL_TYPES = {"gpt2", "openai-gpt", "gpt_neo", "gpt_neox", "gptj", "gpt_bigcode", "codegen", "ctrl", "xglm",
                "opt", "bloom", "falcon", "mpt", "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3",
                "qwen3_moe", "gemma", "gemma2", "phi", "phi3", "olmo", "olmo2", "stablelm", "starcoder2",
                "granite", "cohere", "mamba", "mamba2", "rwkv", "biogpt", "persimmon", "smollm3"}
"""Decoder-only model types; used only when the causality probe cannot decide (see :func:`causality`)."""
CAUSAL_PROBE_TOKENS = 12
CAUSAL_PROBE_TOL = 1e-5
"""A later token may move earlier hidden states by at most this fraction of the largest state (causal models: 0)."""


def is_causal(model):
    """True only for a model shown to be causal (each position sees only the past); see :func:`causality`."""
    return causality(model)[0]


def causality(model):
    """Decide whether a text model is causal, failing closed.

    A probe decides first: random token ids are run through the model, then
    a late and a middle token are changed; a causal model leaves every
    earlier position's hidden states (all layers) unchanged, to within
    ``CAUSAL_PROBE_TOL`` of the largest state (in practice bit for bit).
    The probe counts only if changing the first token does move later
    states (a model that does not mix tokens proves nothing). When the probe
    cannot decide (the forward pass needs other inputs, or no hidden state
    has one row per token), the config decides positively: ``is_decoder``
    set, or a model type in ``CAUSAL_TYPES``. Anything else, and every
    encoder-decoder, is not causal. (Architecture names are not used: BERT's
    ``...ForCausalLM``/``LMHeadModel`` heads are bidirectional unless
    ``is_decoder`` is set.)

    Parameters
    ----------
    model : transformers model (or LoadedModel)

    Returns
    -------
    causal : bool
    reason : str
        One sentence saying how it was decided.
    """
    if isinstance(model, LoadedModel):
        model = model.model
    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        return False, f"model type '{config.model_type}' is an encoder-decoder"
    probe = _remembered_probe(model)
    if probe is not None:
        causal, detail = probe
        return causal, f"model type '{config.model_type}': {detail}"
    if getattr(config, "is_decoder", False) or config.model_type in CAUSAL_TYPES:
        return True, f"model type '{config.model_type}' is decoder-only (config; the probe could not run)"
    return False, (f"model type '{config.model_type}' is not known to be decoder-only and the causality probe "
                   "could not decide, so it is treated as bidirectional")


_PROBED = weakref.WeakKeyDictionary()


def _remembered_probe(model):
    """:func:`_causality_probe`, run once per model object and weights (a notebook asks, then the extraction)."""

    try:
        key = weights_hash(model)
    except Exception:  # no parameters to hash: probe every time
        return _causality_probe(model)
    seen = _PROBED.get(model)
    if seen is None or seen[0] != key:
        seen = _PROBED[model] = (key, _causality_probe(model))
    return seen[1]


def _causality_probe(model, n_tokens=CAUSAL_PROBE_TOKENS, seed=0):
    """(causal, detail) from perturbing tokens, or None when the probe cannot decide."""
    import torch

    config = getattr(model, "config", None)
    vocab = getattr(config, "vocab_size", None)
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    n = min(n_tokens, int(limit) - 2) if limit else n_tokens
    if not vocab or vocab < 8 or n < 4:
        return None
    special = {getattr(config, k, None) for k in ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id",
                                                  "cls_token_id", "mask_token_id")}
    allowed = torch.tensor([i for i in range(min(int(vocab), 5000)) if i not in special])
    gen = torch.Generator().manual_seed(seed)
    ids = allowed[torch.randint(len(allowed), (1, n), generator=gen)]

    def perturb(pos):
        changed = ids.clone()
        changed[0, pos] = allowed[(int(torch.nonzero(allowed == ids[0, pos])[0, 0]) + 1) % len(allowed)]
        return changed

    was_training = model.training
    model.eval()
    try:
        base = _token_states(model, ids)
        if not base:
            return None
        scale = max(float(h.abs().max()) for h in base) or 1.0

        def change(pos, rows):  # largest change of the states at `rows` when token `pos` changes, / scale
            other = _token_states(model, perturb(pos))
            return max(float((a[:, rows] - b[:, rows]).abs().max()) for a, b in zip(base, other)) / scale

        if change(0, slice(1, None)) <= CAUSAL_PROBE_TOL:
            return None  # changing the first token moved nothing later: the probe proves nothing
        for pos in (n - 1, n // 2):
            back = change(pos, slice(0, pos))
            if back > CAUSAL_PROBE_TOL:
                return False, (f"changing token {pos} of {n} moved earlier hidden states by {back:.1e} "
                               "of their scale (bidirectional)")
    except Exception:  # the forward pass needs other inputs: let the config decide
        return None
    finally:
        model.train(was_training)
    return True, f"changing tokens {n - 1} and {n // 2} of {n} left every earlier hidden state unchanged (probe)"


def _token_states(model, ids):
    """Hidden states of every layer with one row per token, float32, [(1, n_tokens, dim), ...]."""
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode():
        out = model(input_ids=ids.to(device), attention_mask=torch.ones_like(ids).to(device),
                    output_hidden_states=True)
    states = getattr(out, "hidden_states", None) or (getattr(out, "last_hidden_state", None),)
    return [h.float().cpu() for h in states if h is not None and h.ndim == 3 and h.shape[1] == ids.shape[1]]
