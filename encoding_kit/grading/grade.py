"""Grade one submission: copy it, execute each notebook, collect what it reported.

:func:`grade_submission` is what runs on a worker (a thread with ``--jobs``, a
Dask worker with ``--scheduler``); it takes and returns plain data.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .audit import ALLOW_ENV, LOG_ENV, WATCH_ENV, read_log
from .collect import changed_files, figure_thumbnails, key_numbers, reproducibility, snapshot, unreadable_results
from .discover import Submission
from .execute import execute_isolated


@dataclass(frozen=True)
class GradeSettings:
    """What every submission is run with.

    Attributes
    ----------
    out_dir : Path
        The grading folder: ``<out_dir>/<submission>/`` gets the executed copies and results.
    data_dir : Path
        Course data (``DATA_DIR``), never written to.
    quick : bool
        Inject ``QUICK=True``.
    timeout : float
        Seconds per notebook.
    watched : tuple of Path
        Folders a notebook must not write to (the class folder, the data folder).
    tolerance : float or None
        Reproducibility check tolerance (None: no check).
    feature_dir : Path or None
        Shared feature cache for every submission (``$KIT_FEATURE_DIR``).
    snapshots : bool
        Also compare file snapshots of ``watched`` before and after each notebook (catches writes by
        programs the notebook starts; exact only when one notebook runs at a time).
    """

    out_dir: Path
    data_dir: Path
    quick: bool = True
    timeout: float = 1800.0
    watched: tuple = ()
    tolerance: float | None = None
    feature_dir: Path | None = None
    snapshots: bool = False


def has_parameters_cell(notebook):
    """True when a code cell is tagged ``parameters``; None for an unreadable notebook."""
    import nbformat

    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception:
        return None
    return any("parameters" in c.metadata.get("tags", []) for c in nb.cells if c.cell_type == "code")


def copy_submission(submission: Submission, folder: Path):
    """Copy the student's files into ``folder/work/`` (replacing an earlier copy); return that folder.

    Symbolic links are never followed: a link to a place inside the
    submission is copied as a link; one that leads outside it (``/etc/passwd``,
    another student's folder, a big data folder), a broken link and a link
    loop are left out, each named in one printed line.
    """
    work = folder / "work"
    if work.exists():
        shutil.rmtree(work)
    if submission.source.is_dir():
        shutil.copytree(submission.source, work, symlinks=True, ignore=_links_left_out(submission.source))
    else:
        work.mkdir(parents=True)
        shutil.copy2(submission.source, work / submission.source.name)
    return work


def _links_left_out(root):
    """A ``copytree`` ignore function: ``.ipynb_checkpoints`` and the links that do not stay inside ``root``."""
    root = Path(root).resolve()

    def ignore(directory, names):
        skipped = {".ipynb_checkpoints"} & set(names)
        for name in names:
            path = Path(directory) / name
            if not path.is_symlink():
                continue
            try:
                target = path.resolve(strict=True)
                inside = target == root or root in target.parents
                why = "" if inside else f"leads outside the submission, to {target}"
            except (OSError, RuntimeError) as exc:  # broken, or a loop (ELOOP / RuntimeError)
                loop = isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP
                why = "is a symbolic-link loop" if loop else "is a broken symbolic link"
            if why:
                skipped.add(name)
                print(f"{path}: {why}; not copied (links are never followed)", flush=True)
        return skipped

    return ignore


def grade_submission(submission: Submission, settings: GradeSettings):
    """Execute every notebook of one submission on a copy.

    Returns
    -------
    list of dict
        One row per notebook: student, notebook, status, seconds, cell, error, note, numbers,
        figures (thumbnail paths relative to ``out_dir``), reproducibility, executed copy.
    """
    folder = Path(settings.out_dir) / submission.folder_name
    work = copy_submission(submission, folder)
    results = folder / "results"
    env = {"KIT_RESULTS_DIR": str(results), "KIT_PROGRESS": "final", "MPLBACKEND": "Agg",
           WATCH_ENV: os.pathsep.join(map(str, settings.watched)),
           ALLOW_ENV: os.pathsep.join(str(p) for p in (folder, settings.feature_dir) if p)}
    if settings.feature_dir:
        env["KIT_FEATURE_DIR"] = str(settings.feature_dir)
    rows = []
    for name in submission.notebooks:
        notebook = work / name
        executed = folder / "executed" / name
        executed.parent.mkdir(parents=True, exist_ok=True)
        note = ""
        parameters = {"QUICK": bool(settings.quick), "DATA_DIR": str(settings.data_dir)}
        if has_parameters_cell(notebook) is False:
            parameters, note = None, "no parameters cell: ran without injected parameters"
        skip = [p for p in (settings.out_dir, settings.feature_dir) if p]
        before = snapshot(settings.watched, skip) if settings.snapshots else {}
        log = folder / f"outside_writes_{Path(name).stem}.log"
        log.unlink(missing_ok=True)
        outcome = execute_isolated(notebook, executed, parameters, settings.timeout, {**env, LOG_ENV: str(log)})
        outside = read_log(log)
        if settings.snapshots:
            outside = sorted(set(outside) | set(changed_files(before, snapshot(settings.watched, skip))))
        if outside:
            said = f"wrote {len(outside)} file(s) outside its folder: {', '.join(outside[:3])}"
            if outcome["status"] == "ok":
                outcome["status"], outcome["error"] = "wrote outside its folder", said
            else:
                note = "; ".join(x for x in (note, said) if x)
        stem = Path(name).stem
        note = "; ".join(x for x in (note, *unreadable_results(results / stem)) if x)
        thumbs = figure_thumbnails(results / stem, executed, folder / "thumbs") if executed.exists() else []
        source = submission.source / name if submission.source.is_dir() else submission.source
        repro = ""
        if settings.tolerance is not None and executed.exists():
            repro = reproducibility(source, executed, settings.tolerance)
        rows.append({
            "student": submission.id, "notebook": name, "status": outcome["status"], "seconds": outcome["seconds"],
            "cell": outcome.get("cell"), "error": outcome.get("error", ""), "note": note,
            "numbers": "; ".join(key_numbers(results / stem)), "reproducibility": repro,
            "figures": "|".join(str(t.relative_to(settings.out_dir)) for t in thumbs),
            "executed": str(executed.relative_to(settings.out_dir)) if executed.exists() else "",
        })
    return rows
