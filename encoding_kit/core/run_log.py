"""Where a notebook's time goes: feature extractions, ridge fits, networks, and their cache hits.

The runner (``python -m encoding_kit run``) points ``$KIT_RUN_LOG`` at one
file per notebook; the notebook's kernel inherits it, and each timed step of
the kit appends one JSON line there: its kind (``extraction``, ``ridge``,
``networks``), its seconds, whether the cache answered, and what it was
(the model that ran, the settings). ``benchmarks/bench_demo_run.py`` sums
them per notebook. Without the variable nothing is written and the cost is
one ``perf_counter`` per step.

A step inside another step (a network's ridge baseline, the encoder pass of a
decoder extraction) is written with ``nested: true`` so that sums count only
the outer step.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import time

RUN_LOG_ENV = "KIT_RUN_LOG"
KINDS = ("extraction", "ridge", "networks")
_depth = threading.local()


@contextlib.contextmanager
def timed(kind, **fields):
    """Time a step and append it to ``$KIT_RUN_LOG`` (when set).

    Parameters
    ----------
    kind : {"extraction", "ridge", "networks"}
    **fields
        What the step was (JSON-serialisable); the caller may add to the
        yielded dict (e.g. ``info["cache"] = "hit"``).

    Yields
    ------
    dict
        The fields written with the step.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    info = dict(fields)
    depth = getattr(_depth, "n", 0)
    _depth.n = depth + 1
    start = time.perf_counter()
    try:
        yield info
    finally:
        _depth.n = depth
        record(kind, seconds=round(time.perf_counter() - start, 4), nested=depth > 0, **info)


def timed_call(kind):
    """Decorator: log every call of the function as one ``kind`` step (see :func:`timed`)."""

    def wrap(func):
        @functools.wraps(func)
        def call(*args, **kwargs):
            with timed(kind, step=func.__name__):
                return func(*args, **kwargs)

        return call

    return wrap


def record(kind, **fields):
    """Append one JSON line ``{"kind": kind, **fields}`` to ``$KIT_RUN_LOG`` (nothing when it is not set)."""
    path = os.environ.get(RUN_LOG_ENV)
    if not path:
        return
    line = json.dumps({"kind": kind, "pid": os.getpid(), **fields}, default=str) + "\n"
    with open(path, "a", encoding="utf-8") as f:  # one short line per write: appends of lines do not interleave
        f.write(line)


def read_log(path):
    """The steps of a run log, list of dict (missing file: empty list)."""
    try:
        text = open(path, encoding="utf-8").read()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]
