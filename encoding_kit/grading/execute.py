"""Execute one notebook in its own process, kill everything it started, and read what happened from the notebook.

:func:`execute_isolated` (in the grader) starts ``python -m
encoding_kit.grading.execute`` in a new session, tagged (``processes.py``)
and, with ``isolation="bwrap"``, inside a bubblewrap sandbox. That execution
process injects the parameters (papermill), runs the cells with nbclient in the
``encoding-kit`` kernel until the first error or the notebook's deadline, kills
the kernel and every process it started, and only then writes the executed
copy (with how it stopped in ``metadata.kit_grade``) and exits 0.

The grader decides the status from that executed copy (the cells' outputs and
errors as nbclient recorded them) and from the execution process's exit: its
standard output is never read, so a line a notebook prints (or writes to its
parent's terminal) decides nothing, and a notebook that kills its execution
process is reported as such. Statuses: ``ok``, ``error`` and ``missing
package`` (with the failing cell), ``timeout``, ``kernel died``, ``interrupted``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from .processes import JOB_TAG, RUN_TAG, become_subreaper, kill_job

KIT_PARENT = Path(__file__).resolve().parents[2]  # the folder that holds encoding_kit/ and utils.py
SOURCE_CELL = "kit_source_cell"  # cell metadata: its 1-based position in the student's own notebook
GRACE_S = 30.0  # after the notebook's deadline the execution process gets this long to write what it ran
INLINE = "module://matplotlib_inline.backend_inline"  # figures stay in the executed copy (Agg would drop them)


def execute_isolated(notebook, executed, parameters, timeout, env=None, cwd=None, stop=None, isolation=None,
                     run_id="", partial=None):
    """Run ``notebook`` (a copy) into ``executed`` in a child process; return what happened.

    Parameters
    ----------
    notebook, executed : Path
        The copy to run and where the execution process writes the executed copy.
    parameters : dict or None
        Injected by papermill; None injects nothing (no parameters cell).
    timeout : float
        Seconds for the whole notebook.
    env : dict, optional
        Extra environment variables for the child and its kernel.
    cwd : Path, optional
        The notebook's working folder (default: its own folder).
    stop : threading.Event, optional
        Set by Ctrl-C: the notebook is killed and reported ``interrupted``.
    isolation : list of str, optional
        A command prefix that runs the child in a sandbox (``bwrap ...``, see ``isolation.py``).
    run_id : str
        The ``KIT_GRADE_RUN`` tag of this grading run.
    partial : Path, optional
        Where the child saves the cells run so far after each cell (default: next to ``executed``).

    Returns
    -------
    dict
        ``status``, ``seconds``, ``cell`` (position in the executed copy), ``source_cell`` (in the student's
        notebook), ``count`` (its ``In [n]``), ``error`` (one line), ``executed`` (the copy to show, or None).
    """
    executed = Path(executed)
    executed.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(partial or executed.with_name(f".{executed.stem}.partial.ipynb"))
    for path in (executed, partial):
        path.unlink(missing_ok=True)
    token = uuid.uuid4().hex
    job = {"notebook": str(notebook), "out": str(executed), "partial": str(partial), "parameters": parameters,
           "timeout": float(timeout), "cwd": str(cwd or Path(notebook).parent)}
    child_env = {**os.environ, **(env or {}), JOB_TAG: token, RUN_TAG: run_id, "MPLBACKEND": INLINE}
    # The kit that grades is the kit the kernel imports, installed or not.
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(KIT_PARENT), child_env.get("PYTHONPATH")) if p)
    command = [*(isolation or []), sys.executable, "-m", "encoding_kit.grading.execute", json.dumps(job)]
    log = executed.with_name(f".{executed.stem}.log")
    start = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=child_env,
                                start_new_session=(os.name == "posix"))
    stopped = _wait(proc, start + float(timeout) + GRACE_S, stop)
    kill_job(JOB_TAG, token, roots=[proc.pid], group=proc.pid)  # nothing it started outlives its row
    proc.wait()
    seconds = round(time.monotonic() - start, 1)
    if stopped is None and proc.returncode == 0 and executed.exists():
        return {**notebook_outcome(executed), "seconds": seconds, "executed": executed}
    shown = partial if partial.exists() else None
    where = running_cell(shown) if shown else {}
    if stopped == "interrupted":
        status, error = "interrupted", "stopped by Ctrl-C before it finished"
    elif stopped == "timeout":
        status, error = "timeout", f"still running after {timeout:g} s: stopped"
    else:
        code = proc.returncode
        how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
        status = "kernel died"
        error = (f"its execution process ended ({how}) before writing the executed copy: the notebook or a "
                 f"program it started killed it, or the grader failed ({_tail(log)})")
    return {"status": status, "error": error, "seconds": seconds, "executed": shown, **where}


def _wait(proc, deadline, stop):
    while proc.poll() is None:
        if stop is not None and stop.is_set():
            return "interrupted"
        if time.monotonic() > deadline:
            return "timeout"
        time.sleep(0.1)
    return None


def _tail(log):
    try:
        lines = [ln for ln in Path(log).read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    return lines[-1][:200] if lines else "no output"


def _read(path):
    import nbformat

    return nbformat.read(path, as_version=4)


def _where(nb, index):
    cell = nb.cells[index]
    return {"cell": index + 1, "source_cell": cell.metadata.get(SOURCE_CELL), "count": cell.get("execution_count")}


def running_cell(path):
    """Where a partly executed copy stopped: the first code cell without a reply (empty if unreadable)."""
    try:
        nb = _read(path)
    except Exception:
        return {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.source.strip() and "shell.execute_reply" not in cell.metadata.get(
                "execution", {}):
            return _where(nb, index)
    return {}


def notebook_outcome(path):
    """Status of an executed copy, from its cells' outputs and the execution process's ``metadata.kit_grade``.

    Returns
    -------
    dict
        ``status``, ``cell``, ``source_cell``, ``count``, ``error`` (see :func:`execute_isolated`).
    """
    nb = _read(path)
    for index, cell in enumerate(nb.cells):
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if cell.cell_type == "code" and errors:
            ename, evalue = errors[0].get("ename", "Error"), errors[0].get("evalue", "")
            status = "missing package" if ename == "ModuleNotFoundError" else "error"
            return {"status": status, "error": f"{ename}: {evalue}".splitlines()[0], **_where(nb, index)}
    meta = nb.metadata.get("kit_grade", {})
    stopped = meta.get("stopped")
    if stopped is None and all(c.get("execution_count") for c in nb.cells if c.cell_type == "code" and c.source.strip()):
        return {"status": "ok", "error": "", "cell": None, "source_cell": None, "count": None}
    where = _where(nb, meta["cell"]) if isinstance(meta.get("cell"), int) else {}
    if stopped == "timeout":
        return {"status": "timeout", "error": meta.get("error", "stopped at its time limit"), **where}
    return {"status": "kernel died", "error": meta.get("error") or "the kernel stopped before the last cell", **where}


def _prepare(job, kernel):
    """The notebook to run: each cell tagged with its position, then papermill's parameters injected."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(job["notebook"])  # papermill's defaults (tags, metadata) on every cell
    for index, cell in enumerate(nb.cells, 1):
        cell.metadata[SOURCE_CELL] = index
    if job["parameters"] is not None:
        nb = parameterize_notebook(nb, job["parameters"], kernel_name=kernel, language="python")
    return nb


