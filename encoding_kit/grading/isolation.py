"""``--isolation bwrap``: run each notebook in a bubblewrap sandbox (Linux).

The execution process and its kernel see the file system read-only, except
their own sandbox folder (``sandbox.py``) and the shared feature cache; the
sandbox's data copy is mounted read-only (a write fails with ``EROFS``, even
as root); ``/tmp``, the class folder, the grading folder and the course data
folder are replaced by empty folders; they get their own PID namespace (they
cannot see or signal the grader or another student's kernel) and die with it:
when the execution process ends, every process left in the namespace is
killed by the kernel of the operating system, daemons included.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

CHOICES = ("none", "bwrap")


def check_isolation(isolation):
    """Validate ``--isolation``; for ``bwrap``, check that bubblewrap is installed and can start a sandbox."""
    if isolation in (None, "none"):
        return "none"
    if isolation not in CHOICES:
        raise ValueError(f"--isolation: expected one of {', '.join(CHOICES)}, found {isolation!r}")
    if not sys.platform.startswith("linux") or shutil.which("bwrap") is None:
        raise ValueError("--isolation bwrap: bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap; "
                         "Fedora: dnf install bubblewrap); or grade with --isolation none")
    probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid",
                            "--die-with-parent", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise ValueError(f"--isolation bwrap: bubblewrap cannot start a sandbox here ({probe.stderr.strip()[:200]}); "
                         "user namespaces may be disabled, or grade with --isolation none")
    return "bwrap"


def _inside(path, folder):
    return path == folder or folder in path.parents


def bwrap_command(sandbox, cwd, writable=(), hidden=()):
    """The ``bwrap ...`` prefix for one notebook's execution process.

    Parameters
    ----------
    sandbox : Sandbox
        Its folder is writable; its ``data`` copy read-only.
    cwd : Path
        The notebook's working folder (inside the sandbox).
    writable : iterable of Path
        Other folders it may write to (the feature cache).
    hidden : iterable of Path
        Folders replaced by an empty one (class folder, grading folder, course data), unless one holds the
        sandbox, the kit or this Python.

    Returns
    -------
    list of str
    """
    keep = [Path(sandbox.root), Path(__file__).resolve().parents[2], Path(sys.prefix).resolve(),
            Path(sys.executable).resolve().parent]
    args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for folder in sorted({str(k) for k in keep[1:] if _inside(k, Path("/tmp").resolve())}):
        args += ["--ro-bind", folder, folder]  # a kit or Python under /tmp stays visible (read-only) in the empty /tmp
    for folder in hidden:
        folder = Path(folder).resolve()
        if folder.is_dir() and not any(_inside(k, folder) for k in keep):
            args += ["--tmpfs", str(folder)]
    for folder in writable:
        if folder and Path(folder).is_dir():
            args += ["--bind", str(Path(folder).resolve()), str(Path(folder).resolve())]
    root = str(sandbox.root)
    args += ["--bind", root, root, "--ro-bind", str(sandbox.data), str(sandbox.data),
             "--unshare-pid", "--die-with-parent", "--new-session", "--chdir", str(cwd), "--"]
    return args
