"""Notebooks: committed clean and in sync with their jupytext sources; all run headless in quick mode."""

import json
import re

import nbformat
import pytest
from conftest import ROOT

KNOWN_HARMLESS = ("Token indices sequence length", "pixdim[1,2,3]", "bad X server connection", "without encryption",
                  "Loading weights", "IProgress not found")
NOTEBOOKS = [ROOT / "assignment.ipynb", *sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]


def test_every_task_has_a_notebook():
    names = [p.stem for p in NOTEBOOKS]
    assert names == ["assignment", "01_text_models", "02_audio_models", "03_multimodal_models", "04_multi_subject",
                     "05_window_pooling_sweeps", "06_brain_maps", "07_nonlinear_and_decoding",
                     "08_brain_tuned_models", "09_speech_interpretation"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_clean_with_a_parameters_cell_and_in_sync(path):
    import jupytext

    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and not c.get("execution_count") for c in code), f"{path.name} has outputs"
    assert "parameters" in code[0]["metadata"].get("tags", []), "first code cell must be tagged 'parameters'"
    assert "QUICK" in "".join(code[0]["source"]) and "DATA_DIR" in "".join(code[0]["source"])
    paired = jupytext.read(path.with_suffix(".py"))
    assert [c.source for c in paired.cells] == ["".join(c["source"]) for c in nb["cells"]], \
        f"{path.name} and {path.with_suffix('.py').name} differ: run jupytext --sync"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_reads_every_line_of_the_parameters_cell(path, caplog):
    """A line papermill cannot parse (e.g. an ``=`` inside its comment) prints a warning in every graded run."""
    import papermill

    with caplog.at_level("WARNING", logger="papermill"):
        params = papermill.inspect_notebook(str(path))
    assert not [r.getMessage() for r in caplog.records if "Unable to parse" in r.getMessage()]
    source = json.loads(path.read_text())["cells"]
    first = next(c for c in source if c["cell_type"] == "code")
    names = {ln.split("=")[0].strip() for ln in "".join(first["source"]).splitlines()
             if re.match(r"^[A-Z_][A-Z0-9_]* *=", ln)}
    assert names <= set(params)


# A number a reader sees comes from the run that shows it (pitfall 24): markdown says what to look at, cells print.
RESULT_RULES = {
    "a date": re.compile(r"\b(19|20)\d\d-[01]\d-[0-3]\d\b|\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]* "
                         r"\d{1,2},? (19|20)\d\d\b"),
    "a results paragraph": re.compile(r"\bwhat we (measured|found|saw|got)\b|\bon the (full|quick) demo\b|"
                                      r"\bour (run|results)\b", re.I),
    "a measurement": re.compile(r"\b(measured|timed|benchmarked) (on|in|at|with|over|\d)", re.I),
    "a run time": re.compile(r"\b(takes?|took|taking|runs? in|ran in|costs?)\s+(about\s+|around\s+|~\s*)?\d+(\.\d+)?\s*"
                             r"(-\s*\d+(\.\d+)?\s*)?(s|sec|seconds?|min|minutes?|h|hours?)\b", re.I),
    "a count of results": re.compile(r"\b\d+ of (the )?\d+\b(?! (TRs|subjects|layers))"),
    "a correlation or p-value": re.compile(r"(\br\b|\bR\^?2\b|\bp\b)\s*(=|≈|~)\s*[-+]?\d*\.\d+|\b(mean )?r [-+]?0?\.\d{2,}",
                                          re.I),
}
CITED = re.compile(r"et al\.|\b(19|20)\d\d\)|\bseed 0\d\d\b|https?://|\bdoi\b", re.I)
"""A cell citing its source (a paper, a seed study, a link) may quote that source's r and p values."""


def result_claims(markdown):
    """What in a markdown cell looks like a typed result of a run: list of 'rule: match'."""
    found = []
    for name, rule in RESULT_RULES.items():
        if name == "a correlation or p-value" and CITED.search(markdown):
            continue
        match = rule.search(markdown)
        if match:
            found.append(f"{name}: {match.group(0)!r}")
    return found


def markdown_cells(path):
    return [c["source"] if isinstance(c["source"], str) else "".join(c["source"])
            for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]


