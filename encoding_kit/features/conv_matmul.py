"""The waveform convolutions of wav2vec2-like feature encoders as one matrix product each, where that is faster.

A wav2vec2-like model reads the raw waveform through a stack of 1-D
convolutions. PyTorch's CPU convolution (oneDNN) is slow for two of their
shapes: a first layer with one input channel over tens of thousands of
samples, and a layer whose stride equals its kernel (windows that do not
overlap). Both are a matrix product of the input's windows, laid side by side
(``unfold``), with the kernel: the same sums in another order.

Measured on one thread, float32, a batch of eight 3 s windows (2026-12-07,
Intel Xeon @ 2.60GHz with AVX-512, best of 5, alternated): wav2vec2-base's
first layer (1 -> 512 channels, kernel 10, stride 5) 0.151-0.165 s as a
convolution, 0.075-0.078 s as a product (its layers with kernel 3 and stride 2
stay convolutions: there the product is 1.2-1.3x slower; its two kernel-2
stride-2 layers are within 10 ms either way); the demo's random-weight
stand-in (64 channels: a first layer and a kernel-4 stride-4 layer) 0.158 ->
0.081 s for the whole feature encoder, 2x; its extraction over the demo story
(2,249 windows of 2 TRs, no cache), alternated twice in one process: 43.7 and
53.3 CPU s as convolutions, 29.2 and 27.9 s as products. Features within
1.1e-6 (relative) of the convolution's (``tests/test_conv_matmul.py``: 1e-5).
"""

from __future__ import annotations

import types

from .module_patch import patch_modules

MARK = "_kit_matmul_conv"


def convolutions_as_products(model):
    """Run every plain ``Conv1d`` of ``model`` with one input channel or a stride equal to its kernel as a product.

    Only convolutions without padding, dilation or groups qualify (a wav2vec2 feature encoder's; the positional
    convolution, padded and grouped, stays as it is). The module keeps its parameters, so its ``state_dict`` and
    everything keyed by the weights are unchanged. Installing twice changes nothing.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    int
        The number of convolutions that run as products.
    """
    import torch

    return patch_modules(model, lambda module: type(module) is torch.nn.Conv1d and _qualifies(module), _as_product,
                         MARK)


def _as_product(conv):
    conv.forward = types.MethodType(_forward_as_product, conv)


def _qualifies(conv):
    plain = (conv.groups == 1 and conv.dilation == (1,) and conv.padding in ((0,), "valid")
             and conv.padding_mode == "zeros")
    return plain and (conv.in_channels == 1 or conv.kernel_size == conv.stride)


def _forward_as_product(conv, x):
    """``conv(x)`` for ``x`` of shape (batch, in_channels, samples): (batch, out_channels, frames)."""
    batch, channels, _ = x.shape
    kernel, stride = conv.kernel_size[0], conv.stride[0]
    windows = x.unfold(2, kernel, stride)  # (batch, channels, frames, kernel), a view
    frames = windows.shape[2]
    windows = windows.permute(0, 2, 1, 3).reshape(batch, frames, channels * kernel)
    out = windows @ conv.weight.reshape(conv.out_channels, channels * kernel).T  # (batch, frames, out_channels)
    if conv.bias is not None:
        out = out + conv.bias
    return out.transpose(1, 2)
