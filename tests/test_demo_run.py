"""What a full run on the demo leaves out, and only there: fewer layers of deep stand-ins, fewer sweep settings."""

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from encoding_kit.features.offline_models import WHISPER_INPUT_S
from encoding_kit.run import runner
from encoding_kit.run.profiles import DEMO, demo_note, parameters
from encoding_kit.run.sweeps import DEEP_LAYERS, layer_step, layer_sweep

ROOT = Path(__file__).resolve().parents[1]


def test_deep_models_take_the_deep_step_base_size_ones_keep_theirs():
    deep = DEEP_LAYERS + 18
    assert layer_step(deep, every=1, deep_every=2) == 2
    assert layer_step(deep) == 1  # no trim asked: every layer
    assert layer_step(DEEP_LAYERS, every=1, deep_every=2) == 1  # a base-size model: every layer
    assert layer_step(deep, every=3, deep_every=2) == 3  # a coarser step asked for is kept


def test_layer_sweep_of_a_deep_model_keeps_the_last_layer_and_the_demo_alone_trims_nothing(monkeypatch):
    from encoding_kit.run import sweeps

    scored = []

    class Result:
        subjects = ["s1"]

        def roi_mean_r(self):
            return np.array([0.1])

        def normalized(self, ceiling):
            return np.zeros((1, 2))

    monkeypatch.setattr(sweeps, "evaluate_encoding", lambda X, *a, **k: scored.append(int(X[0, 0])) or Result())
    features = {k: np.full((4, 2), k) for k in range(31)}
    layer_sweep(features, SimpleNamespace(source="demo", fmri={}), "m", deep_every=2)
    assert scored == list(range(0, 31, 2))  # 0, 2, ..., 30 (the last)
    scored.clear()
    layer_sweep(features, SimpleNamespace(source="demo", fmri={}), "m")  # the trim is the runner's, not the data's
    assert scored == list(range(31))


def test_demo_parameters_apply_to_a_full_demo_run_only():
    stem = "05_window_pooling_sweeps"
    assert parameters("full", stem, demo=True) == DEMO[stem]
    assert parameters("full", stem, demo=False) == {}
    assert parameters("quick", stem, demo=True) == {}
    assert parameters("laptop", stem, demo=True)["AUDIO_WINDOWS"] == [2]  # the profile's own choice wins
    contexts = DEMO[stem]["CONTEXTS"]
    assert min(contexts) == 10 and max(contexts) == 800  # still the shortest and the longest of the notebook's sweep
    windows = DEMO[stem]["AUDIO_WINDOWS"]
    assert min(windows) == 1 and len(windows) >= 3  # still a sweep, from the shortest window of the notebook's
    # the demo's Whisper (input cut to WHISPER_INPUT_S) keeps padding to share at every window of the trimmed sweep
    assert max(windows) * 1.5 < WHISPER_INPUT_S
    assert parameters("full", "01_text_models", demo=True) == {"DEEP_LAYER_STEP": 2}
    assert set(parameters("full", "08_brain_tuned_models", demo=True)) == {"SEEDS", "FOLDS", "COMPRESSIONS"}


@pytest.mark.parametrize("stem", list(DEMO))
def test_every_trim_is_a_parameter_of_its_notebook(stem):
    cell = (ROOT / f"notebooks/{stem}.py").read_text().split('# %% tags=["parameters"]')[1].split("# %%")[0]
    for name in DEMO[stem]:
        assert re.search(rf"^{name} = ", cell, re.M), f"{stem} has no parameter {name}"


def test_the_one_line_lists_every_trim_of_the_notebooks_run():
    line = demo_note("full", list(DEMO))
    assert "\n" not in line and "--no-trims" in line
    for stem, trims in DEMO.items():
        assert f"{stem[:2]} " + ", ".join(f"{k}={v}" for k, v in trims.items()) in line
    assert "01 " not in demo_note("full", ["05_window_pooling_sweeps"])
    laptop = demo_note("laptop", ["05_window_pooling_sweeps", "08_brain_tuned_models"])
    assert "05" not in laptop and "08" not in laptop  # the laptop profile sets those itself: nothing trimmed


@pytest.mark.parametrize("source, quick, trims, trimmed", [("demo", False, True, True), ("demo", False, False, False),
                                                            ("demo", True, True, False), ("course", False, True, False)])
def test_trims_apply_on_the_demo_only_and_no_trims_turns_them_off(monkeypatch, tmp_path, capsys, source, quick, trims,
                                                                  trimmed):
    calls = {}
    data = tmp_path / "data"
    data.mkdir()
    if source == "course":  # a fake course-files folder: the real data, which is never trimmed
        from encoding_kit.data import course_files

        for name in course_files.COURSE_FILES:
            (data / name).write_bytes(b"x")
        assert course_files.data_source(data) == "course"
    else:
        monkeypatch.setattr(runner, "ensure_data", lambda data_dir: (data, "demo"))
    monkeypatch.setattr(runner, "execute_notebook", lambda path, out, params, **k: calls.update({path.stem: params}))
    runner.run_all(root=ROOT, data_dir=data, only=["01_text", "05_window", "07_nonlinear", "08_brain"], quick=quick, trims=trims,
                   jobs=1)
    out = capsys.readouterr().out
    assert out.count("trimmed to keep the run short") == (1 if trimmed else 0)
    for stem, trim in DEMO.items():
        assert all((calls[stem].get(k) == v) == trimmed for k, v in trim.items()), (stem, calls[stem])


def test_a_busy_cpu_gets_one_blas_thread_and_sleeping_openmp_threads_an_idle_one_keeps_its_cores():
    from encoding_kit.core.runtime import notebook_thread_env

    env, limited = notebook_thread_env(load=11.9, cores=2, environ={})
    assert limited and env == {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env, limited = notebook_thread_env(load=1.9, cores=2, environ={})  # our own last notebook: still idle
    assert not limited and env == {"OMP_WAIT_POLICY": "PASSIVE"}
    env, limited = notebook_thread_env(load=0.0, cores=1, environ={})
    assert not limited and "OPENBLAS_NUM_THREADS" not in env
    # What the user set is kept.
    env, limited = notebook_thread_env(load=11.9, cores=2, environ={"OPENBLAS_NUM_THREADS": "2",
                                                                    "MKL_NUM_THREADS": "2", "OMP_WAIT_POLICY": "x"})
    assert env == {} and not limited


def test_the_runner_sets_the_thread_variables_for_the_kernel_only_while_a_notebook_runs(monkeypatch, capsys):
    import os

    from encoding_kit.run import runner

    for k in ("OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (12.0, 11.0, 9.0))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    with runner.kernel_threads():
        assert os.environ["OPENBLAS_NUM_THREADS"] == "1" and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert "one thread" in capsys.readouterr().out
    assert "OPENBLAS_NUM_THREADS" not in os.environ and "OMP_WAIT_POLICY" not in os.environ
