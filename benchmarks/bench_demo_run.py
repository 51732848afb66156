"""The demo run as a new user makes it, timed per notebook from empty caches.

Runs ``python -m encoding_kit run`` (``make run``; ``--quick`` for ``make run
ARGS=--quick``) on a copy of the kit in a temporary folder, with an empty
feature/result cache (``$KIT_FEATURE_DIR``) and offline (``HF_HUB_OFFLINE=1``:
the demo's stand-ins), on the demo dataset: the one in ``--data-dir`` (or the
project's ``data/`` when it holds the demo), else a freshly generated one
(its generation time is recorded apart). The project's ``features/`` and
``results/`` are not touched.

Per notebook it records the wall time and, from the run log the kit writes
(:mod:`encoding_kit.core.run_log`), the seconds of feature extraction, ridge
fits and networks, how many of each were computed and how many the cache
answered. One JSON file (rows and the run's date, machine, CPU, cores,
precision, load average and host probe before and after, commit) and the same rows as CSV go
to ``benchmarks/results/demo_run-<full|quick>-<precision>.{json,csv}``;
``--render FILE`` prints a file's table as Markdown, which is how the docs
show it (never typed in by hand); ``--render-readme`` writes the README's run
times (between its ``<!-- run-times -->`` markers) from every
``benchmarks/results/demo_run-*.json`` (``tests/test_benchmarks.py`` checks
that the README says what the files hold). Other processes on the CPU inflate
every figure: read the load average with them, and compare runs by the
kernels' CPU seconds (``cpu_s``, with ``--jobs`` the notebooks overlap, so
their wall times add up to more than the command's). A virtual machine's
host slows it down unseen by the load average: the host probe
(``host_speed.py``, float32 GFLOP/s per core with every core busy, measured
before and after the run) says how fast the cores were; compare two runs'
times through the ratio of their probes.

    python benchmarks/bench_demo_run.py [--quick] [--jobs N] [--data-dir DIR] [--timeout MIN]
    ENCODING_KIT_PRECISION=float32 python benchmarks/bench_demo_run.py   # a CPU without native bf16
    python benchmarks/bench_demo_run.py --render benchmarks/results/demo_run-quick-float32.json
    python benchmarks/bench_demo_run.py --render-readme
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from encoding_kit.core.storage import atomic_write

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
MARKERS = ("<!-- run-times -->", "<!-- /run-times -->")
KIT_ITEMS = ("assignment.ipynb", "utils.py", "encoding_kit", "notebooks")
COLUMNS = ["notebook", "seconds", "cpu_s", "extraction_s", "extractions", "extraction_hits", "ridge_s", "ridge_fits",
           "ridge_hits", "networks_s", "network_fits", "network_hits", "extracted"]


def machine(kit=ROOT):
    """Date, host, CPU, cores, precision, commit of ``kit`` and load average of this run, dict."""
    from encoding_kit.run.profiles import machine_precision

    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    commit = _git(kit, "rev-parse", "HEAD")
    dirty = bool(_git(kit, "status", "--porcelain", "--untracked-files=no"))
    return {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "host": platform.node(),
            "cpu": cpu, "cores": os.cpu_count(), "precision": machine_precision(),
            "commit": commit + (" (with uncommitted changes)" if dirty else ""),
            "python": platform.python_version(), "load_before": [round(x, 2) for x in os.getloadavg()]}


@functools.cache
def host_speed():
    """The sibling module ``host_speed.py``, loaded once (this folder is not a package; the tests load this file by
    path)."""
    spec = importlib.util.spec_from_file_location("host_speed", Path(__file__).with_name("host_speed.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _probe_phrase(meta):
    """``", host probe X GFLOP/s per core before, Y after"`` of a run that measured it, else ``""``."""
    said = host_speed().describe(meta.get("probe_before"), meta.get("probe_after"))
    return f", {said}" if said else ""


def _read(path):
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _git(kit, *args):
    try:
        return subprocess.run(["git", *args], cwd=kit, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def demo_data(data_dir, scratch, n_subjects=25, n_trs=2249):
    """A demo dataset folder and the seconds spent generating it (0 when it existed).

    ``data_dir`` must hold the demo (course data are refused: this benchmark times the demo).
    """
    from encoding_kit.data.course_files import data_source

    if data_dir is None and data_source(ROOT / "data") == "demo":
        data_dir = ROOT / "data"
    if data_dir is not None:
        source = data_source(Path(data_dir))
        if source != "demo":
            raise SystemExit(f"--data-dir {data_dir}: expected the demo dataset, found {source} data")
        return Path(data_dir), 0.0
    from encoding_kit.demo.generate import make_demo_dataset

    start = time.perf_counter()
    folder = make_demo_dataset(scratch / "data", n_subjects=n_subjects, n_trs=n_trs)
    return Path(folder), round(time.perf_counter() - start, 1)


def run_kit(scratch, data, quick, timeout_min, only=None, source=ROOT, jobs=None):
    """Run the notebooks of a copy of the kit at ``source``; return (seconds, per-notebook table, log path)."""
    kit = scratch / "kit"
    kit.mkdir()
    for item in KIT_ITEMS:
        src = Path(source) / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, kit / item)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "KIT_FEATURE_DIR": str(scratch / "features"), "MPLBACKEND": "Agg",
           "PYTHONPATH": str(kit),  # the copy runs in the kernels, not an installed kit
           "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    env.pop("KIT_RESULTS_DIR", None)
    command = [sys.executable, "-m", "encoding_kit", "run", "--data-dir", str(data), *(["--quick"] if quick else []),
               *(["--only", *only] if only else []), *(["--jobs", str(jobs)] if jobs else [])]
    log = scratch / "run.log"
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run(command, cwd=kit, env=env, stdout=out, stderr=subprocess.STDOUT,
                              timeout=timeout_min * 60)
    seconds = round(time.perf_counter() - start, 1)
    if proc.returncode != 0:
        raise SystemExit(f"the run failed (exit {proc.returncode}); its output: {log}\n{_read(log)[-3000:]}")
    return seconds, notebook_table(kit / "results" / "executed"), log


def _jobs_run(log_text, table):
    """Notebooks run at once, as the runner said (1 when it ran them one by one; None: a kit without ``--jobs``)."""
    import re

    said = re.search(r"up to (\d+) at once", log_text)
    return int(said.group(1)) if said else (1 if "cpu_s" in table else None)


def notebook_table(executed):
    """The runner's ``run_summary.csv``; for a kit from before it, each executed notebook's papermill duration."""
    if (executed / "run_summary.csv").exists():
        return pd.read_csv(executed / "run_summary.csv")
    rows = [{"notebook": path.name, "seconds": round(json.loads(path.read_text())["metadata"]["papermill"]["duration"], 1)}
            for path in sorted(executed.glob("*.ipynb"), key=_run_order)]
    return pd.DataFrame(rows)


def _run_order(path):
    return (path.name != "assignment.ipynb", path.name)


def _demo_size(data):
    """``"<subjects> subjects x <TRs> TRs"`` of the demo that ran."""
    from encoding_kit.data.course_files import load_fmri

    fmri = load_fmri(data_dir=data)
    return f"{len(fmri)} subjects x {len(next(iter(fmri.values())))} TRs"


def with_total(table, seconds):
    """The per-notebook rows and a total row (its seconds: the whole command, data check and summary included)."""
    table = table.reindex(columns=COLUMNS)
    total = table.drop(columns=["notebook", "extracted"]).sum(min_count=1).to_dict()  # a column not logged stays empty
    total.update(notebook="total (whole command)", seconds=seconds, extracted="")
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def notebook_seconds(table, column="seconds"):
    """{notebook key: ``column``} of a benchmark table's notebook rows (the total row left out)."""
    from encoding_kit.run.schedule import notebook_key

    rows = table[~table["notebook"].str.startswith("total")]
    return {notebook_key(Path(name)): float(value) for name, value in zip(rows["notebook"], rows[column])}


