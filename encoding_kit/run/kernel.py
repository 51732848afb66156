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
from ..core.runtime import environment_set

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
def headless_kernel(name=None):
    """A kernel manager for one headless execution (``km=`` of papermill), with headless progress bars.

    On POSIX the kernel talks over IPC sockets in a temporary folder (a local
    kernel needs no TCP, and Jupyter warns that TCP is unencrypted); elsewhere
    papermill's default. ``$KIT_PROGRESS`` is ``final`` for the kernel (see
    ``progress.py``) unless already set.

    Yields
    ------
    KernelManager or None
    """
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    name = name or kernel_name()
    with environment_set(PROGRESS_ENV, "final", only_if_unset=True):
        if os.name != "posix":
            yield None
            return
        with tempfile.TemporaryDirectory(prefix="kit-kernel-") as folder:
            km = AsyncKernelManager(kernel_name=name, transport="ipc", ip=os.path.join(folder, "kernel"))
            try:
                yield km
            finally:
                if km.has_kernel:
                    run_sync(km.shutdown_kernel)(now=True)
