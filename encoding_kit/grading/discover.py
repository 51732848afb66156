"""Find the submissions in a class folder: one per student folder, or one per loose notebook.

A submission is a folder that holds notebooks (``*.ipynb``, anywhere below it)
directly under the class folder or under a section folder that itself holds no
notebook (``class/section1/alice/``), or a notebook lying loose in the class
folder. Its id is its path relative to the class folder, so two students both
named ``alice`` in two sections stay apart (a console line says so).

Each submission gets a grading folder name (:func:`folder_names`): its id in
Unicode NFC with the characters a file system refuses or a shell mangles
replaced by ``_`` (letters of any script are kept: ``张三`` stays ``张三``), and a
short hash of the original relative path appended whenever two names would
meet, compared case-insensitively (``Anne Marie`` / ``Anne_Marie``, ``Bob`` /
``bob`` on a case-insensitive disk). The same class always gives the same names.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

SKIP_PARTS = {".ipynb_checkpoints", "__pycache__", ".git"}
UNSAFE = re.compile(r"[^\w.\-]+")  # \w is Unicode-aware: letters and digits of every script stay
MAX_NAME = 60  # characters kept from the name (a file name may hold 255 bytes; CJK takes 3 each)


@dataclass(frozen=True)
class Submission:
    """One student's work.

    Attributes
    ----------
    id : str
        Path relative to the class folder (``"alice"``, ``"section1/alice"``, ``"bob.ipynb"``), as the
        file system spells it: the gradebook shows it.
    source : pathlib.Path
        The student's folder, or the loose notebook file (never written to).
    notebooks : tuple of str
        Notebook paths relative to ``source`` (``assignment.ipynb`` first, then sorted); for a loose
        notebook, its file name.
    folder_name : str
        Its grading folder under ``--out`` (unique in the class, see :func:`folder_names`).
    """

    id: str
    source: Path
    notebooks: tuple
    folder_name: str = ""


def safe_name(relative):
    """The readable part of a grading folder name: NFC, ``/`` -> ``__``, unsafe characters -> ``_``."""
    text = unicodedata.normalize("NFC", relative).replace("/", "__")
    text = UNSAFE.sub("_", text).strip("._") or "_"
    return text[:MAX_NAME]


def short_hash(relative):
    """8 hex digits of the SHA-1 of the original relative path (its bytes as the file system gave them)."""
    return hashlib.sha1(relative.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def folder_names(ids):
    """{id: unique folder name}: :func:`safe_name`, plus ``-<short hash>`` for every name that meets another.

    Names are compared after ``casefold`` (a case-insensitive disk), and a name cut to
    :data:`MAX_NAME` characters always gets its hash.
    """
    safe = {i: safe_name(i) for i in ids}
    count = Counter(name.casefold() for name in safe.values())
    names = {}
    for i, name in safe.items():
        long = len(unicodedata.normalize("NFC", i).replace("/", "__")) > MAX_NAME
        names[i] = f"{name}-{short_hash(i)}" if count[name.casefold()] > 1 or long else name
    return names


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
    names = folder_names([sub.id for sub in found])
    return sorted((replace(sub, folder_name=names[sub.id]) for sub in found), key=lambda s: s.id), problems