def schedule_line(table, jobs, quick):
    """The run's own notebook times replayed in the runner's order (:func:`encoding_kit.run.schedule.replay`)."""
    from encoding_kit.run.schedule import replay

    if not isinstance(jobs, int) or jobs < 2:
        return "Schedule: one notebook at a time."
    seconds = notebook_seconds(table)
    return (f"Schedule: these notebook times replayed in the {'quick' if quick else 'full'} run's start order with "
            f"{jobs} jobs end at {replay(seconds, jobs, 'quick' if quick else 'full')[0]:.0f} s; the notebooks' sum / "
            f"{jobs} (no core ever idle) is {sum(seconds.values()) / jobs:.0f} s.")


def markdown(record):
    """A benchmark file's table as Markdown, with the line that says what ran where."""
    meta, rows = record["machine"], pd.DataFrame(record["rows"])
    head = (f"`python -m encoding_kit run{' --quick' if record['quick'] else ''}{_jobs(record)}` on the demo "
            f"({record['demo']}), "
            f"empty caches: "
            f"{meta['date']}, {meta['cpu']} ({meta['cores']} cores), {meta['precision']}, load average "
            f"{meta['load_before'][0]} before and {meta['load_after'][0]} after{_probe_phrase(meta)}, commit "
            f"{meta['commit'][:10]}.")
    cols = list(rows.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows.itertuples(index=False)]
    return head + "\n\n" + "\n".join(lines)


