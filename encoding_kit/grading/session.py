"""The grading run: discover, copy, run every submission (threads or Dask), stop on Ctrl-C, write the gradebook."""

from __future__ import annotations

import os
import posixpath
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from .discover import discover_submissions
from .guard import Originals, pristine_files
from .isolation import check_isolation
from .processes import RUN_TAG, kill_job
from .report import gradebook_table, summary_text, write_gradebook
from .sandbox import copy_tree, make_read_only
from .submission import GradeSettings, RunControl, copy_submission, grade_submission


class GradingInterrupted(Exception):
    """Ctrl-C stopped a grading run; ``table`` is the gradebook written for what finished."""

    def __init__(self, table, csv):
        done = int((table["status"] != "interrupted").sum())
        super().__init__(f"Interrupted: {done} notebook(s) graded, {len(table) - done} marked 'interrupted'; "
                         f"gradebook written to {csv}")
        self.table = table


def grade(submissions_dir, out_dir="grading", data_dir=None, quick=False, timeout=1800.0, jobs=1, scheduler=None,
          tolerance=None, feature_dir=None, isolation="none"):
    """Grade every submission in ``submissions_dir``; write the gradebook and print a summary.

    Parameters
    ----------
    submissions_dir : str or Path
        The class folder (one folder per student, or loose notebooks).
    out_dir : str or Path
        Grading folder; an earlier one is moved aside to ``<out_dir>-<time>``, never overwritten.
    data_dir : str or Path, optional
        Course data (default: ``$KIT_DATA_DIR`` or the kit's ``data/``).
    quick : bool
        Inject ``QUICK=True`` (small settings) instead of ``QUICK=False``.
    timeout : float
        Seconds allowed per notebook.
    jobs : int
        Submissions run at once on this machine (ignored with ``scheduler``).
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``) or a ``distributed.Client``.
    tolerance : float, optional
        Compare the numbers of the students' saved outputs with the re-run (relative tolerance).
    feature_dir : str or Path, optional
        Feature cache shared by all submissions (default: ``$KIT_FEATURE_DIR`` or the kit's).
    isolation : {"none", "bwrap"}
        ``"bwrap"``: each notebook in a bubblewrap sandbox (see ``docs/grading.md``).

    Returns
    -------
    DataFrame
        The gradebook (one row per student and notebook).

    Raises
    ------
    GradingInterrupted
        After Ctrl-C, once the gradebook of what finished is written.
    """
    from ..data import course_files as _data

    isolation = check_isolation(isolation)
    submissions, problems = discover_submissions(submissions_dir)
    folder = _data.data_dir(data_dir)
    if _data.data_source(folder) == "missing":
        problems.append(f"{folder}: no course data (expected {', '.join(_data.COURSE_FILES)}): notebooks that load "
                        "data will fail; pass --data-dir")
    for line in problems:
        print(line)
    out_dir = _fresh_folder(Path(out_dir)).resolve()
    klass, folder = Path(submissions_dir).resolve(), folder.resolve()
    hidden = (klass, out_dir, folder)
    settings = GradeSettings(out_dir=out_dir, data_dir=out_dir / ".course-data", quick=quick, timeout=timeout,
                             hidden=hidden, tolerance=tolerance, isolation=isolation, run_id=uuid.uuid4().hex,
                             feature_dir=Path(feature_dir).resolve() if feature_dir else None)
    control = RunControl(stop=threading.Event(), jobs=1 if scheduler is None and int(jobs) <= 1 else 2)
    with _ctrl_c(control, settings.run_id, local=scheduler is None):
        _start(submissions, settings, folder, klass, control)
        rows = _run(submissions, settings, jobs, scheduler, control)
    unclaimed = control.originals.unclaimed()
    if unclaimed:
        problems.append(f"Changes to the class or data folder that no notebook's log claimed (found while several ran; "
                        f"put back): {'; '.join(unclaimed)}")
    table = gradebook_table(rows)
    csv, page = write_gradebook(table, out_dir, problems)
    if control.stop.is_set():
        raise GradingInterrupted(table, csv)
    print(summary_text(table, csv, page))
    return table


def _start(submissions, settings, data, klass, control):
    """Copy every submission and the course data (read-only) into the grading folder; start watching the originals."""
    copy_tree(data, settings.data_dir, skip=settings.hidden[:2], follow_links=True) if data.is_dir() else settings.data_dir.mkdir()
    make_read_only(settings.data_dir)
    pristine = {}
    for sub in submissions:
        submitted = copy_submission(sub, settings.out_dir / sub.folder_name)
        prefix = sub.id if sub.source.is_dir() else posixpath.dirname(sub.id)
        for rel, path in pristine_files(submitted).items():
            pristine[posixpath.join(prefix, rel) if prefix else rel] = path
    control.originals = Originals({"class": (klass, pristine), "data": (data, pristine_files(settings.data_dir))},
                                  skip=[settings.out_dir, klass], spare=settings.out_dir / "quarantine")


def _fresh_folder(out_dir):
    if out_dir.exists() and any(out_dir.iterdir()):
        moved = out_dir.with_name(f"{out_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        out_dir.rename(moved)
        print(f"The earlier grading folder {out_dir} was moved to {moved}")
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def _run(submissions, settings, jobs, scheduler, control):
    rows = []
    if scheduler is not None:
        for sub, result in _on_dask(submissions, settings, scheduler):
            rows += _report_one(sub, result)
        return rows
    with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
        futures = {pool.submit(grade_submission, sub, settings, control): sub for sub in submissions}
        for future in as_completed(futures):
            rows += _report_one(futures[future], _result_or_failure(future.result, futures[future]), control)
    return rows


class _ctrl_c:
    """First SIGINT: stop (``control.stop``); second: kill every process of this run and exit 130 at once."""

    def __init__(self, control, run_id, local=True):
        self.control, self.run_id, self.previous, self.local = control, run_id, None, local

    def __enter__(self):
        if self.local and threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self.handle)
        return self

    def handle(self, signum, frame):
        if not self.control.stop.is_set():
            self.control.stop.set()
            return
        kill_job(RUN_TAG, self.run_id, patience=3.0)
        print("Interrupted twice: stopped at once (no gradebook written); every notebook process was killed.",
              file=sys.stderr, flush=True)
        os._exit(130)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _on_dask(submissions, settings, scheduler):
    from distributed import Client, as_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        futures = {client.submit(grade_submission, sub, settings, pure=False, key=f"grade-{sub.folder_name}"): sub
                   for sub in submissions}
        for future in as_completed(futures):
            yield futures[future], _result_or_failure(future.result, futures[future])
    finally:
        if client is not scheduler:
            client.close()


def _result_or_failure(get, sub):
    try:
        return get()
    except Exception as exc:  # the grader itself failed on this submission: say so and go on
        return [{"student": sub.id, "notebook": name, "status": "grader error", "seconds": 0.0, "cell": None,
                 "error": f"{type(exc).__name__}: {exc}".splitlines()[0]} for name in sub.notebooks]


def _report_one(sub, rows, control=None):
    if control is not None and control.stop.is_set():
        return rows  # after Ctrl-C: one line at the end, no more progress lines
    states = ", ".join(f"{Path(r['notebook']).name} {r['status']}" for r in rows) or "no notebooks"
    print(f"{sub.id}: {states}", flush=True)
    return rows