def test_the_result_rules_catch_typed_results_and_spare_method_text():
    typed = ["Measured on 2026-12-05 on the demo in quick mode", "**On the full demo**: 8 of 8 planted ROIs recovered",
             "this notebook takes about 6 min in `make run`", "Whisper layer 0 reaches r 0.351, the envelope 0.068",
             "better in 5 subjects (p = 0.013)", "## What we measured (demo, quick mode)", "took 12 min here"]
    method = ["Score: Pearson r between predicted and measured held-out responses, averaged over folds in Fisher z.",
              "Features are delayed by 1-4 TRs (1.5-6 s, the hemodynamic lag)", "(mean r < 0.02) are the reference",
              "seed 003's pretrained baseline scored best: r = 0.197 (seed 003, its table)",
              "positions 0, 2, 4, ... select, 12 and 13 of the course's 25", "shown only where its r exceeds 0.05"]
    assert all(result_claims(text) for text in typed), [t for t in typed if not result_claims(t)]
    assert not any(result_claims(text) for text in method), {t: result_claims(t) for t in method if result_claims(t)}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_markdown_cell_states_a_result_of_a_run(path):
    """Dates of measurements, run times, 'what we measured' paragraphs, r and p values without a cited source:
    a cell prints them (run times: `utils.run_time_line` in the setup cell), the markdown says what to look at."""
    offending = {text.splitlines()[0][:80]: result_claims(text) for text in markdown_cells(path)
                 if result_claims(text)}
    assert not offending, f"{path.name}: markdown states results of a run (print them from a cell): {offending}"


def test_notebook_08_has_no_what_we_measured_paragraph():
    path = ROOT / "notebooks" / "08_brain_tuned_models.ipynb"
    assert not [text for text in markdown_cells(path) if result_claims(text)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_setup_cell_prints_the_run_time_estimate(path):
    """The first code cell after the parameters prints the notebook's estimate from run/profiles.py (never typed)."""
    code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    key = "assignment" if path.stem == "assignment" else path.stem[:2]
    assert f'print(utils.run_time_line("{key}"))' in "".join(code[1]["source"]), \
        f"{path.name}: its setup cell does not print utils.run_time_line({key!r})"


def test_a_rerun_keeps_the_previous_results(tmp_path, capsys):
    from encoding_kit.run.runner import results_dir

    first = results_dir("01_text_models", tmp_path)
    assert first.is_dir() and not any(first.iterdir())
    (first / "layer_scores.csv").write_text("first run")
    second = results_dir("01_text_models", tmp_path)
    assert second == first and not any(second.iterdir())
    assert "moved to" in capsys.readouterr().out
    (second / "layer_scores.csv").write_text("second run")
    results_dir("01_text_models", tmp_path)
    kept = sorted((tmp_path / "previous").glob("01_text_models-*/layer_scores.csv"))
    assert sorted(f.read_text() for f in kept) == ["first run", "second run"]


def test_runner_names_the_failing_notebook_and_cell(tmp_path, small_demo):
    from encoding_kit.run.runner import NotebookFailed, execute_notebook

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("QUICK = False", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError('planted failure')")]
    nbformat.write(nb, tmp_path / "broken.ipynb")
    with pytest.raises(NotebookFailed, match=r"broken\.ipynb failed in cell \d+.*ValueError: planted failure"):
        execute_notebook(tmp_path / "broken.ipynb", tmp_path / "out.ipynb", {"QUICK": True})


def test_all_notebooks_run_in_quick_mode_on_a_small_demo(quick_run):
    """The README's `python -m encoding_kit run --quick` on a copy of the kit, offline, on a 3 x 200 demo (the session
    fixture `quick_run` in conftest.py runs it once; tests/test_browser.py renders its notebooks);
    the executed notebooks are readable (a few stderr outputs per cell at most, none of the known-harmless messages)."""
    from encoding_kit.run.commands import RUN_QUICK

    kit, proc = quick_run
    assert proc.args[-1] == RUN_QUICK
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    executed = sorted(p.name for p in (kit / "results" / "executed").glob("*.ipynb"))
    assert executed == sorted(p.name for p in NOTEBOOKS)
    assert "Best layer per model" in proc.stdout
    for name in ("01_text_models/layer_scores.csv", "04_multi_subject/report_table.csv",
                 "06_brain_maps/best_text_layer.png", "07_nonlinear_and_decoding/decoding.csv",
                 "08_brain_tuned_models/study_table.csv", "08_brain_tuned_models/leak_check.csv",
                 "09_speech_interpretation/attention_profile.csv", "09_speech_interpretation/layer_peak_bootstrap.csv"):
        assert (kit / "results" / name).stat().st_size > 0, name
    assert not [m for m in KNOWN_HARMLESS if m in proc.stderr], proc.stderr[-3000:]
    for path in sorted((kit / "results" / "executed").glob("*.ipynb")):
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            outputs = cell.get("outputs", [])
            stderr = [o for o in outputs if o.get("name") == "stderr"]
            assert len(stderr) <= 3, f"{path.name} cell {index}: {len(stderr)} stderr outputs"
            text = json.dumps(outputs)
            assert not [m for m in KNOWN_HARMLESS if m in text], f"{path.name} cell {index}: {text[:2000]}"
