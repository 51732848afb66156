"""Opt-in dynamic int8 quantisation of a model's linear layers, for CPU extraction.

``torch.ao.quantization.quantize_dynamic`` stores the weights of every
``nn.Linear`` as int8 and quantises the activations on the fly; attention
softmax, layer norms and convolutions stay in float32. It changes the
features a little (measured on real weights by
``benchmarks/bench_fast_paths.py``), so it is never the default. GPT-2's
``Conv1D`` layers (linear layers with transposed weights) are turned into
``nn.Linear`` first, or they would stay in float32 and the
feature cache keeps its features apart (source ``"<source>+int8"``).

Causality: the activations are quantised with one scale per tensor, the
largest value of the whole input (every position of every window in the
batch). A late token can change that scale and so, slightly, the states of
earlier tokens: the causality probe finds it and calls a quantised GPT-2 not
causal, so strided mode refuses it (fail closed: a model not shown to be causal is never read in strided windows). For the same
reason the extraction functions run a quantised model one window at a time
(``batch_size=1``): windows of later words or TRs never share a batch (and a
scale) with earlier ones. Exact mode of text and every audio window are then
causal again (``tests/test_fast_paths.py``).
"""

from __future__ import annotations

import copy

from .identity import INT8_SUFFIX
from .loaded import LoadedModel


def is_quantized(loaded):
    """Whether a LoadedModel comes from :func:`quantize_dynamic`."""
    return str(getattr(loaded, "source", "")).endswith(INT8_SUFFIX)


def quantize_dynamic(loaded):
    """A copy of a loaded model with int8 linear layers (CPU only).

    Parameters
    ----------
    loaded : LoadedModel

    Returns
    -------
    LoadedModel
        Same name, processor and family; source ``loaded.source + "+int8"``.
    """
    import torch

    if is_quantized(loaded):
        return loaded
    device = next(loaded.model.parameters()).device
    if device.type != "cpu":
        raise ValueError(f"dynamic int8 quantisation runs on the CPU only; {loaded.name} is on {device}")
    model = _conv1d_as_linear(copy.deepcopy(loaded.model).eval())
    model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    if not any(type(m).__name__ == "Linear" and m.__module__.startswith("torch.ao") for m in model.modules()):
        raise ValueError(f"{loaded.name} has no linear layer that dynamic quantisation can convert")
    return LoadedModel(model, loaded.processor, loaded.name, loaded.source + INT8_SUFFIX, loaded.family)


def _conv1d_as_linear(model):
    """GPT-2's ``Conv1D`` layers (a linear layer with its weight transposed) as ``nn.Linear``, in place."""
    import torch

    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if type(child).__name__ == "Conv1D" and hasattr(child, "nf"):
                linear = torch.nn.Linear(child.weight.shape[0], child.nf)
                linear.weight.data = child.weight.data.T.contiguous()
                linear.bias.data = child.bias.data.clone()
                setattr(parent, child_name, linear)
    return model
