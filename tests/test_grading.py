"""`python -m encoding_kit grade`: a synthetic class graded locally (threads) and on a 2-worker local Dask cluster."""

import hashlib

import nbformat
import pandas as pd
import pytest

from encoding_kit.grading import discover_submissions, grade
from encoding_kit.grading.collect import headline_numbers, reproducibility
from encoding_kit.grading.synthetic import bad_inputs, notebook, three_students


def tree_digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_discovery_names_every_problem_in_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    subs, problems = discover_submissions(empty)
    assert subs == [] and len(problems) == 1 and "no notebooks found" in problems[0]
    bad_inputs(tmp_path / "class")
    subs, problems = discover_submissions(tmp_path / "class")
    assert [s.id for s in subs] == ["dave", "eve.ipynb", "gina", "harry", "ivan", "section1/frank", "section2/frank"]
    assert problems == ["2 submissions are named 'frank' (section1/frank, section2/frank): "
                        "the gradebook names each by its path"]
    assert len({s.folder_name for s in subs}) == len(subs)


def test_headline_is_the_mean_over_rois_and_the_held_out_best_layer(tmp_path):
    """The layer is chosen on subjects 1, 3 (layer 2) and reported on 2, 4: choosing on all four picks layer 1."""
    results = tmp_path / "assignment"
    results.mkdir()
    pd.DataFrame({"scope": ["all", "early_auditory"], "n_rois": [360, 20], "mean_r": [0.032, 0.545],
                  "std_r": [0.004, 0.05], "features": ["audio", "audio"]}).to_csv(results / "summary.csv", index=False)
    r = {(1, 1): 0.10, (1, 2): 0.50, (1, 3): 0.10, (1, 4): 0.50, (2, 1): 0.30, (2, 2): 0.20, (2, 3): 0.30, (2, 4): 0.20}
    pd.DataFrame([{"model": "gpt2", "layer": layer, "subject": subject, "mean_r": value}
                  for (layer, subject), value in r.items()]).to_csv(results / "layer_subject_scores.csv", index=False)
    pd.DataFrame({"model": ["gpt2", "gpt2", "bert"], "layer": [1, 2, 1], "mean_r": [0.3, 0.25, 0.2],
                  "std_r": [0.2, 0.06, 0.02]}).to_csv(results / "layer_scores.csv", index=False)
    assert headline_numbers([results]) == [
        "audio: mean r over 360 ROIs = 0.032 +- 0.004 (std over subjects)",
        "gpt2: held-out best layer 2: r = 0.200 +- 0.000 (2 subjects; layer chosen on the other 2)",
        "bert: max over layers (layer 1), biased upward: r = 0.200 +- 0.020"]


def test_reproducibility_flags_a_number_that_changed_and_ignores_run_times(tmp_path):
    saved = notebook(tmp_path / "saved.ipynb", "print(r)", outputs={1: "r = 0.250 in 3.2 s\n"})
    same = notebook(tmp_path / "same.ipynb", "print(r)", outputs={1: "r = 0.2501 in 9.9 s\n"})
    other = notebook(tmp_path / "other.ipynb", "print(r)", outputs={1: "r = 0.310 in 3.2 s\n"})
    # papermill's injected cell must not shift the cells compared
    nb = nbformat.read(same, as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell("QUICK = True", metadata={"tags": ["injected-parameters"]}))
    nbformat.write(nb, same)
    assert reproducibility(saved, same, 0.01) == "reproduced (1 cells)"
    assert reproducibility(saved, other, 0.01) == "differs in code cell 2: saved 0.25, re-run 0.31"
    assert reproducibility(tmp_path / "same.ipynb", saved, 0.01).startswith("reproduced")


def check_three(table, out):
    status = dict(zip(table["student"], table["status"]))
    assert status["alice"] == "ok" and status["bob"] == "error" and status["carol"] == "timeout"
    bob = table.set_index("student").loc["bob"]
    # the executed copy: parameters cell, papermill's injected cell, then bob's cells; bob's own notebook: 3rd cell
    assert bob["error"] == "ValueError: planted failure" and (bob["cell"], bob["source_cell"]) == (4, 3)
    executed = nbformat.read(out / bob["executed"], as_version=4)
    assert executed.cells[bob["cell"] - 1].outputs[-1]["ename"] == "ValueError"
    alice = table.set_index("student").loc["alice"]
    assert alice["numbers"] == "bert: max over layers (layer 2), biased upward: r = 0.080 +- 0.020"
    (thumb, full), (_, inline) = (pair.split(">") for pair in alice["figures"].split("|"))  # saved file, inline plot
    assert (out / thumb).stat().st_size > 0 and (out / full).stat().st_size > 0 and (out / inline).stat().st_size > 0
    assert "<a href='alice/figures/assignment_fig1.png'><img src='alice/figures/assignment_fig1_thumb.png'" in (
        out / "gradebook.html").read_text()
    assert "image/png" in (out / alice["html"]).read_text()
    executed = nbformat.read(out / alice["executed"], as_version=4)
    assert "QUICK = True" in "".join(c.source for c in executed.cells)  # parameters injected
    assert (out / "gradebook.csv").exists() and "planted failure" in (out / "gradebook.html").read_text()


def test_grade_a_class_locally_with_every_kind_of_failure(tmp_path, capsys):
    klass = bad_inputs(three_students(tmp_path / "class"))
    data = tmp_path / "no_data"
    data.mkdir()
    before = tree_digest(klass)
    table = grade(klass, tmp_path / "out", data_dir=data, quick=True, timeout=12, jobs=3, tolerance=0.01)
    out = capsys.readouterr().out
    assert tree_digest(klass) == before, "a student's files changed"
    check_three(table, tmp_path / "out")
    status = dict(zip(table["student"], table["status"]))
    assert status == {**status, "dave": "invalid notebook", "eve.ipynb": "ok", "gina": "wrote outside its folder",
                      "harry": "missing package", "ivan": "kernel died", "section1/frank": "ok",
                      "section2/frank": "ok"}
    rows = table.set_index("student")
    assert rows.loc["eve.ipynb", "note"] == "no parameters cell: ran without injected parameters"
    assert "gina.txt" in rows.loc["gina", "error"] and not (data / "gina.txt").exists()
    assert (tmp_path / "out" / "gina" / "quarantine" / "data" / "gina.txt").read_text() == "x"
    assert rows.loc["alice", "reproducibility"] == "reproduced (1 cells)"
    for line in ("2 submissions are named 'frank'", f"{data}: no course data",
                 "bob / assignment.ipynb: error (cell 4 (In [4]) of the executed copy = cell 3 of the student's notebook)",
                 "carol / assignment.ipynb: timeout", "Gradebook:"):
        assert line in out, line


def test_grade_on_a_two_worker_local_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    klass = three_students(tmp_path / "class")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        table = grade(klass, tmp_path / "out", data_dir=tmp_path, quick=True, timeout=12, scheduler=cluster.scheduler_address)
    check_three(table, tmp_path / "out")


def test_kit_results_dir_sends_a_notebooks_results_into_the_submissions_copy(tmp_path, monkeypatch):
    from encoding_kit.run.runner import RESULTS_ENV, results_dir

    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "alice" / "results"))
    assert results_dir("01_text_models") == tmp_path / "alice" / "results" / "01_text_models"
