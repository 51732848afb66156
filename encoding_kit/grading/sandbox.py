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

import errno
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


def copy_tree(source, target, skip=(), follow_links=False):
    """Copy ``source`` (a folder, or one file) to ``target`` without hard links.

    Symbolic links are never followed (unless ``follow_links``, for the course
    data, which the notebook gets as a read-only copy): a link to a place
    inside ``source`` is copied as a relative link to the same place in the
    copy; one that leads outside it (``/etc/passwd``, another student's
    folder, a big data folder), a broken link and a link loop are left out,
    each named in one printed line.

    ``skip``: absolute folders left out (a grading folder inside the class folder, say).
    """
    source, target = Path(source), Path(target)
    skip = {str(Path(s).resolve()) for s in skip}
    if source.is_file():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / source.name)
        return target
    kept = {}

    def ignore(folder, names):
        left_out = [n for n in names if n == ".ipynb_checkpoints" or os.path.realpath(Path(folder, n)) in skip]
        if not follow_links:
            for name in names:
                link = _link_inside(Path(folder, name), source.resolve())
                if link is False:
                    left_out.append(name)
                elif link is not None:
                    kept[Path(folder, name).relative_to(source)] = link
        return left_out

    shutil.copytree(source, target, ignore=ignore, dirs_exist_ok=True, symlinks=not follow_links)
    for rel, link in kept.items():  # the same place, written relative (an absolute link would lead back to the original)
        (target / rel).unlink()
        (target / rel).symlink_to(link)
    return target


def _link_inside(path, root):
    """For a symbolic link under ``root``: its target relative to its folder when inside ``root``, else False
    (printed: outside, broken or a loop); None for anything that is not a link."""
    if not path.is_symlink():
        return None
    try:
        resolved = path.resolve(strict=True)
        if resolved == root or root in resolved.parents:
            return os.path.relpath(resolved, path.parent.resolve())
        why = f"leads outside the submission, to {resolved}"
    except (OSError, RuntimeError) as exc:  # broken, or a loop (ELOOP; RuntimeError before Python 3.13)
        loop = isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP
        why = "is a symbolic-link loop" if loop else "is a broken symbolic link"
    print(f"{path}: {why}; not copied (links are never followed)", flush=True)
    return False


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
            copy_tree(data_dir, self.data, skip=skip, follow_links=True)
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
