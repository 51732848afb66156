"""Find the submissions in a class folder: one per student folder, or one per loose notebook.

A submission is a folder that holds notebooks (``*.ipynb``, anywhere below it)
directly under the class folder or under a section folder that itself holds no
notebook (``class/section1/alice/``), or a notebook lying loose in the class
folder. Its id is its path relative to the class folder, so two students both
named ``alice`` in two sections stay apart (a console line says so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SKIP_PARTS = {".ipynb_checkpoints", "__pycache__", ".git"}


@dataclass(frozen=True)
class Submission:
    """One student's work.

    Attributes
    ----------
    id : str
        Path relative to the class folder (``"alice"``, ``"section1/alice"``, ``"bob.ipynb"``).
    source : pathlib.Path
        The student's folder, or the loose notebook file (never written to).
    notebooks : tuple of str
        Notebook paths relative to ``source`` (``assignment.ipynb`` first, then sorted); for a loose
        notebook, its file name.
    """

    id: str
    source: Path
    notebooks: tuple

    @property
    def folder_name(self):
        """A file-system-safe name for the submission's output folder."""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.id.replace("/", "__"))


def _notebooks_in(folder):
    found = [p for p in folder.rglob("*.ipynb") if not SKIP_PARTS.intersection(p.relative_to(folder).parts)]
    names = sorted(str(p.relative_to(folder)) for p in found)
    return tuple(sorted(names, key=lambda n: (Path(n).name != "assignment.ipynb", n)))


def _collect(folder, root, found, depth):
    for entry in sorted(folder.iterdir()):
        if entry.name in SKIP_PARTS or entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".ipynb" and folder == root:
            found.append(Submission(entry.name, entry, (entry.name,)))
        elif entry.is_dir():
            direct = [p for p in entry.iterdir() if p.suffix == ".ipynb"]
            nested = _notebooks_in(entry)
            if direct or (nested and depth >= 1):
                found.append(Submission(str(entry.relative_to(root).as_posix()), entry, nested))
            elif nested:  # a section folder (no notebook of its own): its subfolders are the students
                _collect(entry, root, found, depth + 1)


def discover_submissions(root):
    """Every submission under ``root``, and one line per problem found.

    Parameters
    ----------
    root : str or Path
        The class folder.

    Returns
    -------
    (list of Submission, list of str)
        Submissions sorted by id; messages (empty folder, duplicate names), one line each.
    """
    root = Path(root)
    if not root.is_dir():
        return [], [f"{root}: not a folder (expected a folder with one subfolder or notebook per student)"]
    found = []
    _collect(root, root, found, 0)
    problems = []
    if not found:
        problems.append(f"{root}: no notebooks found (expected one folder per student with .ipynb files, "
                        "or .ipynb files directly in it)")
    by_name = {}
    for sub in found:
        by_name.setdefault(Path(sub.id).stem.lower(), []).append(sub.id)
    for name, ids in sorted(by_name.items()):
        if len(ids) > 1:
            problems.append(f"{len(ids)} submissions are named {name!r} ({', '.join(ids)}): "
                            "the gradebook names each by its path")
    return sorted(found, key=lambda s: s.id), problems
