"""Execute one notebook of a submission in its own process, with a wall-clock limit, and say what happened.

:func:`execute_isolated` starts ``python -m encoding_kit.grading.execute`` in
a new process group (the kernel is its child), so a notebook that hangs is
killed whole at the limit and a crash of papermill or of the kernel never
reaches the grader. The child runs papermill in the ``encoding-kit`` kernel
(IPC, headless progress bars) and prints one JSON line with the outcome.

Statuses: ``ok``, ``error`` (cell, error type and message), ``missing package``
(a ``ModuleNotFoundError``), ``timeout``, ``kernel died``, ``invalid notebook``
(not readable as a notebook).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

KIT_PARENT = Path(__file__).resolve().parents[2]  # the folder that holds encoding_kit/ and utils.py
RESULT_TAG = "KIT-GRADE-RESULT "


def execute_isolated(notebook, out_notebook, parameters, timeout, env=None):
    """Run ``notebook`` to ``out_notebook`` (cwd: the notebook's folder) in a child process.

    Parameters
    ----------
    notebook, out_notebook : Path
        The notebook to run (a copy: it is never modified) and where the executed copy goes.
    parameters : dict or None
        Injected by papermill; None injects nothing (no parameters cell).
    timeout : float
        Seconds for the whole notebook; the child and its kernel are killed after that.
    env : dict, optional
        Extra environment variables for the child and its kernel.

    Returns
    -------
    dict
        ``status``, ``seconds``, ``cell`` (index of the failing cell or None), ``error`` (one line).
    """
    job = {"notebook": str(notebook), "out": str(out_notebook), "parameters": parameters}
    child_env = {**os.environ, **(env or {})}
    # The kit that grades is the kit the kernel imports, installed or not.
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(KIT_PARENT), child_env.get("PYTHONPATH")) if p)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "encoding_kit.grading.execute", json.dumps(job)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env,
                            start_new_session=(os.name == "posix"))
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        return {"status": "timeout", "seconds": round(time.perf_counter() - start, 1), "cell": None,
                "error": f"still running after {timeout:g} s: stopped (the executed copy holds the cells run so far)"}
    seconds = round(time.perf_counter() - start, 1)
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return {**json.loads(line[len(RESULT_TAG):]), "seconds": seconds}
    tail = (stderr.strip().splitlines() or ["no output"])[-1]
    return {"status": "kernel died", "seconds": seconds, "cell": None,
            "error": f"the execution process exited with code {proc.returncode}: {tail}"}


def _kill_group(proc):
    if os.name == "posix":
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    else:
        proc.kill()


def classify(exc):
    """Status, failing cell and one-line error of an exception raised by papermill / nbclient."""
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    if isinstance(exc, pm.PapermillExecutionError):
        status = "missing package" if exc.ename == "ModuleNotFoundError" else "error"
        return status, exc.cell_index, f"{exc.ename}: {exc.evalue}"
    if isinstance(exc, DeadKernelError):
        return "kernel died", None, f"the kernel died: {exc}".strip()
    if isinstance(exc, CellTimeoutError):
        return "timeout", None, str(exc).splitlines()[0]
    return "error", None, f"{type(exc).__name__}: {exc}".splitlines()[0]


def _run_job(job):
    import nbformat
    import papermill as pm

    from ..run.kernel import headless_kernel, kernel_name
    from .audit import START_UP

    try:
        nbformat.read(job["notebook"], as_version=4)
    except Exception as exc:  # not JSON, or not a notebook
        return {"status": "invalid notebook", "cell": None, "error": f"not a readable notebook: {exc}".splitlines()[0]}
    name = kernel_name()
    try:
        with headless_kernel(name) as km:
            pm.execute_notebook(job["notebook"], job["out"], parameters=job["parameters"],
                                cwd=str(Path(job["notebook"]).parent), kernel_name=name, km=km, language="python",
                                progress_bar=False, log_output=False,
                                extra_arguments=[f"--IPKernelApp.exec_lines={START_UP}"])
    except Exception as exc:
        status, cell, error = classify(exc)
        return {"status": status, "cell": cell, "error": error}
    return {"status": "ok", "cell": None, "error": ""}


if __name__ == "__main__":
    print(RESULT_TAG + json.dumps(_run_job(json.loads(sys.argv[1]))), flush=True)