def _jobs(record):
    """`` --jobs N`` of a run that set it (runs before the option ran one notebook at a time)."""
    return f" --jobs {record['jobs']}" if record.get("jobs") else ""


def readme_section(files):
    """The README's run times: one line per benchmark file (total minutes, then each notebook's seconds).

    Parameters
    ----------
    files : list of Path
        ``benchmarks/results/demo_run-*.json``.

    Returns
    -------
    str
        The lines between the markers (no markers).
    """
    lines = ["Demo run times, measured by `python benchmarks/bench_demo_run.py` from empty caches (written from "
             "`benchmarks/results/demo_run-*.json` by `--render-readme`; other work on the CPU inflates them, see the "
             "load average):", ""]
    for file in sorted(files):
        record = json.loads(Path(file).read_text())
        meta, rows = record["machine"], pd.DataFrame(record["rows"])
        total = rows[rows.notebook.str.startswith("total")].seconds.iloc[0]
        each = ", ".join(f"{str(r.notebook).split('_')[0].removesuffix('.ipynb')} {r.seconds:.0f}"
                         for r in rows.itertuples() if not str(r.notebook).startswith("total"))
        lines.append(f"- `run{' --quick' if record['quick'] else ''}{_jobs(record)}`: **{total / 60:.1f} min** "
                     f"({meta['date'][:10]}, {meta['cpu']}, {meta['cores']} cores, {meta['precision']}, load average "
                     f"{meta['load_before'][0]} before{_probe_phrase(meta)}, commit {meta['commit'][:7]}; seconds per "
                     f"notebook: {each})")
    return "\n".join(lines)


def render_readme(readme=README, files=None):
    """Replace the README's text between :data:`MARKERS` with :func:`readme_section`; returns the new text."""
    text = Path(readme).read_text(encoding="utf-8")
    start, end = MARKERS
    if text.count(start) != 1 or text.count(end) != 1:
        raise SystemExit(f"{readme}: expected one {start} and one {end} around the run times")
    files = sorted(RESULTS.glob("demo_run-*.json")) if files is None else files
    head, rest = text.split(start)
    new = f"{head}{start}\n{readme_section(files)}\n{end}{rest.split(end, 1)[1]}"
    atomic_write(Path(readme), lambda tmp: tmp.write_text(new, encoding="utf-8"))
    return new


def best_order(seconds, jobs=2, after=None, restarts=200, seed=0, run="full"):
    """A start order with the shortest :func:`~encoding_kit.run.schedule.replay` wall: swaps of two notebooks from
    random orders (and ``run``'s :data:`~encoding_kit.run.schedule.START_ORDER`), kept while the wall falls; ties go
    to the order closest to longest first. Returns (wall, order)."""
    import random

    from encoding_kit.run import schedule

    rng, keys = random.Random(seed), list(seconds)
    longest = sorted(keys, key=lambda k: -seconds[k])

    def score(order):
        return (round(schedule.replay(seconds, jobs, order=order, after=after)[0], 6),
                sum(abs(i - longest.index(k)) for i, k in enumerate(order)))

    starts = [list(k for k in schedule.START_ORDER[run] if k in seconds), longest]
    starts += [rng.sample(keys, len(keys)) for _ in range(restarts)]
    best = None
    for order in starts:
        current, improved = score(order), True
        while improved:
            improved = False
            for i in range(len(order)):
                for j in range(i + 1, len(order)):
                    order[i], order[j] = order[j], order[i]
                    candidate = score(order)
                    if candidate < current:
                        current, improved = candidate, True
                    else:
                        order[i], order[j] = order[j], order[i]
        if best is None or current < best[0]:
            best = (current, list(order))
    return best[0][0], tuple(best[1])


def replay_text(record, column="seconds"):
    """Lines that replay a benchmark file's notebooks (their ``column``) under the runner's order and the best
    order found (:func:`best_order`)."""
    from encoding_kit.run import schedule

    seconds = notebook_seconds(pd.DataFrame(record["rows"]), column)
    jobs, run = record.get("jobs") or 2, "quick" if record.get("quick") else "full"
    wall, timeline = schedule.replay(seconds, jobs, run)
    best, order = best_order(seconds, jobs, run=run)
    lines = [f"Replay of the notebooks' {column} with --jobs {jobs} (the runner's rule, no start-up or summary):",
             f"  START_ORDER[{run!r}] {schedule.START_ORDER[run]}: {wall:.1f} s (total {sum(seconds.values()):.1f} s, "
             f"{sum(seconds.values()) / jobs:.1f} s per kernel if perfectly shared)"]
    lines += [f"    {key:>10} {start:7.1f} -> {end:7.1f}" for key, start, end in timeline]
    lines.append(f"  best order found {order}: {best:.1f} s")
    return "\n".join(lines)


