"""`python -m encoding_kit run --jobs N`: notebooks at once, each after the ones whose caches it reads."""

import json
import os
import threading
import time
from pathlib import Path

import nbformat
import pytest

from encoding_kit.__main__ import main
from encoding_kit.run import runner, schedule
from encoding_kit.run.runner import NotebookFailed
from encoding_kit.run.schedule import AFTER, default_jobs, notebook_key, run_concurrently, thread_env

ROOT = Path(__file__).resolve().parents[1]
KIT_NOTEBOOKS = runner.notebook_paths(ROOT)


def _clocked(seconds=0.03, fail=(), slow=("assignment", "01", "03")):
    """A fake ``run_one`` that records when each notebook started and ended, and how many ran at once.

    The notebooks others wait for take longer (``slow``): a notebook started too early overlaps them.
    """
    events, lock, state = {}, threading.Lock(), {"now": 0, "most": 0}

    def run_one(path):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
            events[notebook_key(path)] = [time.monotonic(), None]
        time.sleep(seconds * (4 if notebook_key(path) in slow else 1))
        with lock:
            state["now"] -= 1
            events[notebook_key(path)][1] = time.monotonic()
        if notebook_key(path) in fail:
            raise NotebookFailed(f"{path.name} failed in cell 3 (execution count 2): ValueError: planted")
        return {"notebook": path.name}

    return run_one, events, state


def test_the_kit_has_a_notebook_for_every_key_of_the_order():
    keys = {notebook_key(p) for p in KIT_NOTEBOOKS}
    assert set(AFTER) <= keys and {k for ks in AFTER.values() for k in ks} <= keys
    assert all(set(order) == keys and len(order) == len(keys) for order in schedule.START_ORDER.values())


def test_a_notebook_starts_only_after_the_ones_whose_caches_it_reads_and_two_run_at_once():
    run_one, events, state = _clocked()
    rows, failures = run_concurrently(KIT_NOTEBOOKS, 2, run_one)
    assert not failures and [r["notebook"] for r in rows] == [p.name for p in KIT_NOTEBOOKS]  # the run's order
    assert state["most"] == 2
    for key, before in AFTER.items():
        for other in before:
            assert events[key][0] >= events[other][1], f"{key} started before {other} ended"


def test_with_one_job_the_notebooks_run_one_by_one():
    run_one, events, state = _clocked(0.01)
    run_concurrently(KIT_NOTEBOOKS, 1, run_one)
    assert state["most"] == 1


def test_a_failure_stops_new_starts_and_the_notebooks_waiting_for_it_never_start():
    run_one, events, _ = _clocked(fail={"03"})
    some = [p for p in KIT_NOTEBOOKS if notebook_key(p) in ("02", "03", "06", "09")]
    rows, failures = run_concurrently(some, 4, run_one)  # room for all four at once
    assert [notebook_key(p) for p, _ in failures] == ["03"]
    assert set(events) == {"02", "03"}  # 06 and 09 read 03's caches: they wait, then never start
    assert all(end is not None for _, end in events.values())  # what was running finished
    assert [r["notebook"] for r in rows] == [p.name for p in some if notebook_key(p) == "02"]


