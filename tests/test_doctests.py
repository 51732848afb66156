"""The Examples sections of the functions students call most run as doctests, on a tiny demo (3 subjects x 80 TRs).

The examples read the data as a notebook does (``utils.load_story()``, i.e. ``$KIT_DATA_DIR``), so this test points
``KIT_DATA_DIR`` at a tiny demo made once. Every function of :data:`EXAMPLED` must keep an Examples section with at
least one example, and every example must give the output its docstring shows.
"""

import doctest
import inspect

import pytest

from encoding_kit.demo.generate import make_demo_dataset

# The utils names the notebooks call most (tests/test_doctests.py keeps each one's Examples section runnable).
EXAMPLED = ("load_story", "evaluate_encoding", "story_ceiling", "noise_ceiling", "normalized_r", "group_significance",
            "top_rois", "group_summary", "results_dir", "layer_sweep", "sweep_point", "summarize_layers",
            "split_subjects", "best_layers_held_out", "plot_layer_curves", "pool_to_trs", "GappedKFold", "ExtractionRun")


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("doctest_demo"), n_subjects=3, n_trs=80, seed=0)


@pytest.mark.parametrize("name", EXAMPLED)
def test_examples_run_as_shown(name, tiny_demo, monkeypatch):
    import matplotlib

    import utils

    matplotlib.use("Agg")
    monkeypatch.setenv("KIT_DATA_DIR", str(tiny_demo))
    monkeypatch.setenv("KIT_PROGRESS", "final")
    func = getattr(utils, name)
    assert "Examples\n    --------" in (func.__doc__ or ""), f"utils.{name} has no Examples section"
    tests = doctest.DocTestFinder(recurse=False).find(func, name=f"utils.{name}", globs={})
    examples = sum(len(t.examples) for t in tests)
    assert examples >= 1, f"utils.{name}: no example in its docstring"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test, out=print)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"utils.{name} ({inspect.getsourcefile(func)}): {result.failed} of {examples} examples fail"