def _run_job(job):
    """Execute, kill what the notebook started, write the executed copy. Runs in the execution process."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    from ..core.storage import atomic_write
    from ..run.kernel import headless_kernel, kernel_name
    from .audit import START_UP

    become_subreaper()
    name = kernel_name()
    nb = _prepare(job, name)
    deadline = time.monotonic() + job["timeout"]
    state = {}

    def started(cell, cell_index, **_):
        state["cell"] = cell_index

    def saved(cell, cell_index, **_):  # the cells run so far, for a timeout or a kill
        atomic_write(job["partial"], lambda tmp: nbformat.write(nb, tmp))

    try:
        with headless_kernel(name) as km:
            client = NotebookClient(nb, km=km, kernel_name=name, timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
                                    startup_timeout=120, allow_errors=False, record_timing=True,
                                    extra_arguments=[f"--IPKernelApp.exec_lines={START_UP}"],
                                    resources={"metadata": {"path": job["cwd"]}},
                                    on_cell_start=started, on_cell_executed=saved)
            client.execute()
    except CellExecutionError:
        pass  # the error is in the failing cell's outputs
    except CellTimeoutError:
        state.update(stopped="timeout", error=f"still running after {job['timeout']:g} s: stopped")
    except DeadKernelError as exc:
        state.update(stopped="kernel died", error=f"the kernel died: {exc}".strip().splitlines()[0])
    except Exception as exc:  # the kernel could not start, or nbclient failed
        state.update(stopped="kernel died", error=f"{type(exc).__name__}: {exc}".splitlines()[0])
    finally:
        kill_job(JOB_TAG, os.environ.get(JOB_TAG, "-"), patience=5.0)
    nb.metadata["kit_grade"] = {k: state[k] for k in ("stopped", "error", "cell") if k in state}
    atomic_write(job["out"], lambda tmp: nbformat.write(nb, tmp))


if __name__ == "__main__":
    _run_job(json.loads(sys.argv[1]))
