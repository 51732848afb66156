"""Where a graded notebook runs: a private folder with its own copy of the submission and of the course data.

Layout of one submission's sandbox (a fresh ``kit-grade-*`` temporary folder,
mode 0700, outside the class folder and the grading folder, so no relative path
leads to another student or to the originals)::

    work/      a copy of the submission (the notebook's working folder)
    data/      a read-only copy of the course data (``DATA_DIR``): files 0444, folders 0555
    results/   ``KIT_RESULTS_DIR``: what the notebooks save
    .grader/   the executed copies, written by the grader's execution process after the kernel is dead

The data view is a *copy*, not hard links (a hard link shares the file: a
``chmod`` or a write through it would reach the course folder) and not the
course folder itself: whatever a notebook does to its copy, deliberately or
not, the course data and the other students' copies stay as they were. The
copy is compared with its fingerprint after the submission (a change is
reported and created files are quarantined). With ``--isolation bwrap`` the
same copy is also mounted read-only, so writes fail (``EROFS``) even as root.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

DIR_MODE, FILE_MODE = 0o555, 0o444


def fingerprint(root, skip=()):
    """{relative path: (size, mtime_ns, mode, links)} of every file and folder under ``root`` (missing: empty).

    ``skip``: absolute folders inside ``root`` left out (the grading folder inside the data folder, say).
    """
    root = Path(root)
    skip = [str(Path(s).resolve()) for s in skip]
    state = {}
    if not root.is_dir():
        return state
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if str(Path(folder, d).resolve()) not in skip]
        for name in [*dirs, *files]:
            path = Path(folder, name)
            try:
                info = path.lstat()
            except OSError:
                continue
            folder_entry = stat.S_ISDIR(info.st_mode)  # a folder: only its mode (its size, time, links follow its files)
            state[path.relative_to(root).as_posix()] = ((0, 0, stat.S_IMODE(info.st_mode), 0) if folder_entry else
                                                        (info.st_size, info.st_mtime_ns, stat.S_IMODE(info.st_mode),
                                                         info.st_nlink))
    return state


def differences(before, after):
    """(created, changed, deleted): sorted relative paths between two :func:`fingerprint` s."""
    created = sorted(set(after) - set(before))
    deleted = sorted(set(before) - set(after))
    changed = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    return created, changed, deleted


def copy_tree(source, target, skip=()):
    """Copy ``source`` (a folder, or one file) to ``target`` without hard links; symlinks are copied as files.

    ``skip``: absolute folders left out (a grading folder inside the class folder, say).
    """
    source, target = Path(source), Path(target)
    skip = {str(Path(s).resolve()) for s in skip}
    if source.is_file():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / source.name)
        return target

    def ignore(folder, names):
        return [n for n in names if n == ".ipynb_checkpoints" or str(Path(folder, n).resolve()) in skip]

    shutil.copytree(source, target, ignore=ignore, dirs_exist_ok=True)
    return target


def make_read_only(root):
    """Files 0444 and folders 0555 under ``root`` (``root`` included)."""
    for folder, dirs, files in os.walk(root):
        for name in files:
            os.chmod(Path(folder, name), FILE_MODE)
        for name in dirs:
            os.chmod(Path(folder, name), DIR_MODE)
    os.chmod(root, DIR_MODE)


def make_writable(root):
    """Undo :func:`make_read_only` (to delete or replace the copy)."""
    root = Path(root)
    if not root.exists():
        return
    os.chmod(root, 0o755)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(Path(folder, name), 0o755)
        for name in files:
            os.chmod(Path(folder, name), 0o644)


class Sandbox:
    """One submission's private folder (see the module docstring).

    Parameters
    ----------
    submitted : Path
        The grader's copy of the submission (a folder).
    data_dir : Path
        The course data folder to copy read-only.
    skip : iterable of Path
        Folders never copied (the grading folder, the class folder when they lie inside the data folder).
    """

    def __init__(self, submitted, data_dir, skip=()):
        self.root = Path(tempfile.mkdtemp(prefix="kit-grade-")).resolve()
        self.work, self.data = self.root / "work", self.root / "data"
        self.results, self.private = self.root / "results", self.root / ".grader"
        copy_tree(submitted, self.work)
        self.data.mkdir()
        if Path(data_dir).is_dir():
            copy_tree(data_dir, self.data, skip=skip)
        make_read_only(self.data)
        self.data_state = fingerprint(self.data)
        for folder in (self.results, self.private):
            folder.mkdir()

    def data_changes(self):
        """(created, changed, deleted) files of the data copy since it was made (relative paths)."""
        return differences(self.data_state, fingerprint(self.data))

    def quarantine_data(self, created, into):
        """Move files the notebook created in its data copy into ``into`` (its grading folder); return the paths."""
        make_writable(self.data)
        moved = []
        for rel in created:
            path = self.data / rel
            if path.is_file() or path.is_symlink():
                target = Path(into) / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(path), target)
                moved.append(target)
        return moved

    def close(self):
        """Delete the sandbox (its useful parts were copied out first)."""
        make_writable(self.data)
        shutil.rmtree(self.root, ignore_errors=True)
