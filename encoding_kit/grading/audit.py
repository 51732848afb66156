"""Runs inside a graded notebook's kernel: log every write under a watched folder (an audit hook).

The grader starts each kernel with ``install()`` in its start-up lines and
``$KIT_GRADE_WATCH`` (the class folder and the data folder) and
``$KIT_GRADE_AUDIT_LOG`` (a file in the grading folder) in its environment
(``$KIT_GRADE_ALLOW``: folders inside those that the notebook may write to).
Folders whose path the notebook must not learn (the class folder, the course
data) come as salted SHA-256 hashes in ``$KIT_GRADE_WATCH_HASHED``
(``salt:hash,hash``): a write is logged when one of its path's folders hashes to one.
Opening a file there for writing, or creating, renaming or removing one, is
appended to the log; the notebook itself runs on. The grader reads the log,
so a write is charged to the notebook that made it even when many run at once.
"""

from __future__ import annotations

import os
import sys

WATCH_ENV = "KIT_GRADE_WATCH"
ALLOW_ENV = "KIT_GRADE_ALLOW"  # inside a watched folder but allowed: the submission's grading folder, the feature cache
LOG_ENV = "KIT_GRADE_AUDIT_LOG"
HASHED_ENV = "KIT_GRADE_WATCH_HASHED"
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
PATH_EVENTS = {"os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.truncate", "shutil.rmtree", "os.symlink",
               "os.link", "os.chmod", "os.chown", "os.utime"}  # a hard link or a mode change alters the data too
START_UP = "import encoding_kit.grading.audit as _kit_audit; _kit_audit.install(); del _kit_audit"


def folder_hash(salt, folder):
    """The salted hash of a folder's real path, as ``$KIT_GRADE_WATCH_HASHED`` lists it."""
    import hashlib

    return hashlib.sha256(f"{salt}\0{folder}".encode("utf-8", "surrogateescape")).hexdigest()


def hashed_watch(folders):
    """The value of ``$KIT_GRADE_WATCH_HASHED`` for ``folders`` (a fresh salt)."""
    import secrets

    salt = secrets.token_hex(8)
    return salt + ":" + ",".join(folder_hash(salt, os.path.realpath(f)) for f in folders)


def _under_hashed(real, salt, hashes):
    path = real
    while True:
        if folder_hash(salt, path) in hashes:
            return True
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent


def written_paths(event, args):
    """The paths an audit event writes to (empty when it only reads)."""
    if event == "open":
        path, mode, flags = args
        writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & WRITE_FLAGS)
        return [path] if writing else []
    if event in PATH_EVENTS:
        return [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
    return []


def install():
    """Add the audit hook when ``$KIT_GRADE_WATCH`` and ``$KIT_GRADE_AUDIT_LOG`` are set (else do nothing)."""
    roots, allowed = (_folders(os.environ.get(name, "")) for name in (WATCH_ENV, ALLOW_ENV))
    log = os.environ.get(LOG_ENV)
    salt, _, hashed = os.environ.get(HASHED_ENV, "").partition(":")
    hashes = set(filter(None, hashed.split(",")))
    if not (roots or hashes) or not log:
        return
    busy = []

    def hook(event, args):
        if busy or (event != "open" and event not in PATH_EVENTS):
            return
        busy.append(1)
        try:
            for path in written_paths(event, args):
                if isinstance(path, int):
                    continue
                real = os.path.realpath(os.fsdecode(path))
                watched = _inside(real, roots) or (hashes and _under_hashed(real, salt, hashes))
                if watched and not _inside(real, allowed):
                    with open(log, "a", encoding="utf-8") as out:
                        out.write(f"{event}\t{real}\n")
        finally:
            busy.pop()

    sys.addaudithook(hook)


def _folders(value):
    return [os.path.realpath(p) for p in value.split(os.pathsep) if p]


def _inside(path, folders):
    return any(path == folder or path.startswith(folder + os.sep) for folder in folders)


def read_log(path):
    """Sorted distinct paths written outside the submission, from a log file (missing: none)."""
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except FileNotFoundError:
        return []
    return sorted({line.split("\t", 1)[1] for line in lines if "\t" in line})
