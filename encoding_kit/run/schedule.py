"""Which notebooks may run at once, and running them: ``python -m encoding_kit run --jobs N``.

With ``--jobs 1`` the runner executes the notebooks one after the other, in
the order of :data:`START_ORDER` (each after the notebooks whose cache entries
it reads). With ``--jobs N`` (default :func:`default_jobs`: one per core, at
most :data:`MAX_JOBS`, fewer when memory is short) up to ``N`` kernels run at
once, each with ``cores // N`` threads (one on a 2-core CPU), so two kernels
do not fight over the cores. A notebook starts only after the notebooks whose
cached features or ridge fits it reads (:data:`AFTER`, from the run logs'
cache hits: ``results/executed/run_log/``) have finished, so the concurrent
run computes nothing twice; among the notebooks that may start, they go in the
order of :data:`START_ORDER` (the quick run's or the full run's). Two kernels
that do compute one cache entry at once both end with a whole file: every
cache writes under a temporary name and renames (``core/storage.py``).

A failing notebook stops the run as it does with one job: no further notebook
starts, the ones running finish, and the run stops naming the failed notebook
and its cell.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from ..core.runtime import environment

MAX_JOBS = 4
"""At most this many kernels by default: beyond it the order of :data:`AFTER` leaves nothing to run at once."""
GB_PER_JOB = 3.0
"""Memory one kernel may use (a stand-in model, the demo's fMRI and features); the default jobs fit in memory."""
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

AFTER = {
    "assignment": ("03",),       # BERT's stand-in and Whisper's encoder layers (03's decoder pass stores them)
    "01": ("03",),               # BERT's stand-in at the assignment's settings (03 extracts it for its fusion)
    "04": ("03",),               # BERT layer 4 and Whisper layer 2
    "05": ("01", "03"),          # GPT-2 at 01's context, Whisper's window and 03's ridge of its layer
    "06": ("01", "02", "03"),    # BERT's and Whisper's layers and their ridge fits, 02's audio baseline
    "07": ("03",),               # Whisper layer 2
    "09": ("03",),               # Whisper's encoder and decoder features and the encoder layers' ridge fits
}
"""Notebooks (by their number, or ``assignment``) each notebook waits for: those whose cache entries it reads
(``--quick`` run logs of the demo, 2026-12-07: which notebook wrote each key a later notebook's cache hit reads).
02 and 08 read no other notebook's entries. 03 goes first because its Whisper decoder runs the encoder anyway and
stores the encoder's features of every layer on the way
(:func:`~encoding_kit.features.whisper_decoder.whisper_decoder_features`): the assignment, 04, 05, 06, 07 and 09
then read them, and the encoder runs once. Run the other way round (the assignment first), 03's decoder would run
the encoder a second time (on the quick demo run, 19 of the assignment's 52 s)."""
START_ORDER = {
    "quick": ("03", "assignment", "01", "02", "09", "05", "07", "08", "06", "04"),
    "full": ("03", "02", "08", "01", "05", "07", "09", "assignment", "04", "06"),
}
"""The order ready notebooks start in with several jobs, for ``--quick`` and for a full run (any profile); each
lists a notebook after the ones it waits for. Each is the order whose :func:`replay` (two jobs, :data:`AFTER`) of
the demo run's measured seconds per notebook (``benchmarks/results/demo_run-{quick,full}-float32.json``;
``python benchmarks/bench_demo_run.py --replay FILE`` prints the replay and the best order found) ends soonest, and
stays near the best when one notebook's time moves by 15 %. Both start with 03, which most notebooks wait for, while
the long notebooks nothing waits for (02, 08) fill the other core; then 01 (05 waits for it) and the rest. A full
run cannot end before its longest chain of waits, 03 then 01 then 05 (03 extracts BERT's stand-in, which 01
reads, and 05 reads both). The quick run starts the assignment, the graded notebook, as soon as 03 ends, so a
student sees its results about a minute sooner (its replay within 1 s of the best order's); on the full run it
would push the end back (the assignment is short, 02 and 08 are long)."""


def notebook_key(path):
    """``"assignment"`` or a notebook's number (``"05"``) from its path."""
    stem = path.stem
    return stem if stem == "assignment" else stem.split("_")[0]


def default_jobs(cores=None, memory_gb=None):
    """Kernels to run at once by default: one per core, at most :data:`MAX_JOBS`, and as many as memory holds.

    Parameters
    ----------
    cores : int, optional
        Default ``os.cpu_count()``.
    memory_gb : float, optional
        Available memory; default this machine's (``psutil``).

    Returns
    -------
    int
    """
    cores = cores or os.cpu_count() or 1
    if memory_gb is None:
        import psutil

        memory_gb = psutil.virtual_memory().available / 2**30
    return max(1, min(cores, MAX_JOBS, int(memory_gb // GB_PER_JOB)))


def check_jobs(jobs):
    """``jobs`` as an int >= 1 (``None``: :func:`default_jobs`); a clear error otherwise."""
    if jobs is None:
        return default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"--jobs must be an integer >= 1 (notebooks run at once), found {jobs!r}")
    return jobs


def thread_env(jobs, cores=None, environ=None):
    """Thread variables for each of ``jobs`` concurrent kernels: ``cores // jobs`` threads (at least 1).

    Variables the user set are kept. Returns (dict, threads per kernel).
    """
    threads = max(1, (cores or os.cpu_count() or 1) // jobs)
    unset = [k for k in THREAD_VARIABLES if (k not in environ if environ is not None else not environment(k))]
    return dict.fromkeys(unset, str(threads)), threads


@contextlib.contextmanager
def kernel_threads():
    """Set the thread variables of :func:`~encoding_kit.core.runtime.notebook_thread_env` while a notebook runs.

    Decided at each notebook's start from the load average; one line says when linear algebra runs on one thread.
    """
    from ..core.runtime import cpu_load, environment_set, notebook_thread_env

    env, limited = notebook_thread_env()
    if limited:
        load, cores = cpu_load()
        print(f"The CPU is busy (load average {load:.1f} on {cores} cores): this notebook's "
              "linear algebra runs on one thread (faster than threads that wait for each other's cores).", flush=True)
    with contextlib.ExitStack() as stack:
        for name, value in env.items():
            stack.enter_context(environment_set(name, value))
        yield env


def start_order(notebooks, run="full"):
    """The notebooks (paths) in the order ready ones start with several jobs (:data:`START_ORDER` of ``run``)."""
    rank = {key: i for i, key in enumerate(START_ORDER[run])}
    return sorted(notebooks, key=lambda p: (rank.get(notebook_key(p), len(rank)), p.name))


def replay(seconds, jobs=2, run="full", order=None, after=None):
    """When a run of notebooks taking ``seconds`` would end, scheduled as :func:`run_concurrently` schedules them.

    Whenever a kernel is free, the first notebook in the order whose :data:`AFTER` notebooks have all finished starts.

    Parameters
    ----------
    seconds : dict {key: float}
        Wall seconds of each notebook by its key (``"assignment"``, ``"01"``, ...), e.g. from a benchmark's file.
    jobs : int
    run : {"full", "quick"}
        Whose :data:`START_ORDER`; ``order`` (keys) replaces it.
    after : dict, optional
        Default :data:`AFTER`.

    Returns
    -------
    wall : float
        The end of the last notebook, in seconds from the start.
    timeline : list of (key, start, end)
        In the order the notebooks start.
    """
    after = AFTER if after is None else after
    rank = {key: i for i, key in enumerate(order or START_ORDER[run])}
    pending = sorted(seconds, key=lambda k: (rank.get(k, len(rank)), k))
    waits = {k: {w for w in after.get(k, ()) if w in seconds} for k in pending}
    running, done, now, timeline = [], set(), 0.0, []
    while pending or running:
        for key in [k for k in pending if waits[k] <= done][:jobs - len(running)]:
            pending.remove(key)
            running.append((now + seconds[key], key))
            timeline.append((key, now, now + seconds[key]))
        if not running:
            raise ValueError(f"notebooks wait for each other in a cycle: {pending}")
        running.sort()
        now, key = running.pop(0)
        done.add(key)
    return now, timeline


def run_concurrently(notebooks, jobs, run_one, after=None, run="full"):
    """Run ``run_one(path)`` for each notebook, up to ``jobs`` at once, each after the ones it waits for.

    Parameters
    ----------
    notebooks : list of Path
        In the run's order (a notebook that one of them waits for but that is not in the list is not waited for).
    jobs : int
    run_one : callable (Path) -> dict
        Runs one notebook; raises on failure.
    after : dict, optional
        Default :data:`AFTER`.
    run : {"full", "quick"}
        Whose :data:`START_ORDER` the ready notebooks start in.

    Returns
    -------
    rows : list of dict
        ``run_one``'s results of the notebooks that finished, in ``notebooks``' order.
    failures : list of (Path, Exception)
        In ``notebooks``' order; when not empty, the notebooks not started yet were not started.
    """
    after = AFTER if after is None else after
    selected = {notebook_key(p) for p in notebooks}
    waits = {p: {k for k in after.get(notebook_key(p), ()) if k in selected} for p in notebooks}
    pending, running, finished, done, failures = start_order(notebooks, run), {}, {}, set(), []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while pending or running:
            for path in [p for p in pending if not failures and waits[p] <= done][:jobs - len(running)]:
                pending.remove(path)
                running[pool.submit(run_one, path)] = path
            if not running:
                if failures:
                    break  # a notebook failed: nothing more starts
                raise ValueError(f"notebooks wait for each other in a cycle: {[p.name for p in pending]}")
            ended, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in ended:
                path = running.pop(future)
                try:
                    finished[path] = future.result()
                    done.add(notebook_key(path))
                except Exception as exc:  # noqa: BLE001 - reported by the caller with the notebook's name
                    failures.append((path, exc))
    order = {p: i for i, p in enumerate(notebooks)}
    return ([finished[p] for p in notebooks if p in finished],
            sorted(failures, key=lambda item: order[item[0]]))