def _cell(value):
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() else f"{value:.1f}"
    return str(value)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="time `run --quick` (400 TRs, 5 subjects)")
    parser.add_argument("--data-dir", help="a demo dataset (default: data/ when it is the demo, else a new one)")
    parser.add_argument("--timeout", type=float, default=180, help="minutes before the run is stopped (default 180)")
    parser.add_argument("--out", help="output folder (default benchmarks/results/)")
    parser.add_argument("--only", nargs="*", help="only notebooks whose name contains one of these (a smoke check)")
    parser.add_argument("--subjects", type=int, default=25, help="subjects of a generated demo (default 25)")
    parser.add_argument("--trs", type=int, default=2249, help="TRs of a generated demo (default 2249)")
    parser.add_argument("--kit", default=str(ROOT),
                        help="the checkout to run (default: this one; an older checkout gives the 'before' figures)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the scratch folder (the kit's copy, its run logs and caches) and print its path")
    parser.add_argument("--jobs", type=int, help="notebooks at once (the runner's --jobs; default: its own)")
    parser.add_argument("--render", metavar="FILE", help="print FILE's table as Markdown and exit")
    parser.add_argument("--replay", metavar="FILE", help="replay FILE's notebook times under the runner's start "
                        "order and the best order found, print both and exit")
    parser.add_argument("--replay-column", default="seconds", help="the times --replay uses (default seconds; "
                        "cpu_s: the kernels' CPU seconds)")
    parser.add_argument("--render-readme", action="store_true",
                        help="write the README's run times from benchmarks/results/demo_run-*.json and exit")
    args = parser.parse_args(argv)
    if args.render:
        print(markdown(json.loads(Path(args.render).read_text())))
        return
    if args.replay:
        print(replay_text(json.loads(Path(args.replay).read_text()), args.replay_column))
        return
    if args.render_readme:
        render_readme()
        print(f"{README}: run times written from {len(list(RESULTS.glob('demo_run-*.json')))} benchmark files")
        return
    meta = machine(Path(args.kit))
    print(f"{meta['date']} | {meta['cpu']} ({meta['cores']} cores) | {meta['precision']} | load average "
          f"{meta['load_before']} | commit {meta['commit']}", flush=True)
    with contextlib.ExitStack() as stack:
        tmp = tempfile.mkdtemp(prefix="bench-demo-run-")
        if args.keep:
            print(f"Scratch folder (kept): {tmp}", flush=True)
        else:
            stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        scratch = Path(tmp)
        data, generated_s = demo_data(args.data_dir, scratch, args.subjects, args.trs)
        from encoding_kit.run.schedule import default_jobs

        kernels = args.jobs or default_jobs()  # the runner's kernels: one product per kernel
        meta["probe_before"] = host_speed().probe(kernels)
        said = host_speed().describe(meta["probe_before"])
        print(f"{said[0].upper()}{said[1:]} (benchmarks/host_speed.py)", flush=True)
        seconds, table, log = run_kit(scratch, data, args.quick, args.timeout, args.only, args.kit, args.jobs)
        jobs = _jobs_run(_read(log), table)
        demo = _demo_size(data)
    meta["load_after"] = [round(x, 2) for x in os.getloadavg()]
    meta["probe_after"] = host_speed().probe(kernels)
    rows = with_total(table, seconds)
    record = {"quick": args.quick, "only": args.only, "jobs": jobs, "demo": demo, "machine": meta, "demo_generation_s": generated_s,
              "rows": json.loads(rows.to_json(orient="records"))}
    out = Path(args.out or RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"demo_run-{'quick' if args.quick else 'full'}-{meta['precision']}"
    if Path(args.kit).resolve() != ROOT:  # another checkout (the 'before' figures): its commit in the name
        stem = stem.with_name(f"{stem.name}-kit-{meta['commit'][:7]}")
    if stem.with_suffix(".json").exists():
        before = json.loads(stem.with_suffix(".json").read_text())["machine"]["date"]
        print(f"Replacing the result of {before} in {stem}.json (git keeps the earlier one).")
    text = json.dumps(record, indent=1) + "\n"
    atomic_write(stem.with_suffix(".json"), lambda tmp: tmp.write_text(text))
    atomic_write(stem.with_suffix(".csv"), lambda tmp: rows.to_csv(tmp, index=False))
    print(markdown(record))
    print(schedule_line(table, jobs, args.quick))
    print(f"\nWritten: {stem}.json and {stem}.csv" + (f" (demo generated in {generated_s} s, not counted)"
                                                     if generated_s else ""))


if __name__ == "__main__":
    main()
