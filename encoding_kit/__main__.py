"""Command line: ``python -m encoding_kit {run,demo,fetch}``."""

from __future__ import annotations

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m encoding_kit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute assignment.ipynb and notebooks/NN_*.ipynb headless")
    run.add_argument("--quick", action="store_true", help="small model lists and subsets (QUICK=True)")
    run.add_argument("--data-dir", help="data folder (default: $KIT_DATA_DIR or data/)")
    run.add_argument("--only", nargs="*", help="run only notebooks whose name contains one of these")
    demo = sub.add_parser("demo", help="write the offline demo dataset")
    demo.add_argument("--data-dir")
    demo.add_argument("--subjects", type=int, default=25)
    demo.add_argument("--trs", type=int, default=2249)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--overwrite", action="store_true", help="replace an existing demo (never real data)")
    fetch = sub.add_parser("fetch", help="download the public course files (audio, alignment)")
    fetch.add_argument("--data-dir")
    fetch.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except (ValueError, TypeError, OSError) as exc:  # bad arguments or files: one sentence, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _dispatch(args):
    if args.command == "run":
        from .runner import NotebookFailed, run_all

        try:
            run_all(quick=args.quick, data_dir=args.data_dir, only=args.only)
        except NotebookFailed as exc:
            print(f"\nSTOPPED: {exc}", file=sys.stderr)
            return 1
    elif args.command == "demo":
        from .demo import make_demo_dataset

        out = make_demo_dataset(args.data_dir, args.subjects, args.trs, args.seed, overwrite=args.overwrite)
        print(f"Demo dataset written to {out}")
    else:
        from .fetch import fetch as fetch_files

        fetch_files(args.data_dir, overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
