"""What a full run on the demo leaves out, and only there: fewer layers of deep stand-ins, fewer sweep settings."""

from types import SimpleNamespace

import numpy as np

from encoding_kit.run.profiles import DEMO, parameters
from encoding_kit.run.sweeps import DEMO_DEEP_LAYERS, demo_layer_step, layer_sweep


def test_deep_models_on_the_demo_evaluate_every_other_layer_and_say_so(capsys):
    demo, course = SimpleNamespace(source="demo"), SimpleNamespace(source="course")
    deep = DEMO_DEEP_LAYERS + 18
    assert demo_layer_step(demo, "gpt2 (demo stand-in: SmolLM2-135M)", deep) == 2
    assert capsys.readouterr().out.count("every other layer") == 1
    assert demo_layer_step(course, "gpt2", deep) == 1  # the course data: every layer
    assert demo_layer_step(demo, "bert", DEMO_DEEP_LAYERS) == 1  # a base-size model: every layer
    assert demo_layer_step(demo, "gpt2", deep, every=3) == 3  # a coarser step asked for is kept
    assert capsys.readouterr().out == ""


def test_layer_sweep_on_the_demo_keeps_the_last_layer(monkeypatch):
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
    table, _ = layer_sweep(features, SimpleNamespace(source="demo", fmri={}), "m")
    assert scored == list(range(0, 31, 2))  # 0, 2, ..., 30 (the last)
    scored.clear()
    layer_sweep(features, SimpleNamespace(source="course", fmri={}), "m")
    assert scored == list(range(31))


def test_demo_parameters_apply_to_a_full_demo_run_only():
    stem = "05_window_pooling_sweeps"
    assert parameters("full", stem, demo=True) == DEMO[stem]
    assert parameters("full", stem, demo=False) == {}
    assert parameters("quick", stem, demo=True) == {}
    assert parameters("laptop", stem, demo=True)["AUDIO_WINDOWS"] == [2]  # the profile's own choice wins
    contexts = DEMO[stem]["CONTEXTS"]
    assert min(contexts) == 10 and max(contexts) == 800  # still the shortest and the longest of the notebook's sweep


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
