"""The benchmark scripts run on a small demo and take the planted drivers and driven ROIs from its truth file."""

import importlib.util
import re
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from encoding_kit.demo.generate import load_truth


def load_benchmark(name):
    """Import ``benchmarks/<name>.py`` (a script folder, not a package) as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_main(module, monkeypatch, capsys, *args):
    """Run a benchmark's ``main`` with command-line ``args``; its printed output, str."""
    monkeypatch.setattr(sys, "argv", [module.__name__, *map(str, args)])
    module.main()
    return capsys.readouterr().out


def test_encoding_benchmark_features_are_the_truth_files_drivers_then_distractors(small_demo):

    bench = load_benchmark("bench_encoding")
    drivers = load_truth(small_demo)["drivers"]
    X = bench.benchmark_features(drivers)
    assert X.shape == (drivers.shape[0], bench.N_FEATURES)  # 1,000 delayed columns whatever the number of drivers
    np.testing.assert_array_equal(X[:, :drivers.shape[1]], drivers)
    assert np.abs(X[:, drivers.shape[1]:].mean()) < 0.05  # the rest are standard-normal distractors
    with pytest.raises(ValueError, match="fewer than 250 planted drivers"):
        bench.benchmark_features(np.zeros((10, 250)))


def test_encoding_benchmark_counts_drivers_and_driven_rois_from_the_truth(small_demo, monkeypatch, capsys):

    truth = load_truth(small_demo)
    n, driven = truth["drivers"].shape[1], int(truth["driven"].sum())
    out = run_main(load_benchmark("bench_encoding"), monkeypatch, capsys, "--data-dir", small_demo,
                   "--skip", "course", "himalaya", "kit-himalaya")
    assert f"({n} planted drivers + {250 - n} distractors)" in out
    assert f"{driven} driven ROIs, {360 - driven} noise-only" in out
    assert f"drivers only ({4 * n} columns), per subject" in out
    assert f"planted regressors ({n}, no delay), group" in out
    assert "course" not in out.split("mean held-out r")[1]  # skipped rows are not reported
    assert "noise-only ROIs flagged" in out


def test_ceiling_benchmark_scores_the_planted_signal_near_one(medium_demo, monkeypatch, capsys):

    truth = load_truth(medium_demo)
    out = run_main(load_benchmark("bench_ceiling"), monkeypatch, capsys, "--data-dir", medium_demo)
    assert f"{int(truth['driven'].sum())} driven ROIs, {int((~truth['driven']).sum())} noise-only" in out
    kit = re.search(r"kit: noise_ceiling per block \(story_ceiling\)\s+([\d.]+)\s+\S+\s+(\d+)", out)
    former = re.search(r"former: leave-one-out ISC on all trimmed TRs\s+([\d.]+)\s+\S+\s+(\d+)", out)
    assert abs(float(kit.group(1)) - 1) < 0.05  # a perfect model scores 1 against the kit's ceiling
    assert int(kit.group(2)) <= 10 < int(former.group(2))  # no ceiling in noise-only ROIs; the LOSO ISC gives many


def test_identification_benchmark_uses_notebook_07s_blocks_and_writes_its_table(tmp_path, monkeypatch, capsys):
    bench = load_benchmark("bench_identification_null")
    assert bench.notebook_block_lengths(400) == [76] * 5  # the quick run's first 400 TRs, trimmed, 5 gapped folds
    assert set(bench.notebook_block_lengths(2249)) == {445, 446}
    out = run_main(bench, monkeypatch, capsys, "--sims", 40, "--out", tmp_path / "null.csv")
    table = pd.read_csv(tmp_path / "null.csv")
    assert len(table) == len(bench.scenarios()) and table["n_sims"].max() == 40
    assert {"rate_0.05", "rate_0.01", "date", "machine", "commit"} <= set(table.columns)
    assert "former null (circular shifts)" in out and "power: r = 0.3" in out
    power = table[table["signal_r"] == 0.3]["rate_0.05"].iloc[0]
    assert power > 0.8  # a planted signal is found; the calibration itself is checked in test_deep_decoders.py


def test_the_readme_run_times_are_what_the_benchmark_files_render():
    """The README's run-time lines come from benchmarks/results/demo_run-*.json (`--render-readme`), never by hand."""
    bench = load_benchmark("bench_demo_run")
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = bench.MARKERS
    shown = text.split(start)[1].split(end)[0].strip()
    files = sorted((ROOT / "benchmarks" / "results").glob("demo_run-*.json"))
    assert files and shown == bench.readme_section(files).strip(), (
        "README run times are stale: run `python benchmarks/bench_demo_run.py --render-readme`")


def test_render_readme_writes_each_file_between_the_markers(tmp_path):
    import json

    bench = load_benchmark("bench_demo_run")
    record = json.loads((ROOT / "benchmarks" / "results" / "demo_run-quick-float32.json").read_text())
    record.update(quick=False, jobs=2)
    record["rows"][-1]["seconds"] = 600.0
    (tmp_path / "demo_run-full-float32.json").write_text(json.dumps(record))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bench.MARKERS[0]}\nold text\n{bench.MARKERS[1]}\nrest\n")
    new = bench.render_readme(readme, sorted(tmp_path.glob("demo_run-*.json")))
    assert new.startswith("intro\n") and new.endswith("rest\n") and "old text" not in new
    assert "`run --jobs 2`: **10.0 min**" in readme.read_text()
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="expected one"):
        bench.render_readme(readme, [])