def test_run_all_with_jobs_stops_naming_the_failed_notebook_and_cell(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(runner, "ensure_data", lambda data_dir: (tmp_path, "course"))

    def execute(path, out, params, **kwargs):
        if path.stem.startswith("03"):
            raise NotebookFailed(f"{path.name} failed in cell 7 (execution count 5): ValueError: planted")
        return 1.0

    monkeypatch.setattr(runner, "execute_notebook", execute)
    monkeypatch.setattr(runner, "step_totals", lambda steps: {})
    with pytest.raises(NotebookFailed, match=r"03_multimodal_models\.ipynb failed in cell 7"):
        runner.run_all(root=ROOT, jobs=2, quick=True)
    out = capsys.readouterr().out
    assert "--- 03_multimodal_models.ipynb FAILED" in out and "up to 2 at once" in out
    assert "=== notebooks/09_speech" not in out and "Notebooks run" not in out


@pytest.mark.parametrize("run", ["quick", "full"])
def test_one_job_starts_the_notebooks_in_the_runs_order(run):
    started = []
    run_concurrently(KIT_NOTEBOOKS, 1, lambda path: started.append(notebook_key(path)) or {}, run=run)
    assert started == list(schedule.START_ORDER[run])  # each order lists a notebook after the ones it waits for


@pytest.mark.parametrize("quick", [True, False])
def test_with_one_job_the_runner_runs_the_notebooks_in_the_start_order_and_lists_them_as_the_kit_does(
        monkeypatch, tmp_path, quick):
    """03's Whisper pass stores the encoder features the assignment reads: one by one, 03 still goes first."""
    kit = tmp_path / "kit"
    (kit / "notebooks").mkdir(parents=True)
    for path in KIT_NOTEBOOKS:
        (kit / path.relative_to(ROOT)).write_text("{}")
    monkeypatch.setattr(runner, "ensure_data", lambda data_dir: (tmp_path, "course"))
    started = []
    monkeypatch.setattr(runner, "execute_notebook", lambda path, out, params, **k: started.append(notebook_key(path)))
    monkeypatch.setattr(runner, "step_totals", lambda steps: {})
    runs = runner.run_all(root=kit, jobs=1, quick=quick)
    assert started == list(schedule.START_ORDER["quick" if quick else "full"])
    assert started.index("03") < started.index("assignment")
    assert list(runs["notebook"]) == [p.name for p in KIT_NOTEBOOKS]


@pytest.mark.parametrize("quick", [True, False])
def test_the_runner_schedules_by_the_quick_or_the_full_runs_order(monkeypatch, tmp_path, quick):
    monkeypatch.setattr(runner, "ensure_data", lambda data_dir: (tmp_path, "course"))
    seen = {}

    def concurrently(notebooks, jobs, run_one, run="full"):
        seen["run"] = run
        raise KeyboardInterrupt  # stop before anything runs

    monkeypatch.setattr(schedule, "run_concurrently", concurrently)
    with pytest.raises(KeyboardInterrupt):
        runner.run_all(root=ROOT, jobs=2, quick=quick)
    assert seen == {"run": "quick" if quick else "full"}


def test_the_replay_ends_when_the_last_notebook_ends_and_each_waits_for_its_inputs():
    after = {"b": ("a",), "d": ("b", "c")}
    seconds = {"a": 1.0, "b": 5.0, "c": 4.0, "d": 2.0}
    # a and c at 0; b at 1 (after a), ends 6; d after b and c: 6 to 8
    assert schedule.replay(seconds, jobs=2, order=("a", "b", "c", "d"), after=after)[0] == 8.0
    # c first with one job: c 0-4, a 4-5, b 5-10, d 10-12
    assert schedule.replay(seconds, jobs=1, order=("c", "a", "b", "d"), after=after)[0] == 12.0
    assert schedule.replay(seconds, jobs=4, order=("a", "b", "c", "d"), after=after)[0] == 8.0
    with pytest.raises(ValueError, match="cycle"):
        schedule.replay({"a": 1.0, "b": 1.0}, order=("a", "b"), after={"a": ("b",), "b": ("a",)})


def test_the_full_runs_order_replays_the_measured_full_run_no_later_than_longest_first():
    """The reason for a second order: on the full demo run's measured times the quick order leaves a long tail."""
    rows = json.loads((ROOT / "benchmarks/results/demo_run-full-float32.json").read_text())["rows"]
    seconds = {notebook_key(Path(r["notebook"])): r["seconds"] for r in rows if not r["notebook"].startswith("total")}
    assert set(seconds) == set(schedule.START_ORDER["full"])
    full, quick = (schedule.replay(seconds, run=run)[0] for run in ("full", "quick"))
    assert full <= quick

    def chain(key):  # the notebook's end when each one it waits for starts as soon as the ones it waits for end
        return seconds[key] + max((chain(k) for k in AFTER.get(key, ()) if k in seconds), default=0.0)

    # no schedule ends before both cores' share of the work nor before the longest chain of waits
    bound = max(sum(seconds.values()) / 2, max(chain(k) for k in seconds))
    assert full <= 1.05 * bound  # within 5 % of it


def test_default_jobs_follow_the_cores_and_the_memory():
    assert default_jobs(cores=2, memory_gb=64) == 2
    assert default_jobs(cores=16, memory_gb=64) == schedule.MAX_JOBS
    assert default_jobs(cores=8, memory_gb=4) == 1
    assert default_jobs(cores=1, memory_gb=64) == 1


def test_each_of_two_kernels_gets_one_thread_on_two_cores_and_what_the_user_set_is_kept():
    env, threads = thread_env(2, cores=2, environ={})
    assert threads == 1 and env == {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env, threads = thread_env(2, cores=8, environ={"OMP_NUM_THREADS": "3"})
    assert threads == 4 and env == {"OPENBLAS_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"}


def test_a_bad_jobs_value_is_refused_before_any_work(capsys):
    assert main(["run", "--jobs", "0"]) == 2
    assert "--jobs must be an integer >= 1" in capsys.readouterr().err


PROBE = """import json, os, pathlib
pathlib.Path(os.environ["KIT_RUN_LOG"]).write_text(json.dumps({"kind": "ridge", "seconds": 0.5}) + "\\n")
print(json.dumps({k: os.environ.get(k) for k in ("KIT_RUN_LOG", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}))"""


def test_two_real_kernels_at_once_each_with_its_own_run_log_and_one_thread(monkeypatch, tmp_path, capsys):
    """Real kernels: the variables reach each kernel, never this process's environment."""
    root = tmp_path / "kit"
    for name in ("assignment.ipynb", "notebooks/01_a.ipynb", "notebooks/03_b.ipynb"):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("QUICK = False", metadata={"tags": ["parameters"]}),
                    nbformat.v4.new_code_cell(PROBE)]
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, root / name)
    monkeypatch.setattr(runner, "ensure_data", lambda data_dir: (tmp_path, "course"))
    for name in schedule.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    before = dict(os.environ)
    runs = runner.run_all(root=root, jobs=2, quick=True)
    assert dict(os.environ) == before
    seen = {}
    for path in sorted((root / "results" / "executed").glob("*.ipynb")):
        text = nbformat.read(path, as_version=4).cells[-1].outputs[0]["text"]
        seen[path.stem] = json.loads(text)
    assert {s: Path(v["KIT_RUN_LOG"]).name for s, v in seen.items()} == {s: f"{s}.jsonl" for s in seen}
    assert all(v["OMP_NUM_THREADS"] == "1" == v["OPENBLAS_NUM_THREADS"] for v in seen.values())
    assert list(runs["ridge_s"]) == [0.5] * 3 and (runs["cpu_s"] > 0).all()
    out = capsys.readouterr().out
    assert out.count(" done in ") == 3 and "[3/3 notebooks]" in out


