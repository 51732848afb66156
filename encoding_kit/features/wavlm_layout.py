"""WavLM's attention under CPU bf16 autocast: its input stored time-first, so its projections stay one product.

Hugging Face's ``WavLMAttention`` hands ``hidden_states.transpose(0, 1)`` (time
first) to ``torch.nn.functional.multi_head_attention_forward``, whose input
projections are ``linear`` on that transposed 3-D view. In float32 torch folds
it into one matrix product; under bf16 autocast on a CPU it becomes a batched
product with the weight expanded and copied for every frame, and WavLM took
2.2x float32's time (``benchmarks/bench_real_models.py``, 2026-12-05). A
forward pre-hook hands the attention the same values stored time-first: its
transposed view is then contiguous and the projections are one product again.
The values, and so the features, do not change (``tests/test_precision.py``).
"""

from __future__ import annotations

from .module_patch import patch_modules


def store_attention_input_time_first(model):
    """Install the hook on every ``WavLMAttention`` of ``model`` (once; other models are left as they are).

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    int
        The number of attention modules that carry the hook.
    """
    return patch_modules(model, lambda module: type(module).__name__ == "WavLMAttention",
                         lambda module: module.register_forward_pre_hook(_time_first, with_kwargs=True),
                         "_kit_time_first")


def _time_first(module, args, kwargs):
    """The attention's ``hidden_states`` (batch, time, dim), same values, stored time-first."""
    if args:
        return (_restride(args[0]), *args[1:]), kwargs
    if "hidden_states" in kwargs:
        return args, {**kwargs, "hidden_states": _restride(kwargs["hidden_states"])}
    return None


def _restride(hidden):
    return hidden.transpose(0, 1).contiguous().transpose(0, 1)
