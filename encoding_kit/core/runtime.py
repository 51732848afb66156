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
(:func:`ridge_backend`).

This module is the one place that picks these defaults: every function that runs a model or a solver takes
``device=``, ``precision=`` or ``backend=`` as a parameter, and ``None`` / ``"auto"`` is resolved here.
It is also the one module that touches environment variables (:func:`environment`,
:func:`child_environment`, :func:`environment_set`): the kit's own (``KIT_DATA_DIR``, ``KIT_FEATURE_DIR``,
``KIT_RESULTS_DIR``, ``KIT_PROGRESS``, ``KIT_RUN_LOG``, ``KIT_KEEP_PREVIOUS``, ``ENCODING_KIT_PRECISION``, the
grader's ``KIT_GRADE_*``) are read where they are named, through these functions.
"""

from __future__ import annotations

import contextlib
import os
import sys

PRECISION_VARIABLE = "ENCODING_KIT_PRECISION"
PRECISIONS = ("auto", "float32", "bf16")
RIDGE_BACKENDS = ("auto", "numpy", "torch", "torch_cuda", "torch_mps", "cupy")
"""himalaya backends of the ridge solvers, and ``"auto"``."""


def environment(name, default=""):
    """The value of environment variable ``name``, or ``default`` when it is unset or empty."""
    return os.environ.get(name) or default


def set_environment(name, value):
    """Set environment variable ``name`` for the rest of this process (and its children)."""
    os.environ[name] = str(value)


def child_environment(**values):
    """A copy of this process's environment with ``values`` set (``None`` removes one), for a child process."""
    env = dict(os.environ)
    for name, value in values.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    return env


@contextlib.contextmanager
def environment_set(name, value, only_if_unset=False):
    """Environment variable ``name`` set to ``value`` inside the block (for child processes), restored after.

    ``only_if_unset``: keep a value that is already there.
    """
    before = os.environ.get(name)
    if not (only_if_unset and before is not None):
        os.environ[name] = str(value)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


GPU_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")
"""On Linux, torch sees a CUDA (or ROCm) GPU only where one of these exists: the NVIDIA or AMD kernel driver, or
WSL2's GPU device (``/dev/dxg``: CUDA on Windows' Linux subsystem has no NVIDIA driver files of its own)."""


def gpu_available():
    """True when torch is installed and sees a CUDA GPU.

    On Linux without a GPU driver (:data:`GPU_DRIVER_FILES`) the answer is False without importing torch (about
    1.5 s), so a notebook whose features and fits all come from the cache does not pay for it.
    """
    if "torch" not in sys.modules and sys.platform.startswith("linux") and not any(
            os.path.exists(f) for f in GPU_DRIVER_FILES):
        return False
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


def ridge_backend(name="auto"):
    """The himalaya backend name for ``name``: ``"auto"`` is ``torch_cuda`` with a CUDA GPU, else ``numpy``."""
    if name not in RIDGE_BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, RIDGE_BACKENDS))}, found {name!r}")
    if name != "auto":
        return name
    return "torch_cuda" if gpu_available() else "numpy"


def requested_precision(requested=None):
    """``requested`` if given, else ``ENCODING_KIT_PRECISION`` (``"auto"`` when unset), checked."""
    if requested is not None:
        if requested not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
        return requested
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


def precision(device, requested=None):
    """How models run on ``device``: ``"bf16-autocast"`` or ``"float32"`` (part of the feature cache key).

    Parameters
    ----------
    device : torch.device or str
        Or its type (``"cpu"``): the answer depends on the type only, and torch is imported only to probe a CPU.
    requested : {"auto", "float32", "bf16"}, optional
        The caller's choice; default the process's (``ENCODING_KIT_PRECISION``, else ``"auto"``).

    Returns
    -------
    str
        ``"bf16-autocast"`` on cuda, and on a CPU with native bf16 (or when
        ``ENCODING_KIT_PRECISION=bf16``); ``"float32"`` on mps, on other CPUs,
        and whenever ``ENCODING_KIT_PRECISION=float32``.
    """
    requested, kind = requested_precision(requested), getattr(device, "type", device)
    if requested == "float32" or kind not in ("cuda", "cpu"):
        return "float32"
    if kind == "cuda" or requested == "bf16" or cpu_has_native_bf16():
        return "bf16-autocast"
    return "float32"


def run_precision(device=None, requested=None):
    """``precision(torch_device(device), requested)``, without importing torch when the answer is ``"float32"``.

    A feature cache key records the precision of the run that computed it; under ``ENCODING_KIT_PRECISION=float32``
    every device gives ``"float32"``, so a request the cache answers does not pay for importing torch (about 1.5 s).
    """
    if requested_precision(requested) == "float32":
        return "float32"
    return precision(torch_device(device), requested)


def autocast(device, requested=None):
    """The autocast context of :func:`precision`: bf16 autocast on ``device``, or nothing for float32."""
    import torch

    if precision(device, requested) == "float32":
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
    with environment_set(PRECISION_VARIABLE, value):
        yield


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
WAIT_POLICY = {"OMP_WAIT_POLICY": "PASSIVE"}
"""OpenMP threads (torch, scikit-learn) that wait for work sleep instead of spinning. On a CPU that other processes
share, a spinning thread holds a core that the thread it waits for needs, and a 2-thread forward pass takes several
times as long (``benchmarks/bench_threads.py`` measures it; its figures are in ``benchmarks/results/threads.json``)."""



def apply_wait_policy(environ=None):
    """Set :data:`WAIT_POLICY` in ``environ`` (default ``os.environ``) where it is not set yet (the package does on import).

    One forward pass of MiniLM on 16 windows took 1.9 s with 2 spinning
    threads and 0.39 s with passive ones under a load of 11 on 2 cores
    (``benchmarks/bench_brain_tuning.py --wait-policy``).
    """
    environ = os.environ if environ is None else environ
    for key, value in WAIT_POLICY.items():
        environ.setdefault(key, value)



def cpu_load():
    """This machine's one-minute load average and its number of cores, (float, int)."""
    return os.getloadavg()[0], os.cpu_count() or 1


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
    load = cpu_load()[0] if load is None else float(load)
    cores = cores or cpu_load()[1]
    busy = cores > 1 and load >= cores + 1
    wanted = {**WAIT_POLICY, **(dict.fromkeys(BLAS_THREAD_VARIABLES, "1") if busy else {})}
    env = {k: v for k, v in wanted.items() if k not in environ}
    return env, busy and any(k in env for k in BLAS_THREAD_VARIABLES)
