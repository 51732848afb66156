"""Grade one submission: run each notebook in its sandbox, then copy out and read what it left.

:func:`grade_submission` is what runs on a worker (a thread with ``--jobs``, a
Dask worker with ``--scheduler``); it takes and returns plain data. Its
grading folder ``<out>/<folder name>/`` receives, once the kernel and
everything it started are dead: ``submitted/`` (the files as handed in, copied
when grading began), ``work/`` (the working copy after the run), ``results/``,
``executed/<notebook>`` with its ``.html`` page, ``figures/`` and
``quarantine/`` (files it wrote outside its folder).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .audit import HASHED_ENV, LOG_ENV, WATCH_ENV, hashed_watch, read_log
from .collect import figures, headline_numbers, notebook_html, reproducibility, unreadable_results, used_standins
from .discover import Submission
from .execute import execute_isolated
from .isolation import bwrap_command
from .sandbox import Sandbox, copy_tree, fingerprint


@dataclass(frozen=True)
class GradeSettings:
    """What every submission is run with.

    Attributes
    ----------
    out_dir : Path
        The grading folder: ``<out_dir>/<submission>/`` gets the copies, executed notebooks and results.
    data_dir : Path
        Course data; each submission reads a read-only copy of it (``DATA_DIR``).
    quick : bool
        Inject ``QUICK=True``.
    timeout : float
        Seconds per notebook.
    hidden : tuple of Path
        Folders the notebooks are never shown (class folder, grading folder, course data): hidden under
        ``--isolation bwrap``.
    tolerance : float or None
        Reproducibility check tolerance (None: no check).
    feature_dir : Path or None
        Shared feature cache for every submission (``$KIT_FEATURE_DIR``).
    isolation : str
        ``"none"`` or ``"bwrap"`` (see ``isolation.py``).
    run_id : str
        The ``KIT_GRADE_RUN`` tag of this grading run.
    """

    out_dir: Path
    data_dir: Path
    quick: bool = True
    timeout: float = 1800.0
    hidden: tuple = ()
    tolerance: float | None = None
    feature_dir: Path | None = None
    isolation: str = "none"
    run_id: str = ""


@dataclass
class RunControl:
    """What the local grader shares with its worker threads (None on Dask workers).

    Attributes
    ----------
    stop : threading.Event
        Set by Ctrl-C.
    originals : Originals or None
        The class folder and the course data, repaired after each notebook (``guard.py``).
    jobs : int
        Notebooks run at once (1: every change found after a notebook is its own).
    """

    stop: object
    originals: object = None
    jobs: int = 1


def has_parameters_cell(notebook):
    """True when a code cell is tagged ``parameters``; None for an unreadable notebook."""
    import nbformat

    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception:
        return None
    return any("parameters" in c.metadata.get("tags", []) for c in nb.cells if c.cell_type == "code")


def copy_submission(submission: Submission, folder: Path):
    """Copy the student's files into ``folder/submitted/`` (once); return that folder.

    Symbolic links are never followed (:func:`~encoding_kit.grading.sandbox.copy_tree`): links inside the submission
    are kept as links; links leading outside it, broken links and loops are left out, each named in one printed line.
    """
    submitted = Path(folder) / "submitted"
    if not submitted.exists():
        copy_tree(submission.source, submitted)
    return submitted


def _row(submission, name, outcome, note="", **extra):
    return {"student": submission.id, "notebook": name, "status": outcome["status"],
            "seconds": outcome.get("seconds", 0.0), "cell": outcome.get("cell"), "source_cell": outcome.get("source_cell"),
            "error": outcome.get("error", ""), "note": note, **extra}


def interrupted_rows(submission, names=None):
    """Rows for notebooks never run because grading was stopped (Ctrl-C)."""
    return [_row(submission, name, {"status": "interrupted", "error": "not run: grading was stopped (Ctrl-C)"})
            for name in (names if names is not None else submission.notebooks)]


def grade_submission(submission: Submission, settings: GradeSettings, control: RunControl | None = None):
    """Execute every notebook of one submission in its sandbox.

    Returns
    -------
    list of dict
        One row per notebook: student, notebook, status, seconds, cell (in the executed copy), source_cell
        (in the student's notebook), execution_count, error, note, numbers, standins, reproducibility, figures (thumbnail
        and figure paths relative to ``out_dir``), executed, html.
    """
    folder = Path(settings.out_dir) / submission.folder_name
    submitted = copy_submission(submission, folder)
    if control is not None and control.stop.is_set():
        return interrupted_rows(submission)
    sandbox = Sandbox(submitted, settings.data_dir, skip=settings.hidden)
    try:
        rows = []
        for k, name in enumerate(submission.notebooks):
            if control is not None and control.stop.is_set():
                return rows + interrupted_rows(submission, submission.notebooks[k:])
            rows.append(_grade_notebook(submission, name, sandbox, folder, settings, control))
        return rows
    finally:
        sandbox.close()


def _grade_notebook(submission, name, sandbox, folder, settings, control):
    notebook = sandbox.work / name
    readable = has_parameters_cell(notebook)
    if readable is None:
        return _row(submission, name, {"status": "invalid notebook", "error": "not a readable notebook (nbformat "
                                       "could not read it as JSON notebook)"})
    note, parameters = "", {"QUICK": bool(settings.quick), "DATA_DIR": str(sandbox.data)}
    if readable is False:
        parameters, note = None, "no parameters cell: ran without injected parameters"
    log = sandbox.private / f"outside_writes_{Path(name).stem}.log"
    env = {"KIT_RESULTS_DIR": str(sandbox.results), "KIT_DATA_DIR": str(sandbox.data), "KIT_PROGRESS": "final",
           WATCH_ENV: str(sandbox.data), HASHED_ENV: hashed_watch(settings.hidden[:1] + settings.hidden[2:]),
           LOG_ENV: str(log), "JUPYTER_RUNTIME_DIR": str(sandbox.private / "runtime"),
           "IPYTHONDIR": str(sandbox.private / "ipython")}
    feature_dir = settings.feature_dir
    if feature_dir:
        env["KIT_FEATURE_DIR"] = str(feature_dir)
    isolation = None
    if settings.isolation == "bwrap":
        from ..core.storage import cache_root

        cache = Path(feature_dir or cache_root())
        cache.mkdir(parents=True, exist_ok=True)
        isolation = bwrap_command(sandbox, notebook.parent, writable=[cache], hidden=settings.hidden)
    results_before = fingerprint(sandbox.results)
    outcome = execute_isolated(notebook, sandbox.private / "executed" / name, parameters, settings.timeout, env,
                               cwd=notebook.parent, stop=control.stop if control else None, isolation=isolation,
                               run_id=settings.run_id)
    # the kernel and everything it started are dead: what follows reads files nothing can change any more
    outside = _outside_writes(sandbox, folder, control, log)
    if outside:
        said = f"wrote {len(outside)} file(s) outside its folder: {'; '.join(outside[:6])}"
        if outcome["status"] == "ok":
            outcome["status"], outcome["error"] = "wrote outside its folder", said
        else:
            note = "; ".join(x for x in (note, said) if x)
    return _collect(submission, name, sandbox, folder, settings, outcome, note, results_before)


def _outside_writes(sandbox, folder, control, log):
    created, changed, deleted = sandbox.data_changes()
    moved = sandbox.quarantine_data(created, folder / "quarantine" / "data")
    found = [f"created {p.relative_to(folder)} in its copy of the data (moved there)" for p in moved]
    found += [f"{what} {sandbox.data / rel} in its read-only copy of the data (the course data is untouched)"
              for what, paths in (("changed", changed), ("deleted", deleted)) for rel in paths]
    logged = [p for p in read_log(log) if not p.startswith(str(sandbox.root) + os.sep)]
    if control is not None and control.originals is not None:
        found += control.originals.check(folder / "quarantine", logged, alone=control.jobs == 1)
    elif logged:
        found += [f"wrote {p}" for p in logged]
    return found


def _collect(submission, name, sandbox, folder, settings, outcome, note, results_before):
    out = Path(settings.out_dir)
    for source, target in ((sandbox.results, folder / "results"), (sandbox.work, folder / "work")):
        shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    after = fingerprint(sandbox.results)
    written = {rel.split("/")[0] for rel in after if after[rel] != results_before.get(rel)}
    result_folders = [folder / "results" / top for top in sorted(written) if top != "previous"]
    executed = html = None
    if outcome.get("executed"):
        executed = folder / "executed" / name
        executed.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(outcome["executed"], executed)
        html = notebook_html(executed, executed.with_suffix(".html"))
    pairs = figures(result_folders, executed, folder / "figures") if executed or result_folders else []
    note = "; ".join(x for x in (note, *unreadable_results(result_folders, relative_to=folder)) if x)
    source = submission.source / name if submission.source.is_dir() else submission.source
    repro = ""
    if settings.tolerance is not None and executed is not None and outcome["status"] != "invalid notebook":
        repro = reproducibility(source, executed, settings.tolerance)

    def relative(path):
        return str(path.relative_to(out)) if path else ""

    return _row(submission, name, outcome, note, execution_count=outcome.get("count"),
                numbers="; ".join(headline_numbers(result_folders)),
                standins=bool(executed and used_standins(executed)), reproducibility=repro,
                figures="|".join(f"{relative(t)}>{relative(f)}" for t, f in pairs),
                executed=relative(executed), html=relative(html))
