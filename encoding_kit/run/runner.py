"""Execute the kit's notebooks headless (behind ``make run``).

``python -m encoding_kit run [--quick]`` makes sure data exist (real course
files when present, otherwise the demo), runs ``assignment.ipynb`` and
``notebooks/NN_*.ipynb`` with papermill (in the order of
:data:`~encoding_kit.run.schedule.START_ORDER`: 03 first, whose Whisper pass
gives the features the others read), writes executed copies to
``results/executed/``, stops at the first failing notebook (naming it and the
cell), and prints a summary of the best layer per model.

One ``run`` at a time per results folder: a run holds ``results/.run.lock``
(released when it ends or its process dies), and a second ``run`` in the
same checkout stops at once with one line, before touching any result. Each
notebook's earlier results move to ``results/previous/`` (:func:`results_dir`),
which keeps the newest :data:`KEEP_PREVIOUS` per notebook.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import time
from pathlib import Path

import pandas as pd

from ..core.run_log import KINDS, RUN_LOG_ENV, read_log
from ..core.runtime import environment
from ..core.storage import PROJECT_ROOT
from ..data import course_files as _data
from .schedule import kernel_threads

ROOT = PROJECT_ROOT
RESULTS = ROOT / "results"
RESULTS_ENV = "KIT_RESULTS_DIR"  # the grader points each submission's notebooks at its own results folder
RUN_LOCK = ".run.lock"
KEEP_PREVIOUS = 3
"""Earlier results kept per notebook in ``results/previous/`` (the newest ones); ``$KIT_KEEP_PREVIOUS`` overrides
(``0``: keep none, the earlier results are deleted)."""
KEEP_ENV = "KIT_KEEP_PREVIOUS"
LAYER_SUBJECT_SCORES = "layer_subject_scores.csv"


class NotebookFailed(RuntimeError):
    """A notebook raised an error while being executed."""


def results_dir(name, root=None):
    """``results/<name>/`` (created, empty), where a notebook writes its tables and figures.

    Files of an earlier run are not overwritten: they move to
    ``results/previous/<name>-<time of that run>/``, and a line says where.
    Only the newest :data:`KEEP_PREVIOUS` (3) earlier results of each
    notebook are kept there; older ones are deleted, and the line says which.
    Set ``$KIT_KEEP_PREVIOUS`` (e.g. ``KIT_KEEP_PREVIOUS=10``) to keep more.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, utils
    >>> root = tempfile.mkdtemp()
    >>> folder = utils.results_dir("my_notebook", root=root)    # the notebook's tables and figures go here
    >>> folder.name, folder.is_dir()
    ('my_notebook', True)
    """
    root = Path(root or environment(RESULTS_ENV) or RESULTS)
    folder = root / name
    if folder.is_dir() and any(folder.iterdir()):
        archive = _archive_folder(root / "previous", name, folder)
        for item in folder.iterdir():
            item.rename(archive / item.name)
        keep = keep_previous()
        dropped = [p.name for p in prune_previous(root / "previous", name, keep)]
        if archive.name in dropped:
            print(f"The previous results in {folder} were deleted ({KEEP_ENV}={keep})")
        else:
            said = f"; older ones deleted (keeping {keep}): {', '.join(dropped)}" if dropped else ""
            print(f"The previous results in {folder} were moved to {archive}{said}")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def keep_previous():
    """How many earlier results per notebook ``results/previous/`` keeps: ``$KIT_KEEP_PREVIOUS`` or 3."""
    value = environment(KEEP_ENV).strip()
    if not value:
        return KEEP_PREVIOUS
    if not value.isdigit():
        raise ValueError(f"{KEEP_ENV} must be a whole number >= 0 (earlier results kept per notebook), "
                         f"found {value!r}")
    return int(value)


def prune_previous(previous, name, keep):
    """Delete all but the newest ``keep`` archives ``<name>-<YYYYmmdd-HHMMSS>[-n]`` of one notebook.

    Returns
    -------
    list of pathlib.Path
        The folders deleted, oldest first.
    """
    import re
    import shutil

    pattern = re.compile(rf"^{re.escape(name)}-(\d{{8}}-\d{{6}})(?:-(\d+))?$")
    found = []
    for item in Path(previous).iterdir() if Path(previous).is_dir() else []:
        match = pattern.match(item.name)
        if match and item.is_dir():
            found.append(((match.group(1), int(match.group(2) or 1)), item))
    found.sort()
    dropped = [item for _, item in found[:max(len(found) - keep, 0)]]
    for item in dropped:
        shutil.rmtree(item)
    return dropped


def _archive_folder(previous, name, folder):
    newest = max(item.stat().st_mtime for item in folder.iterdir())
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(newest))
    archive, n = previous / f"{name}-{stamp}", 1
    while archive.exists():
        n += 1
        archive = previous / f"{name}-{stamp}-{n}"
    archive.mkdir(parents=True)
    return archive


def ensure_data(data_dir=None, n_subjects=25, n_trs=2249):
    """Use the course files when present, otherwise make (or reuse) the demo.

    Returns
    -------
    (pathlib.Path, str)
        The data folder and its source (``"course"`` or ``"demo"``).
    """
    from ..core.storage import remove_stale_temps

    folder = _data.data_dir(data_dir)
    remove_stale_temps(folder)  # staging folders of interrupted demo generations
    source = _data.data_source(folder)
    if source != "missing":
        return folder, source
    present = [n for n in _data.COURSE_FILES if (folder / n).exists()]
    if present and not set(present) <= _data.demo_written(folder):  # a partial demo is regenerated
        missing = sorted(set(_data.COURSE_FILES) - set(present))
        raise FileNotFoundError(
            f"{folder}: has {', '.join(present)} but not {', '.join(missing)}; add the missing course files "
            "(`python -m encoding_kit fetch` gets the public ones) or use an empty folder for the demo"
        )
    from ..demo.generate import make_demo_dataset

    print(f"No course data in {folder}: generating the offline demo dataset ({n_subjects} subjects x {n_trs} TRs).")
    make_demo_dataset(folder, n_subjects=n_subjects, n_trs=n_trs, overwrite=True)  # only ever replaces demo files
    return folder, "demo"


def notebook_paths(root=None):
    """``assignment.ipynb`` then ``notebooks/NN_*.ipynb`` in order (those that exist)."""
    root = Path(root or ROOT)
    paths = [root / "assignment.ipynb"] if (root / "assignment.ipynb").exists() else []
    return paths + sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def execute_notebook(path, out_path, parameters, cwd=None, env=None, progress=True):
    """Run one notebook with papermill in the ``encoding-kit`` kernel; raise :class:`NotebookFailed` naming the cell.

    Parameters
    ----------
    path, out_path : Path
        The notebook and its executed copy.
    parameters : dict
        Injected by papermill.
    cwd : Path, optional
        Default: the notebook's folder.
    env : dict, optional
        Environment variables for this notebook's kernel only (its run log, its threads).
    progress : bool
        Papermill's cell progress bar (off when several notebooks run at once).

    Returns
    -------
    float or None
        The kernel's CPU seconds (None where they cannot be read).
    """
    import papermill as pm

    from .kernel import headless_kernel, kernel_name

    name = kernel_name()
    try:
        with headless_kernel(name, env=env) as km:
            pm.execute_notebook(
                str(path), str(out_path), parameters=parameters, cwd=str(cwd or Path(path).parent),
                kernel_name=name, km=km, language="python", progress_bar=progress,
                log_output=False,
            )
    except pm.PapermillExecutionError as exc:
        hint = ""
        if exc.ename == "ModuleNotFoundError" and any(m in str(exc.evalue) for m in ("'utils'", "'encoding_kit'")):
            hint = "\nThe kit is not installed in this environment: run `make` (or `pip install -e . --no-deps`)."
        raise NotebookFailed(
            f"{Path(path).name} failed in cell {exc.cell_index} (execution count {exc.exec_count}): "
            f"{exc.ename}: {exc.evalue}\nThe executed copy with the traceback is {out_path}{hint}"
        ) from exc
    return getattr(km, "kit_cpu_s", None)


def run_all(quick=False, data_dir=None, root=None, only=None, profile="full", jobs=None, trims=True):
    """Execute every notebook in order and print a summary.

    Parameters
    ----------
    quick : bool
        Pass ``QUICK=True`` (small model lists and subsets) to every notebook.
    data_dir : str or Path, optional
        Data folder passed to the notebooks as ``DATA_DIR``.
    root : str or Path, optional
        Project root (tests run a copy).
    only : list of str, optional
        Run only notebooks whose file name contains one of these strings.
    profile : {"full", "laptop"}
        Notebook parameters of :mod:`encoding_kit.run.profiles`; its estimated
        time on the real data and what it leaves out are printed first.
    jobs : int, optional
        Notebooks run at once (:mod:`encoding_kit.run.schedule`); default one per core (at most 4); 1: one
        after the other, in the same start order (:data:`~encoding_kit.run.schedule.START_ORDER`).
    trims : bool
        On the demo (not with ``quick``), leave out the settings of :data:`~encoding_kit.run.profiles.DEMO`
        (said in one printed line); ``False`` runs every setting (``--no-trims``).

    Returns
    -------
    DataFrame
        One row per notebook: name, seconds, the :data:`STEP_COLUMNS` of its run log
        (``results/executed/run_log/<notebook>.jsonl``), executed copy; also written, without the
        executed copy, to ``results/executed/run_summary.csv``.
    """
    from ..core.storage import folder_lock
    from .profiles import demo_note, describe, parameters
    from .schedule import check_jobs

    root = Path(root or ROOT)
    notebooks = select_notebooks(notebook_paths(root), only)
    keep_previous()  # a bad $KIT_KEEP_PREVIOUS is named before any work
    jobs = check_jobs(jobs)
    with folder_lock(root / "results", RUN_LOCK, "`python -m encoding_kit run` is writing results in"):
        print(describe("quick" if quick else profile), flush=True)
        folder, source = ensure_data(data_dir)
        trimmed = source == "demo" and not quick and trims
        if trimmed:
            print(demo_note(profile, [p.stem for p in notebooks]), flush=True)

        def settings(profile, stem, demo):
            return parameters(profile, stem, demo=demo and trimmed)

        return _run_notebooks(notebooks, root, folder, source, quick, profile, settings, jobs)


def select_notebooks(paths, only=None):
    """The notebooks whose file name contains one of ``only`` (all when ``only`` is empty).

    Raises
    ------
    ValueError
        A key of ``only`` matches no notebook (a typo): named with the notebooks there, before any work.
    """
    if not only:
        return list(paths)
    unknown = [key for key in only if not any(key in p.name for p in paths)]
    if unknown:
        raise ValueError(f"--only {' '.join(unknown)}: no notebook name contains {unknown[0]!r}; the notebooks are "
                         f"{', '.join(p.name for p in paths) or '(none)'}")
    return [p for p in paths if any(key in p.name for key in only)]


def _run_notebooks(notebooks, root, folder, source, quick, profile, parameters, jobs=1):
    from .schedule import run_concurrently, start_order, thread_env

    executed = results_dir("executed", root / "results")
    label, jobs, threads = ("quick" if quick else profile), max(1, min(jobs, len(notebooks))), {}
    finished = itertools.count(1)  # the done lines count the notebooks finished (threads share it)
    if jobs > 1:
        threads, n = thread_env(jobs)
        print(f"{len(notebooks)} notebooks, up to {jobs} at once (--jobs {jobs}; --jobs 1 runs them one by one), "
              f"each kernel on {n} thread{'s' * (n > 1)}; a notebook starts after the ones whose cached features "
              "it reads.", flush=True)

    def run_one(path):
        out, log = executed / path.name, executed / RUN_LOG_FOLDER / f"{path.stem}.jsonl"
        print(f"\n=== {path.relative_to(root)} ({label}, {source} data) ===", flush=True)
        params = {**parameters(profile, path.stem, demo=source == "demo" and not quick), "QUICK": bool(quick),
                  "DATA_DIR": str(folder)}
        start = time.perf_counter()
        try:
            with kernel_threads() if jobs == 1 else contextlib.nullcontext():
                cpu = execute_notebook(path, out, params, cwd=path.parent,
                                       env={RUN_LOG_ENV: str(empty_log(log)), **threads}, progress=jobs == 1)
        except NotebookFailed:
            if jobs > 1:
                print(f"--- {path.name} FAILED: no other notebook starts; the running ones finish", flush=True)
            raise
        row = {"notebook": path.name, "seconds": round(time.perf_counter() - start, 1), "cpu_s": cpu,
               **step_totals(read_log(log)), "executed": str(out)}
        if jobs > 1:
            print(f"--- {path.name} done in {row['seconds']:.0f} s (kernel CPU {cpu} s) "
                  f"[{next(finished)}/{len(notebooks)} notebooks]", flush=True)
        return row

    if jobs == 1:  # one by one in the start order too: the notebooks whose cache entries others read go first
        ran = {path: run_one(path) for path in start_order(notebooks, "quick" if quick else "full")}
        rows = [ran[path] for path in notebooks]
    else:
        rows, failures = run_concurrently(notebooks, jobs, run_one, run="quick" if quick else "full")
        if failures:
            for _, exc in failures[1:]:
                print(f"\nALSO FAILED: {exc}", file=sys.stderr)
            raise failures[0][1]
    runs = pd.DataFrame(rows, columns=["notebook", "seconds", "cpu_s", *STEP_COLUMNS, "executed"])
    runs.drop(columns="executed").to_csv(executed / RUN_SUMMARY, index=False)
    print("\nNotebooks run (seconds; the kernel's CPU seconds; extraction, ridge and network steps with their cache "
          "hits):\n" + (runs.drop(columns="executed").to_string(index=False) if len(runs) else "  (none found)"))
    best = best_layers(root / "results")
    if len(best):
        print("\nBest layer per model, chosen on half of the subjects, mean +- std r across the other half:\n"
              + best.to_string(index=False))
    print(f"\nExecuted notebooks: {executed}\nTables and figures: {root / 'results'}/<notebook>/")
    return runs


RUN_LOG_FOLDER = "run_log"
RUN_SUMMARY = "run_summary.csv"
STEP_COLUMNS = ["extraction_s", "extractions", "extraction_hits", "ridge_s", "ridge_fits", "ridge_hits",
                "networks_s", "network_fits", "network_hits", "extracted"]


def empty_log(path):
    """An empty run log at ``path`` for one notebook (its kernel gets ``$KIT_RUN_LOG`` pointing at it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    return path


def step_totals(steps):
    """Seconds, computed steps and cache hits of each kind in a run log (outer steps only).

    Parameters
    ----------
    steps : list of dict
        :func:`encoding_kit.core.run_log.read_log`.

    Returns
    -------
    dict with the keys of :data:`STEP_COLUMNS`
        ``extracted``: the models extracted (not read from the cache), each with its feature kind and count,
        e.g. ``"stand-in:SmolLM2-135M (text) x2"`` for two settings.
    """
    out = {}
    for kind, (seconds, done, hits) in zip(KINDS, zip(*[iter(STEP_COLUMNS[:9])] * 3)):
        mine = [s for s in steps if s["kind"] == kind and not s.get("nested")]
        n_hits = sum(s.get("cache") == "hit" for s in mine)
        out.update({seconds: round(sum(s["seconds"] for s in mine), 1), done: len(mine) - n_hits, hits: n_hits})
    extracted = [f"{s.get('model')} ({s.get('feature')})" for s in steps
                 if s["kind"] == "extraction" and s.get("cache") != "hit"]
    out["extracted"] = "; ".join(f"{m} x{extracted.count(m)}" for m in dict.fromkeys(extracted))
    return out


def best_layers(results_root=None):
    """Best layer per model from every ``results/*/layer_subject_scores.csv``.

    The layer is chosen on one half of the subjects and its scores are those
    of the other half (:func:`encoding_kit.analysis.layers.best_layers_held_out`),
    so the table is not biased up by the choice.

    Returns
    -------
    DataFrame with columns notebook, model, layer, mean_r, std_r, norm_r, n_report
    """
    from ..analysis.layers import best_layers_held_out

    columns = ["notebook", "model", "layer", "mean_r", "std_r", "norm_r", "n_report"]
    frames = []
    for file in sorted(Path(results_root or RESULTS).glob(f"*/{LAYER_SUBJECT_SCORES}")):
        best = best_layers_held_out(pd.read_csv(file))
        best.insert(0, "notebook", file.parent.name)
        frames.append(best)
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns].round(4)
