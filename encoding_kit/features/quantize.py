"""Opt-in dynamic int8 quantisation of a model's linear layers, for CPU extraction.

``torch.ao.quantization.quantize_dynamic`` stores the weights of every
``nn.Linear`` as int8 and quantises the activations on the fly; attention
softmax, layer norms and convolutions stay in float32. It changes the
features a little (measured on real weights by
``benchmarks/bench_fast_paths.py``), so it is never the default and the
feature cache keeps its features apart (source ``"<source>+int8"``).
Causality is unchanged: quantisation acts on each position's vector, it adds
no connection between positions.
"""

from __future__ import annotations

import copy


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

    from .models import LoadedModel

    if loaded.source.endswith("+int8"):
        return loaded
    device = next(loaded.model.parameters()).device
    if device.type != "cpu":
        raise ValueError(f"dynamic int8 quantisation runs on the CPU only; {loaded.name} is on {device}")
    model = torch.ao.quantization.quantize_dynamic(copy.deepcopy(loaded.model).eval(), {torch.nn.Linear},
                                                   dtype=torch.qint8)
    return LoadedModel(model, loaded.processor, loaded.name, loaded.source + "+int8", loaded.family)
