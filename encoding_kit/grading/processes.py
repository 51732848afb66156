"""Find and kill every process a graded notebook started: kernel, children, daemons.

A kernel and what it starts do not stay in one process group (Jupyter starts
the kernel in its own session; a daemon calls ``setsid`` and forks twice), so
the grader does not rely on groups. Each notebook's execution process gets two
environment tags, ``KIT_GRADE_RUN`` (this ``grade`` call) and ``KIT_GRADE_JOB``
(this notebook); every process it starts inherits them, and is also a
descendant of the execution process, which is a *child subreaper* on Linux
(an orphaned grandchild is re-parented to it, not to init). :func:`kill_job`
kills, until none is left, every process that carries the tag or descends
from one that does. A process that both clears its environment and escapes
the tree (deliberately) needs ``--isolation bwrap``: there the whole PID
namespace dies with the notebook.

Linux reads ``/proc``; elsewhere ``psutil`` when installed, else only the
process group of the execution process is killed.
"""

from __future__ import annotations

import os
import signal
import sys
import time

RUN_TAG = "KIT_GRADE_RUN"
JOB_TAG = "KIT_GRADE_JOB"
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    """Make this process the reaper of its orphaned descendants (Linux; elsewhere a no-op). True when set."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _proc_table():
    """{pid: (parent pid, environ bytes or None)} of every process this user can read."""
    table = {}
    if os.path.isdir("/proc/self"):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
                ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
                state = stat[stat.rindex(b")") + 2:].split()[0]
            except (OSError, ValueError, IndexError):
                continue
            if state == b"Z":  # a zombie has nothing left to kill
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    environ = f.read()
            except OSError:
                environ = None
            table[int(entry)] = (ppid, environ)
        return table
    try:
        import psutil
    except ImportError:
        return table
    for proc in psutil.process_iter(["ppid", "environ", "status"]):
        info = proc.info
        if info.get("status") == "zombie":
            continue
        env = info.get("environ")
        blob = b"\0".join(f"{k}={v}".encode() for k, v in env.items()) if env else None
        table[proc.pid] = (info.get("ppid") or 0, blob)
    return table


def tagged(tag, value, roots=()):
    """Pids carrying ``tag=value`` in their environment, the ``roots`` pids, and all their descendants.

    This process and its ancestors are never listed.
    """
    table = _proc_table()
    needle = f"{tag}={value}".encode()
    found = {pid for pid, (_, env) in table.items() if env and needle in env.split(b"\0")}
    found |= {pid for pid in roots if pid in table}
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    stack = list(found)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    pid = os.getpid()  # never this process or its ancestors (the bwrap that holds it carries the tag too)
    while pid in table or pid == os.getpid():
        found.discard(pid)
        pid = table.get(pid, (0, None))[0]
        if pid <= 1:
            break
    return sorted(found)


def kill_job(tag, value, roots=(), group=None, patience=10.0):
    """SIGKILL every process of one job (see :func:`tagged`), again until none is left.

    Parameters
    ----------
    tag, value : str
        The environment tag (``JOB_TAG`` or ``RUN_TAG``) and its value.
    roots : iterable of int
        Pids to kill with their descendants even if their environment is unreadable.
    group : int, optional
        A process group to kill as well (the execution process's, where ``/proc`` is missing).
    patience : float
        Seconds to keep killing what appears (a fork racing the kill).

    Returns
    -------
    int
        Processes still alive at the end (0 unless one could not be killed).
    """
    if group is not None and os.name == "posix":
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + patience
    while True:
        pids = tagged(tag, value, roots)
        if not pids:
            return 0
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if time.monotonic() > deadline:
            return len(tagged(tag, value, roots))
        time.sleep(0.05)
