"""Where and how torch runs: the kit's one device picker, its precision and autocast.

Text and audio models, the networks of :mod:`.nonlinear` and the GPU checks
take their device from :func:`torch_device`: CUDA when present, then Apple's
MPS, then the CPU. On CUDA models run under bf16 autocast
(:func:`autocast`); the precision is part of the feature cache key
(:func:`precision`), so features from a GPU and a CPU run never mix. The ridge
solver's himalaya backend follows the same rule (``ridge.select_backend``).
"""

from __future__ import annotations

import contextlib


def gpu_available():
    """True when torch is installed and sees a CUDA GPU."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def torch_device(device=None):
    """The torch device to run on: ``device`` when given, else cuda, then mps, then cpu.

    Parameters
    ----------
    device : str or torch.device, optional
        Forces a device (e.g. ``"cpu"`` to compare with a GPU run).

    Returns
    -------
    torch.device
    """
    import torch

    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def precision(device):
    """How models run on ``device`` (part of the feature cache key): ``"bf16-autocast"`` on cuda, else ``"float32"``."""
    return "bf16-autocast" if device.type == "cuda" else "float32"


def autocast(device):
    """The autocast context of :func:`precision`: bf16 on cuda, nothing elsewhere."""
    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
