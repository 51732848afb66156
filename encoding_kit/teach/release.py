"""``python -m encoding_kit release --out DIR [--with-solutions]``: the student kit, built with otter-grader.

The kit's tracked files (``git ls-files``: what a clean clone holds) are copied, except the TAs' hidden
tests and this package's own tests; each notebook with exercise markers (``markers.py``) becomes an
otter-grader master notebook, and ``otter assign`` writes the student version (solution regions replaced
by a ``NotImplementedError`` with the hint); outputs are cleared and the jupytext pair written. The
student README replaces the kit's; ``.student-release`` lists the tests that need the solutions, which
``tests/conftest.py`` skips with that reason. ``--with-solutions`` adds ``solutions/`` (the notebooks as
they are here).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from .markers import master_notebook, scan_source

ROOT = Path(__file__).resolve().parents[2]
LEFT_OUT = ("encoding_kit/teach/hidden.py", "encoding_kit/teach/rubric.yaml", "tests/test_teach.py",
            "tests/test_teach_grading.py", ".ci/")
"""The TAs' side: hidden tests, the rubric, the tests that plant mistakes in the solutions."""
NEEDS_SOLUTIONS = {
    "test_notebooks.py": "runs the notebooks, whose exercises are yours to write (run them: make quick)",
    "test_readme_commands.py": "checks the kit's own README and runs the TA guide's commands on the solution notebooks "
                               "(this README is the students')",
    "test_browser.py": "renders the executed notebooks of a full run (they stop at your first open exercise)",
}
"""{test file or node id: why the student release skips it}."""


class ReleaseExists(ValueError):
    """The release folder exists: never written into."""


def sources(root=ROOT):
    """The notebooks' jupytext sources: ``assignment.py`` and ``notebooks/NN_*.py``."""
    root = Path(root)
    return [root / "assignment.py", *sorted((root / "notebooks").glob("[0-9][0-9]_*.py"))]


def tracked_files(root=ROOT):
    """The files of a clean clone (``git ls-files``); without git, every file outside hidden and build folders."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
        return [name for name in out.decode().split("\0") if name and (Path(root) / name).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "results", "features", "__pycache__", "_build"}
        return [str(p.relative_to(root)) for p in Path(root).rglob("*")
                if p.is_file() and not skip & set(p.relative_to(root).parts)]


def student_notebook(source, workdir):
    """The student notebook of one jupytext source (otter assign on its master notebook); (notebook, exercises)."""
    import jupytext
    import nbformat
    from otter.assign import main as otter_assign

    master, exercises = master_notebook(source)
    original = jupytext.read(source)
    if not exercises:
        return original, []
    folder = Path(workdir) / source.stem
    folder.mkdir(parents=True)
    nbformat.write(master, folder / f"{source.stem}.ipynb")
    otter_assign(str(folder / f"{source.stem}.ipynb"), str(folder / "dist"), no_pdfs=True, no_run_tests=True)
    nb = nbformat.read(folder / "dist" / "student" / f"{source.stem}.ipynb", as_version=4)
    for cell in nb.cells:
        tags = [t for t in cell.metadata.get("tags", []) if not t.startswith("otter")]
        cell.metadata = {k: v for k, v in cell.metadata.items() if k not in ("tags", "deletable", "editable", "otter")}
        if tags:
            cell.metadata["tags"] = tags
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata = original.metadata
    return nb, exercises


def release(out, with_solutions=False, root=ROOT):
    """Write the student kit into ``out`` (a new folder); return {notebook: its exercise names}.

    Raises
    ------
    ReleaseExists
        ``out`` exists.
    MarkerError
        A marker is left unclosed or malformed (one line naming the file and line); nothing is written.
    """
    import jupytext

    root, out = Path(root), Path(out)
    if out.exists():
        raise ReleaseExists(f"--out {out}: the folder exists; the release is written into a new folder only")
    for source in sources(root):
        scan_source(source)  # every marker checked before anything is written
    made = {}
    with tempfile.TemporaryDirectory(prefix="kit-release-") as work:
        stage = Path(work) / "kit"
        for name in tracked_files(root):
            if not any(name == x or (x.endswith("/") and name.startswith(x)) for x in LEFT_OUT):
                (stage / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / name, stage / name)
        for source in sources(root):
            nb, exercises = student_notebook(source, Path(work) / "otter")
            rel = source.relative_to(root)
            jupytext.write(nb, stage / rel.with_suffix(".ipynb"))
            jupytext.write(nb, stage / rel, fmt="py:percent")
            made[str(rel.with_suffix(".ipynb"))] = [e.name for e in exercises]
            if with_solutions:
                (stage / "solutions" / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / rel.with_suffix(".ipynb"), stage / "solutions" / rel.with_suffix(".ipynb"))
        (stage / "README.md").write_text(student_readme(made), encoding="utf-8")
        (stage / ".student-release").write_text(json.dumps(NEEDS_SOLUTIONS, indent=1) + "\n", encoding="utf-8")
        shutil.copytree(stage, out)  # the whole kit appears at once, or not at all when the staging failed
    return made


def student_readme(made):
    """The student README: what to do, the exercises per notebook, how to check them."""
    rows = "\n".join(f"| `{nb}` | {', '.join(f'`{e}`' for e in ex) or '(read and run)'} |" for nb, ex in made.items())
    return f"""# Encoding models of a story: the assignment

You build on a sample pipeline: voxelwise (ROI-wise) encoding models of fMRI responses to a spoken story.
The package `encoding_kit/` (imported through `utils.py`) is complete; your work is in the notebooks, where each
exercise is a cell that raises `NotImplementedError` with a hint and the expected shape of the result.

## Set up and run

```bash
make lab    # installs everything into .venv, then opens JupyterLab
make test   # the kit's tests (those that need the solutions are skipped, with the reason)
```

The course data: see `data/README.md` (without it, the notebooks run on an offline demo dataset with planted truth).

## Exercises

| notebook | exercises |
| --- | --- |
{rows}

After each exercise, run the cell with `utils.check("NAME", out=out, ...)`: it tests your objects' shapes, time
base, causality and NaNs, prints PASS or FAIL with what it found, and records the result for grading. The grader
re-runs your notebooks and also runs hidden tests on what your checks recorded; `docs/student_guide.md` has more.
"""