def test_the_command_line_passes_jobs_and_no_trims_to_the_runner(monkeypatch):
    seen = {}
    monkeypatch.setattr(runner, "run_all", lambda **kwargs: seen.update(kwargs))
    assert main(["run", "--jobs", "3", "--no-trims", "--only", "08"]) in (None, 0)
    assert seen["jobs"] == 3 and seen["trims"] is False and seen["only"] == ["08"]
    main(["run"])
    assert seen["jobs"] is None and seen["trims"] is True  # None: the runner's default from the cores


def test_the_quick_run_ends_the_assignment_early_at_no_cost_to_the_run():
    """The graded notebook's results come first on --quick, and the run ends within 2 % of both cores' share."""
    rows = json.loads((ROOT / "benchmarks/results/demo_run-quick-float32.json").read_text())["rows"]
    seconds = {notebook_key(Path(r["notebook"])): r["seconds"] for r in rows if not r["notebook"].startswith("total")}
    wall, timeline = schedule.replay(seconds, run="quick")
    ends = {key: end for key, _, end in timeline}
    assert ends["assignment"] <= seconds["03"] + seconds["assignment"] + 1e-9  # started the moment 03 ended
    assert wall <= 1.02 * sum(seconds.values()) / 2  # no schedule of two jobs ends before sum / 2
