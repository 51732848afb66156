"""``python -m encoding_kit grade SUBMISSIONS_DIR``: execute a whole class's notebooks and write a gradebook.

Every submission (a student's folder, or a loose notebook) is copied into the
grading folder when grading begins, and each of its notebooks is executed in
a private sandbox (its own working copy, a read-only copy of the course data,
its own results folder; ``sandbox.py``) with ``QUICK`` and ``DATA_DIR``
injected and a time limit; the kernel and everything it started are killed
before its row is written (``processes.py``), and the status is read from the
executed copy, never from what the notebook prints (``execute.py``). The
students' files and the course data are never given to a notebook; they are
checked and repaired after each one (``guard.py``). ``isolation="bwrap"`` adds
a bubblewrap sandbox (``isolation.py``). Submissions run in parallel threads on
this machine (``jobs``) or as tasks on a Dask cluster (``scheduler``). Ctrl-C
stops cleanly (the gradebook of what finished); twice, at once. See
``docs/grading.md`` for the threat model.
"""

from ..core.lazy import lazy_attribute

NAMES = {"grade": "session", "GradingInterrupted": "session", "GradeSettings": "submission", "grade_submission": "submission",
         "Submission": "discover", "discover_submissions": "discover"}
__all__ = sorted(NAMES)


__getattr__ = lazy_attribute(__name__, NAMES)
