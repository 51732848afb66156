"""The numpy ridge backend with its matrix products and eigendecompositions on MKL, where that is faster.

numpy's wheels bundle OpenBLAS; PyTorch's x86 wheels bundle Intel's MKL. On
Intel CPUs MKL's single-thread float32 product is the faster of the two at the
ridge's shapes (rank x rank times rank x 1,024 targets, see
:data:`~encoding_kit.encoding.ridge.SCORING_CHUNK`), and so is its float64
symmetric eigendecomposition (``benchmarks/bench_ridge_engine.py --blas``
measures both backends on one fit, alternated). The ridge engine's numpy
backend therefore sends those two operations through ``torch`` on an Intel CPU
whose PyTorch has MKL (:func:`mkl_preferred`); everything else stays numpy.
Same inputs, same dtypes: the results agree with OpenBLAS's to rounding
(``tests/test_mkl_backend.py``). Elsewhere (AMD, Apple silicon, no MKL)
numpy's own BLAS is used, unchanged. ``ENCODING_KIT_RIDGE_BLAS=numpy`` turns
the routing off, ``=mkl`` forces it (where torch has MKL).
"""

from __future__ import annotations

import functools
import types

import numpy as np

from ..core.runtime import environment

BLAS_VARIABLE = "ENCODING_KIT_RIDGE_BLAS"
BLAS_CHOICES = ("auto", "mkl", "numpy")
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def blas_choice(environ=None):
    """``ENCODING_KIT_RIDGE_BLAS`` (``"auto"`` when unset), checked: one ``ValueError`` naming the variable.

    ``environ``: a mapping to read instead of this process's environment (:func:`~encoding_kit.core.runtime.environment`).
    """
    raw = environment(BLAS_VARIABLE) if environ is None else environ.get(BLAS_VARIABLE, "")
    value = raw.strip().lower() or "auto"
    if value not in BLAS_CHOICES:
        raise ValueError(f"environment variable {BLAS_VARIABLE} must be one of {', '.join(BLAS_CHOICES)}, "
                         f"found {raw!r}")
    return value


@functools.cache
def torch_has_mkl():
    """Whether PyTorch is importable here and linked with MKL."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.backends.mkl.is_available())


@functools.cache
def intel_cpu(cpuinfo="/proc/cpuinfo"):
    """Whether this CPU is an Intel one (``GenuineIntel`` in ``/proc/cpuinfo``; False where that file is absent).

    Read once per process (every fold's fit asks).
    """
    try:
        with open(cpuinfo) as handle:
            return any(line.startswith("vendor_id") and "GenuineIntel" in line for line in handle)
    except OSError:
        return False


def mkl_preferred(environ=None):
    """Whether the numpy backend routes its products through MKL: forced, or ``auto`` on an Intel CPU with MKL."""
    choice = blas_choice(environ)
    if choice == "numpy" or not torch_has_mkl():
        return False
    return choice == "mkl" or intel_cpu()


def _plain(a):
    """Whether torch can read ``a`` in place: a 2-D float32/float64 ndarray, writeable, positive byte strides."""
    return (type(a) is np.ndarray and a.ndim == 2 and a.dtype in _FLOATS and a.flags.writeable
            and all(s > 0 and s % a.itemsize == 0 for s in a.strides) and a.size > 0)


def matmul(a, b):
    """``a @ b``: on MKL (through ``torch.mm``, no copy of the inputs) for two plain 2-D arrays of one float dtype.

    Anything else (other dtypes, 1-D or batched operands, read-only or
    negatively strided views, empty arrays) goes to ``numpy.matmul``.

    Returns
    -------
    ndarray of shape (a.shape[0], b.shape[1])
    """
    if not (_plain(a) and _plain(b) and a.dtype == b.dtype and a.shape[1] == b.shape[0]):
        return np.matmul(a, b)
    import torch

    out = np.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
    torch.mm(torch.from_numpy(a), torch.from_numpy(b), out=torch.from_numpy(out))
    return out


def eigh(a):
    """Eigenvalues (ascending) and eigenvectors of the symmetric float64 matrix ``a`` (its lower triangle), on MKL.

    Returns
    -------
    w : ndarray of shape (n,)
    v : ndarray of shape (n, n)
    """
    import torch

    w, v = torch.linalg.eigh(torch.from_numpy(np.array(a, dtype=np.float64, order="C")))
    return w.numpy(), v.numpy()


def with_mkl(numpy_backend):
    """A copy of himalaya's numpy backend module whose ``matmul`` and ``eigh`` are :func:`matmul` and :func:`eigh`.

    Its ``name`` stays ``"numpy"`` (the kit's chunking and himalaya's
    ``set_backend`` read it); ``kit_blas`` is ``"mkl"``.
    """
    module = types.ModuleType(numpy_backend.__name__)
    module.__dict__.update({k: v for k, v in vars(numpy_backend).items() if not k.startswith("__")})
    module.matmul, module.eigh, module.kit_blas = matmul, eigh, "mkl"
    return module


@functools.cache
def _mkl_copy(numpy_backend):
    return with_mkl(numpy_backend)


def ridge_numpy_backend(numpy_backend, environ=None):
    """himalaya's numpy backend, or its MKL copy when :func:`mkl_preferred` (one copy per process)."""
    return _mkl_copy(numpy_backend) if mkl_preferred(environ) else numpy_backend
