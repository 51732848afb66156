"""``python -m encoding_kit grade SUBMISSIONS_DIR``: execute a whole class's notebooks and write a gradebook.

Every submission (a student's folder, or a loose notebook) is copied into the
grading folder and each notebook is executed there against the course data,
with ``QUICK`` and ``DATA_DIR`` injected, a time limit per notebook, and its
results written inside the copy; the student's files are never touched.
Submissions run in parallel threads on this machine (``jobs``) or as tasks on
a Dask cluster (``scheduler``). See ``discover.py``, ``grade.py``,
``execute.py``, ``collect.py`` and ``report.py``.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from .discover import Submission, discover_submissions
from .grade import GradeSettings, grade_submission
from .report import gradebook_table, summary_text, write_gradebook

__all__ = ["GradeSettings", "Submission", "discover_submissions", "grade", "grade_submission"]


def grade(submissions_dir, out_dir="grading", data_dir=None, quick=False, timeout=1800.0, jobs=1, scheduler=None,
          tolerance=None, feature_dir=None):
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

    Returns
    -------
    DataFrame
        The gradebook (one row per student and notebook).
    """
    from ..data import course_files as _data

    submissions, problems = discover_submissions(submissions_dir)
    folder = _data.data_dir(data_dir)
    if _data.data_source(folder) == "missing":
        problems.append(f"{folder}: no course data (expected {', '.join(_data.COURSE_FILES)}): notebooks that load "
                        "data will fail; pass --data-dir")
    for line in problems:
        print(line)
    out_dir = _fresh_folder(Path(out_dir))
    settings = GradeSettings(out_dir=out_dir.resolve(), data_dir=folder.resolve(), quick=quick, timeout=timeout,
                             watched=(Path(submissions_dir).resolve(), folder.resolve()), tolerance=tolerance,
                             feature_dir=Path(feature_dir).resolve() if feature_dir else None,
                             snapshots=scheduler is None and int(jobs) <= 1)
    rows = _run(submissions, settings, jobs, scheduler)
    table = gradebook_table(rows)
    csv, page = write_gradebook(table, out_dir, problems)
    print(summary_text(table, csv, page))
    return table


def _fresh_folder(out_dir):
    if out_dir.exists() and any(out_dir.iterdir()):
        moved = out_dir.with_name(f"{out_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        out_dir.rename(moved)
        print(f"The earlier grading folder {out_dir} was moved to {moved}")
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def _run(submissions, settings, jobs, scheduler):
    rows = []
    if scheduler is not None:
        for sub, result in _on_dask(submissions, settings, scheduler):
            rows += _report_one(sub, result)
        return rows
    with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
        futures = {pool.submit(grade_submission, sub, settings): sub for sub in submissions}
        for future in as_completed(futures):
            rows += _report_one(futures[future], _result_or_failure(future.result, futures[future]))
    return rows


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


def _report_one(sub, rows):
    states = ", ".join(f"{Path(r['notebook']).name} {r['status']}" for r in rows) or "no notebooks"
    print(f"{sub.id}: {states}", flush=True)
    return rows