def test_the_host_probe_measures_every_core_and_its_figures_reach_the_tables(tmp_path):
    """A run's host probe (GFLOP/s per core, every core busy) is written beside its times; older files have none."""
    import json

    speed, bench = load_benchmark("host_speed"), load_benchmark("bench_demo_run")
    measured = speed.probe(processes=2, seconds=0.2)
    assert measured["processes"] == 2 and len(measured["each"]) == 2 and all(x > 0 for x in measured["each"])
    assert min(measured["each"]) <= measured["gflops_per_core"] <= max(measured["each"])
    with pytest.raises(ValueError, match="seconds must be > 0"):
        speed.gemm_gflops(0)
    record = json.loads((ROOT / "benchmarks" / "results" / "demo_run-quick-float32.json").read_text())
    record["machine"].pop("probe_before", None), record["machine"].pop("probe_after", None)
    assert "host probe" not in bench.markdown(record)  # a file from before the probe: nothing invented
    record["machine"].update(probe_before={"gflops_per_core": 81.5}, probe_after={"gflops_per_core": 64.25})
    assert "host probe 81.5 GFLOP/s per core before, 64.25 after" in bench.markdown(record)
    path = tmp_path / "demo_run-quick-float32.json"
    path.write_text(json.dumps(record))
    assert "host probe 81.5 GFLOP/s per core before, 64.25 after, commit" in bench.readme_section([path])


def test_replay_follows_the_runners_own_schedule():
    """The replay starts the notebooks in the order the runner's scheduler does, at the times it does."""
    import threading
    import time
    from pathlib import Path

    from encoding_kit.run import runner, schedule

    bench = load_benchmark("bench_demo_run")
    seconds = {"assignment": 4, "08": 9.5, "01": 3.2, "02": 2.1, "03": 5.3, "04": 1.05, "05": 2.4, "06": 1.3, "07": 1.7,
               "09": 2.9}  # no two notebooks end together: the order of starts is not left to the thread timing
    wall, timeline = schedule.replay(seconds, jobs=2, run="full")
    notebooks = [p for p in runner.notebook_paths(ROOT) if schedule.notebook_key(p) in seconds]
    unit, began, lock, t0 = 0.05, [], threading.Lock(), time.monotonic()

    def run_one(path):
        with lock:
            began.append((schedule.notebook_key(Path(path)), (time.monotonic() - t0) / unit))
        time.sleep(seconds[schedule.notebook_key(Path(path))] * unit)
        return {}

    schedule.run_concurrently(notebooks, 2, run_one, run="full")
    assert [k for k, _ in began] == [k for k, _, _ in timeline]
    assert all(abs(at - start) < 0.6 for (_, at), (_, start, _) in zip(began, timeline))
    ends = {k: end for k, _, end in timeline}
    assert wall == max(ends.values()) and sum(seconds.values()) / 2 <= wall
    for key, start, _ in timeline:
        assert all(start >= ends[w] for w in schedule.AFTER.get(key, ()) if w in seconds)
    best, order = bench.best_order(seconds, jobs=2, restarts=5)
    assert sorted(order) == sorted(seconds) and best <= wall and best == schedule.replay(seconds, 2, order=order)[0]


def test_runtimes_benchmark_reports_each_paths_difference_from_eager(monkeypatch):
    """A runtime that changes the hidden states shows it in max_rel_diff; eager against itself shows 0."""
    import encoding_kit.features.real_configs as real_configs
    from encoding_kit.features.models import standin

    bench = load_benchmark("bench_runtimes")
    monkeypatch.setattr(real_configs, "real_size_model", lambda name: standin(name))  # tiny random weights

    def off_by_one_percent(module, inputs):
        run, setup = bench.eager_runner(module, inputs)
        return (lambda: run() * 1.01), setup

    monkeypatch.setitem(bench.RUNTIMES, "shifted", off_by_one_percent)
    rows = {r["runtime"]: r for r in bench.time_model("gpt2", ["eager", "shifted"], reps=1)}
    assert rows["eager"]["max_rel_diff"] == 0 and rows["eager"]["vs_eager"] == 1
    assert rows["shifted"]["max_rel_diff"] == pytest.approx(0.01, rel=1e-3)
    assert rows["shifted"]["seconds"] > 0


def test_runtimes_benchmark_verdict_says_faster_only_when_every_model_is():
    bench = load_benchmark("bench_runtimes")
    assert "(faster on every model)" in bench.verdict("x", pd.Series([0.8, 0.95]))
    assert "(mixed)" in bench.verdict("x", pd.Series([0.8, 1.1]))
    assert "(not faster on any model)" in bench.verdict("x", pd.Series([1.0, 1.3]))


def test_every_benchmark_script_is_listed_on_the_docs_page():
    """docs/benchmarks.md lists each script of benchmarks/ (a new one left out is not found by readers)."""
    page = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    missing = [p.name for p in sorted((ROOT / "benchmarks").glob("*.py")) if f"`python benchmarks/{p.name}`" not in page]
    assert not missing, f"docs/benchmarks.md's table lacks {missing}"
