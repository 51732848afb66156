"""Putting a finished demo in place without replacing anything it did not write.

The demo is generated in a staging folder inside the data folder, under the
folder's lock (:data:`DEMO_LOCK`), and moved into place only after a second
check: a course file that appeared during generation is never replaced.
"""

from __future__ import annotations

import os

from ..core.storage import file_sha1, place_new
from ..data import course_files as _data

DEMO_LOCK = ".demo.lock"
"""Lock file in the data folder, held while a demo is generated there (one generator at a time per folder)."""


def move_into_place(staging, out, ours):
    """Move the finished files from ``staging`` into ``out``: the truth (with the hashes) first, then the data.

    Checked again at this moment, and per file: a course file that appeared
    in ``out`` while the demo was generated (copied in by hand, another
    program) is never replaced; the demo then stops, says which file, and
    removes what it had placed.

    Parameters
    ----------
    staging, out : Path
    ours : dict {file name: SHA-1}
        The old demo's files found before generating; only these bytes may be replaced.
    """
    foreign = [name for name in _data.COURSE_FILES
               if (out / name).exists() and ours.get(name) != file_sha1(out / name)]
    if foreign:
        raise FileExistsError(_appeared(out, foreign))
    for name in ours:            # an old demo being replaced: its files go first, so none is left
        (out / name).unlink()    # beside a truth file that does not describe it
    os.replace(staging / _data.TRUTH_FILE, out / _data.TRUTH_FILE)  # the generator's own file
    placed = [_data.TRUTH_FILE]
    try:
        for name in _data.COURSE_FILES:
            place_new(staging / name, out / name)
            placed.append(name)
    except FileExistsError:
        for done in placed:
            (out / done).unlink(missing_ok=True)
        raise FileExistsError(_appeared(out, [name])) from None
    staging.rmdir()


def _appeared(out, names):
    return (f"{out}: {', '.join(names)} appeared there while the demo was being generated (not written by the "
            "demo generator); it was left as it is and the demo was not written. Generate the demo in another "
            "folder (--data-dir / out_dir=), or remove that file if it is not course data.")


class DemoExists(FileExistsError):
    """A demo is already in the folder and ``overwrite`` was not given (the command line says ``--overwrite``)."""

    def __init__(self, folder):
        super().__init__(f"{folder}: a demo dataset is already there; pass overwrite=True to replace it")
        self.folder = folder

