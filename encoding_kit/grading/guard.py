"""The class folder and the course data as they were when grading began: checked, repaired and quarantined.

No notebook is given the path of either (each runs in its own sandbox with
its own copies), so only a notebook that goes looking for them can reach them.
After every notebook the grader compares both folders with their state at the
start: a file created there is moved into that notebook's grading folder
(``quarantine/``), a file changed or deleted is put back from the grader's own
copy (the submissions copied at the start, the read-only copy of the data),
and the notebook is charged with it. With several notebooks at once, a change
is charged to the notebook whose kernel logged the write (``audit.py``, which
is given the folders as salted hashes, not their paths); a change no notebook
logged (a program it started, say) is listed at the top of the gradebook.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from .sandbox import differences, fingerprint


class Originals:
    """Watch folders, each with a pristine copy to repair it from.

    Parameters
    ----------
    folders : dict
        ``{label: (folder, {relative path: pristine file})}``.
    skip : iterable of Path
        Folders inside them never watched (the grading folder).
    spare : Path, optional
        Where files created there go when no notebook is charged (default: a ``quarantine`` folder beside none).
    """

    def __init__(self, folders, skip=(), spare=None):
        self.folders = {label: (Path(folder), pristine) for label, (folder, pristine) in folders.items()}
        self.skip = [Path(s) for s in skip]
        self.state = {label: fingerprint(folder, self.skip) for label, (folder, _) in self.folders.items()}
        self.lock = threading.Lock()
        self.pending, self.handled = {}, {}
        self.spare = Path(spare) if spare else Path("quarantine")

    def check(self, quarantine, logged=(), alone=True):
        """Repair every folder, move created files into ``quarantine``; return what this notebook is charged with.

        Parameters
        ----------
        quarantine : Path
            The notebook's ``quarantine/`` folder.
        logged : iterable of str
            Real paths its audit log lists.
        alone : bool
            True when no other notebook ran beside it: every change found is its own.

        Returns
        -------
        list of str
            One phrase per path (``"deleted /class/bob/x.txt (restored)"``).
        """
        logged = set(logged)
        with self.lock:
            found = self._repair_all(quarantine)
            charged = []
            for path, phrase in found.items():
                if alone or path in logged:
                    charged.append(phrase)
                else:
                    self.pending[path] = phrase
            for path in sorted(logged - set(found)):
                if path in self.pending:
                    charged.append(self.pending.pop(path))
                elif path in self.handled:
                    charged.append(self.handled[path])
            return charged

    def unclaimed(self):
        """Changes found while several notebooks ran that no notebook's log claimed (already repaired)."""
        with self.lock:
            self._repair_all(None)
            return sorted(set(self.pending.values()))

    def _repair_all(self, quarantine):
        found = {}
        for label, (folder, pristine) in self.folders.items():
            created, changed, deleted = differences(self.state[label], fingerprint(folder, self.skip))
            for rel in created:
                path = folder / rel
                if path.is_file() or path.is_symlink():
                    target = Path(quarantine or self.spare) / label / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(path), target)
                    found[str(path)] = f"created {path} (moved to {target})"
            for rel in sorted((p for p in created if (folder / p).is_dir()), reverse=True):
                shutil.rmtree(folder / rel, ignore_errors=True)
            for rel in changed + deleted:
                what = "deleted" if rel in deleted else "changed"
                found[str(folder / rel)] = self._repair(label, folder, pristine, rel, what)
        self.handled.update(found)
        return found

    def _repair(self, label, folder, pristine, rel, what):
        path, size_mtime_mode = folder / rel, self.state[label][rel]
        source = pristine.get(rel)
        if source is None or not Path(source).exists():
            if path.is_dir() or not path.exists() and rel not in pristine:
                path.mkdir(parents=True, exist_ok=True)
                os.chmod(path, size_mtime_mode[2])
                return f"{what} {path} (folder put back)"
            return f"{what} {path} (no copy to restore it from)"
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            os.chmod(path, 0o644)
            path.unlink()
        shutil.copy2(source, path)
        os.chmod(path, size_mtime_mode[2])
        return f"{what} {path} (restored)"


def pristine_files(folder):
    """{relative path: file} of every file under a copy (to repair from)."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
