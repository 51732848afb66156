"""Command line: ``python -m encoding_kit {run,grade,release,rubric,demo,fetch,kernel}``."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m encoding_kit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute assignment.ipynb and notebooks/NN_*.ipynb headless")
    run.add_argument("--quick", action="store_true", help="small model lists and subsets (QUICK=True)")
    run.add_argument("--data-dir", help="data folder (default: $KIT_DATA_DIR or data/)")
    run.add_argument("--only", nargs="*", help="run only notebooks whose name contains one of these")
    run.add_argument("--profile", default="full", choices=["full", "laptop"],
                     help="full: every notebook's defaults; laptop: about 1 h on a laptop CPU with the real data "
                          "(prints what it leaves out and the estimated time first)")
    run.add_argument("--jobs", type=int, default=None,
                     help="notebooks run at once, each kernel on its share of the cores (default: one per core, at "
                          "most 4; 1: one after the other)")
    run.add_argument("--no-trims", dest="trims", action="store_false",
                     help="on the demo, run every setting (by default a full demo run leaves out the settings it "
                          "prints in one line)")
    grade = sub.add_parser("grade", help="execute every student's notebooks and write a gradebook (CSV + HTML)")
    grade.add_argument("submissions", help="class folder: one folder per student, or loose .ipynb files")
    grade.add_argument("--out", default="grading", help="grading folder (default: grading/)")
    grade.add_argument("--data-dir", help="course data (default: $KIT_DATA_DIR or data/)")
    grade.add_argument("--quick", action="store_true", help="inject QUICK=True (default: QUICK=False, full runs)")
    grade.add_argument("--timeout", type=float, default=1800, help="seconds per notebook (default 1800)")
    grade.add_argument("--jobs", type=int, default=1, help="submissions run at once on this machine")
    grade.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786): run on that cluster")
    grade.add_argument("--reproduce", type=float, metavar="TOLERANCE",
                       help="compare the numbers in the students' saved outputs with the re-run (e.g. 0.01)")
    grade.add_argument("--isolation", default="none", choices=["none", "bwrap"],
                       help="none: each notebook in its own sandbox folder with a read-only copy of the data; bwrap: "
                            "also in a bubblewrap sandbox (read-only file system, own PID namespace; see "
                            "docs/grading.md)")
    grade.add_argument("--rubric", help="score the course rubric from this YAML file (the kit's: "
                                        "encoding_kit/teach/rubric.yaml) -> rubric.csv, rubric.html, lms.csv")
    release = sub.add_parser("release", help="write the student kit: notebooks with exercises (otter-grader), "
                                             "public checks, a student README")
    release.add_argument("--out", required=True, help="a new folder for the student kit (never an existing one)")
    release.add_argument("--with-solutions", action="store_true",
                         help="also copy the solution notebooks into solutions/ (a TA's copy)")
    rubric = sub.add_parser("rubric", help="write the course rubric to edit (--out FILE) or check one (--check FILE)")
    what = rubric.add_mutually_exclusive_group(required=True)
    what.add_argument("--out", help="write a copy of the kit's rubric (encoding_kit/teach/rubric.yaml) to this new file")
    what.add_argument("--check", help="check a rubric file and print its items")
    demo = sub.add_parser("demo", help="write the offline demo dataset")
    demo.add_argument("--data-dir")
    demo.add_argument("--subjects", type=int, default=25)
    demo.add_argument("--trs", type=int, default=2249)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--overwrite", action="store_true", help="replace an existing demo (never real data)")
    fetch = sub.add_parser("fetch", help="download the public course files (audio, alignment), or with --models "
                                         "every checkpoint the notebooks name")
    fetch.add_argument("--data-dir")
    fetch.add_argument("--models", action="store_true",
                       help="download the notebooks' model checkpoints into the Hugging Face cache (sizes first)")
    fetch.add_argument("--overwrite", action="store_true")
    kernel = sub.add_parser("kernel", help="install the Jupyter kernel 'encoding-kit' into this environment")
    kernel.add_argument("--prefix", help="install under PREFIX/share/jupyter/kernels (default: sys.prefix)")
    args = parser.parse_args(argv)
    try:
        check_arguments(args)
        return _dispatch(args)
    except (ValueError, TypeError, OSError) as exc:  # bad arguments or files: one sentence, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


def check_arguments(args):
    """Refuse bad command-line values before any work, naming the flag, what it expects and what it found.

    Raises
    ------
    ValueError
    """
    if args.command == "run" and args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs must be an integer >= 1 (notebooks run at once), found {args.jobs}")
    if args.command == "demo" and args.seed < 0:
        raise ValueError(f"--seed must be an integer >= 0, found {args.seed}")
    if args.command != "grade":
        return
    if args.rubric is not None:
        from .teach.rubric import load_rubric

        load_rubric(args.rubric)  # a bad rubric stops before any notebook runs
    for flag, value, what in (("--timeout", args.timeout, "seconds per notebook"),
                              ("--reproduce", args.reproduce, "a relative tolerance, e.g. 0.01")):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{flag} must be a finite number > 0 ({what}), found {value:g}")
    if args.jobs < 1:
        raise ValueError(f"--jobs must be an integer >= 1, found {args.jobs}")
    _check_grading_folder(Path(args.out), Path(args.submissions), args.data_dir)


def _check_grading_folder(out, submissions, data_dir):
    """``--out`` must be apart from the class folder and the data folder (neither equal, inside nor around them)."""
    from .data import course_files as _data

    out = out.resolve()
    for flag, folder in (("the class folder", submissions), ("--data-dir", _data.data_dir(data_dir))):
        folder = Path(folder).resolve()
        if out == folder or folder in out.parents or out in folder.parents:
            relation = "is" if out == folder else "is inside" if folder in out.parents else "contains"
            raise ValueError(f"--out {out} {relation} {flag} {folder}; the grading folder must be a separate "
                             "folder (an earlier one is moved aside), e.g. --out grading")


def _dispatch(args):
    if args.command == "run":
        from .run.runner import NotebookFailed, run_all

        try:
            run_all(quick=args.quick, data_dir=args.data_dir, only=args.only, profile=args.profile,
                    jobs=args.jobs, trims=args.trims)
        except NotebookFailed as exc:
            print(f"\nSTOPPED: {exc}", file=sys.stderr)
            return 1
    elif args.command == "grade":
        from .grading import GradingInterrupted
        from .grading import grade as grade_class

        try:
            table = grade_class(args.submissions, out_dir=args.out, data_dir=args.data_dir, quick=args.quick,
                                timeout=args.timeout, jobs=args.jobs, scheduler=args.scheduler,
                                tolerance=args.reproduce, isolation=args.isolation, rubric=args.rubric)
        except GradingInterrupted as exc:  # Ctrl-C: the gradebook of what finished is written; one line
            print(exc, file=sys.stderr)
            return 130
        if table.empty:
            return 1  # nothing was graded (the line above says why)
    elif args.command == "release":
        from .teach.release import release

        made = release(args.out, with_solutions=args.with_solutions)
        print(f"Student kit written to {args.out}: " + "; ".join(f"{nb}: {len(ex)} exercise(s)" for nb, ex in made.items()))
    elif args.command == "rubric":
        from .teach.rubric import copy_rubric, load_rubric

        if args.out:
            print(f"Rubric written to {copy_rubric(args.out)}: edit it, then pass it to grade with --rubric")
        else:
            for item in load_rubric(args.check)["items"]:
                print(f"{item['id']}: {item['points']} points, check {item['check']}")
    elif args.command == "kernel":
        from .run.kernel import install_kernel

        print(f"Jupyter kernel installed: {install_kernel(args.prefix)}")
    elif args.command == "demo":
        from .demo.generate import DemoExists, make_demo_dataset

        try:
            out = make_demo_dataset(args.data_dir, args.subjects, args.trs, args.seed, overwrite=args.overwrite)
        except DemoExists as exc:
            print(f"error: {exc.folder}: a demo dataset is already there; add --overwrite to replace it "
                  "(real course files are never replaced)", file=sys.stderr)
            return 2
        print(f"Demo dataset written to {out}")
    elif args.models:
        from .features.fetch_models import fetch_models

        status = fetch_models()
        if any(state not in ("cached", "downloaded") for state in status.values()):
            return 1
    else:
        from .data.fetch import fetch as fetch_files

        fetch_files(args.data_dir, overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
