"""The Jupyter kernel the kit's notebooks run in: ``encoding-kit``, installed inside the venv.

``make`` installs it (``python -m encoding_kit kernel``) into the venv's own
``share/jupyter/kernels`` (``--sys-prefix``), so JupyterLab started from the venv
lists it and a "Python 3" kernel of another environment cannot shadow it. The
notebooks' metadata name it; the runner and the grader execute with it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

from ..core.progress import PROGRESS_ENV
from ..core.runtime import child_environment, environment, environment_set

KERNEL_NAME = "encoding-kit"
DISPLAY_NAME = "Python (encoding-kit)"
FALLBACK_KERNEL = "python3"


def install_kernel(prefix=None):
    """Install the ``encoding-kit`` kernelspec for this Python (default: into ``sys.prefix``).

    Parameters
    ----------
    prefix : str or Path, optional
        Install under ``<prefix>/share/jupyter/kernels`` (tests use a temporary prefix).

    Returns
    -------
    str
        The folder of the installed kernelspec.
    """
    from ipykernel.kernelspec import install

    return install(kernel_name=KERNEL_NAME, display_name=DISPLAY_NAME, prefix=str(prefix or sys.prefix))


def kernel_name():
    """``"encoding-kit"`` when that kernelspec is installed, else ``"python3"`` (with one line saying so)."""
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL_NAME in KernelSpecManager().find_kernel_specs():
        return KERNEL_NAME
    print(f"Jupyter kernel {KERNEL_NAME!r} is not installed (`make` installs it, or `python -m encoding_kit kernel`): "
          f"running the notebooks with {FALLBACK_KERNEL!r} ({sys.executable})", file=sys.stderr)
    return FALLBACK_KERNEL


@contextlib.contextmanager
def headless_kernel(name=None, env=None):
    """A kernel manager for one headless execution (``km=`` of papermill), with headless progress bars.

    On POSIX the kernel talks over IPC sockets in a temporary folder (a local
    kernel needs no TCP, and Jupyter warns that TCP is unencrypted); elsewhere
    papermill's default. ``$KIT_PROGRESS`` is ``final`` for the kernel (see
    ``progress.py``) unless already set.

    Parameters
    ----------
    name : str, optional
        Kernelspec; default :func:`kernel_name`.
    env : dict, optional
        Variables set for this kernel only, over this process's environment (the runner's concurrent
        notebooks each get their own run log and thread settings without touching ``os.environ``).

    Yields
    ------
    KernelManager or None
        With ``kit_cpu_s`` set after the block: the kernel's CPU seconds (its own and its reaped children's),
        read just before it was shut down (``None`` where it could not be read).
    """
    from jupyter_core.utils import run_sync

    name = name or kernel_name()
    if os.name != "posix":
        with environment_set(PROGRESS_ENV, "final", only_if_unset=True):
            yield None
        return
    with tempfile.TemporaryDirectory(prefix="kit-kernel-") as folder:
        km = _manager(kernel_name=name, transport="ipc", ip=os.path.join(folder, "kernel"))
        # set for the kernel only: concurrent notebooks never change this process's environment
        km.kit_env = {PROGRESS_ENV: environment(PROGRESS_ENV, "final"), **(env or {})}
        km.kit_cpu_s = None
        try:
            yield km
        finally:
            if km.has_kernel:
                km.kit_cpu_s = kernel_cpu_seconds(km)
                run_sync(km.shutdown_kernel)(now=True)


def _manager(**kwargs):
    """An ``AsyncKernelManager`` whose kernel starts with ``kit_env`` set over this process's environment."""
    from jupyter_client.manager import AsyncKernelManager

    class KitKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            kw.setdefault("env", child_environment(**self.kit_env))
            return await super().start_kernel(**kw)

    return KitKernelManager(**kwargs)


def kernel_cpu_seconds(km):
    """CPU seconds (user + system) of a running kernel, of the children it has reaped and of those still running
    (e.g. a worker pool); None if unknown."""
    import psutil

    pid = getattr(getattr(km, "provisioner", None), "pid", None)
    try:
        kernel = psutil.Process(pid)
        times = [kernel.cpu_times()]
        for child in kernel.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                times.append(child.cpu_times())
    except (psutil.Error, TypeError, ValueError):
        return None
    return round(sum(t.user + t.system + t.children_user + t.children_system for t in times), 1)
