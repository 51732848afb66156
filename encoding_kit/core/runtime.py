"""Where and how torch runs: the kit's one device picker, its precision and autocast.

Text and audio models, the networks of :mod:`.nonlinear` and the GPU checks take their device from
:func:`torch_device`: CUDA when present, then Apple's MPS, then the CPU. Models run under bf16
autocast (:func:`autocast`) on CUDA and on CPUs with bf16 matrix units (AMX: Intel Xeon since
Sapphire Rapids): there a model's matrix products cost a half to a third of float32's, and the
features stay within the fidelity rule of ``benchmarks/bench_fast_paths.py``. Elsewhere (most
laptops, MPS) they run in float32: with AVX512-BF16 alone (AMX turned off through
``ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16`` on the kit's development CPU) bf16 took twice float32's
time. The environment variable ``ENCODING_KIT_PRECISION`` overrides the choice (``float32``: the
exact features on any machine, e.g. to compare with another run bit for bit; ``bf16``; ``auto``, the
default). Model inputs (log-mel spectrograms) are always computed in float32
(:func:`float32_inputs`). The precision is part of the feature cache key (:func:`precision`), so
features of two precisions never mix. The ridge solver's himalaya backend follows the device rule
(``ridge.select_backend``).
"""

from __future__ import annotations

import contextlib
import os

PRECISION_VARIABLE = "ENCODING_KIT_PRECISION"
PRECISIONS = ("auto", "float32", "bf16")


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


def requested_precision():
    """The value of ``ENCODING_KIT_PRECISION`` (``"auto"`` when unset), checked."""
    value = os.environ.get(PRECISION_VARIABLE, "").strip().lower() or "auto"
    if value not in PRECISIONS:
        raise ValueError(f"environment variable {PRECISION_VARIABLE} must be one of {', '.join(PRECISIONS)}, "
                         f"got {os.environ[PRECISION_VARIABLE]!r}")
    return value


def cpu_has_native_bf16():
    """True when this CPU has bf16 matrix units (AMX tiles), where bf16 autocast is faster than float32."""
    import torch

    try:
        return bool(torch.cpu._is_amx_tile_supported())
    except AttributeError:  # an older torch without the probes
        return False


def precision(device):
    """How models run on ``device``: ``"bf16-autocast"`` or ``"float32"`` (part of the feature cache key).

    Parameters
    ----------
    device : torch.device

    Returns
    -------
    str
        ``"bf16-autocast"`` on cuda, and on a CPU with native bf16 (or when
        ``ENCODING_KIT_PRECISION=bf16``); ``"float32"`` on mps, on other CPUs,
        and whenever ``ENCODING_KIT_PRECISION=float32``.
    """
    requested = requested_precision()
    if requested == "float32" or device.type not in ("cuda", "cpu"):
        return "float32"
    if device.type == "cuda" or requested == "bf16" or cpu_has_native_bf16():
        return "bf16-autocast"
    return "float32"


def autocast(device):
    """The autocast context of :func:`precision`: bf16 autocast on ``device``, or nothing for float32."""
    import torch

    if precision(device) == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


@contextlib.contextmanager
def float32_inputs():
    """Autocast off inside :func:`autocast`: model inputs (log-mel spectrograms) are computed in float32."""
    import torch

    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.autocast("cpu", enabled=False))
        if torch.cuda.is_available():
            stack.enter_context(torch.autocast("cuda", enabled=False))
        yield


def autocast_state(device):
    """What autocast does on ``device`` now: its dtype's name, or ``"off"`` (for caches of computed states)."""
    import torch

    cpu = device.type == "cpu"
    try:
        enabled = torch.is_autocast_enabled(device.type)
        dtype = torch.get_autocast_dtype(device.type) if enabled else None
    except (TypeError, AttributeError):  # torch < 2.4: one function per device type
        enabled = torch.is_autocast_cpu_enabled() if cpu else torch.is_autocast_enabled()
        dtype = (torch.get_autocast_cpu_dtype() if cpu else torch.get_autocast_gpu_dtype()) if enabled else None
    return str(dtype) if enabled else "off"


@contextlib.contextmanager
def use_precision(value):
    """Models run in ``value`` (one of :data:`PRECISIONS`) inside the block, as ``ENCODING_KIT_PRECISION`` says."""
    if value not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {value!r}")
    before = os.environ.get(PRECISION_VARIABLE)
    os.environ[PRECISION_VARIABLE] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PRECISION_VARIABLE, None)
        else:
            os.environ[PRECISION_VARIABLE] = before


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
WAIT_POLICY = {"OMP_WAIT_POLICY": "PASSIVE"}
"""OpenMP threads (torch, scikit-learn) that wait for work sleep instead of spinning. On a CPU that other processes
share, a spinning thread holds a core that the thread it waits for needs, and a 2-thread forward pass takes several
times as long (``benchmarks/bench_threads.py`` measures it; its figures are in ``benchmarks/results/threads.json``)."""


def notebook_thread_env(load=None, cores=None, environ=None):
    """Thread settings for a notebook's kernel: the OpenMP wait policy, and one BLAS thread on a busy CPU.

    OpenBLAS threads spin while they wait, so when the CPU's run queue is
    longer than its cores (other processes run: load average >= cores + 1)
    a 2-thread ridge solve takes many times the time of a 1-thread one
    (``benchmarks/bench_threads.py``). Then
    linear algebra runs on one thread; on an idle CPU it keeps every core.
    Variables already set by the user are kept.

    Parameters
    ----------
    load : float, optional
        One-minute load average; default this machine's.
    cores : int, optional
        Default ``os.cpu_count()``.
    environ : mapping, optional
        Default ``os.environ``.

    Returns
    -------
    env : dict
        The variables to set (only those not already set).
    busy : bool
        Whether BLAS was limited to one thread.
    """
    environ = os.environ if environ is None else environ
    load = os.getloadavg()[0] if load is None else float(load)
    cores = cores or os.cpu_count() or 1
    busy = cores > 1 and load >= cores + 1
    wanted = {**WAIT_POLICY, **(dict.fromkeys(BLAS_THREAD_VARIABLES, "1") if busy else {})}
    env = {k: v for k, v in wanted.items() if k not in environ}
    return env, busy and any(k in env for k in BLAS_THREAD_VARIABLES)
