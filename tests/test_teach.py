"""The assignment's exercise markers, the student release (otter-grader), public checks, hidden tests, the rubric file."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

from encoding_kit.__main__ import main
from encoding_kit.teach.hidden import TESTS, run_hidden
from encoding_kit.teach.markers import MarkerError, scan_source
from encoding_kit.teach.release import release, sources
from encoding_kit.teach.rubric import DEFAULT_RUBRIC, RubricError, load_rubric
from encoding_kit.teach.synthetic import MISTAKES, submission_cells

EXERCISES = ["time_base", "audio_features", "cross_validation", "subjects", "layer_choice"]


def test_the_kit_sources_mark_the_exercises_of_the_course():
    found = {src.name: [e.name for e in scan_source(src)] for src in sources()}
    assert found["assignment.py"] == EXERCISES
    tasks = {e.task.split()[0] for src in sources() for e in scan_source(src)}
    assert {"1", "2", "3", "4", "5", "6", "7"} <= tasks, tasks
    assert all(e.hint and e.expected for src in sources() for e in scan_source(src))


@pytest.mark.parametrize("text, message", [
    ("# %%\nx = 1\n# BEGIN EXERCISE a | task 1 | expected: (n,) | hint: h\ny = 2\n", "src.py:3: BEGIN EXERCISE a is never closed"),
    ("# %%\n# BEGIN EXERCISE a | task 1 | expected: (n,) | hint: h\ny = 2\n# %%\nz = 3\n# END EXERCISE\n",
     "src.py:2: BEGIN EXERCISE a is not closed in its cell"),
    ("# %%\ny = 2\n# END EXERCISE\n", "src.py:3: END EXERCISE without a BEGIN EXERCISE"),
    ("# %%\n# BEGIN EXERCISE a | task 1 | hint: h\n# END EXERCISE\n", "src.py:2: expected '# BEGIN EXERCISE name"),
])
def test_a_bad_marker_is_one_line_naming_the_file_and_line(tmp_path, text, message):
    (tmp_path / "src.py").write_text(text)
    with pytest.raises(MarkerError) as caught:
        scan_source(tmp_path / "src.py")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def run_cells(cells, results, monkeypatch):
    monkeypatch.setenv("KIT_RESULTS_DIR", str(results))
    namespace = {}
    for cell in cells:
        exec(cell, namespace)


@pytest.mark.parametrize("mistake", [None, *MISTAKES])
def test_each_hidden_test_fails_on_its_planted_mistake_only(tmp_path, monkeypatch, capsys, mistake):
    """The assignment's solution cells, run on a tiny stand-in story, pass every public check and hidden test; with
    one classic mistake planted in a copy of them, only that mistake's hidden test fails."""
    run_cells(submission_cells(mistake=mistake), tmp_path, monkeypatch)
    assert capsys.readouterr().out.count("PASS check(") == len(EXERCISES)
    failed = [f"hidden_{name}" for name in TESTS if not run_hidden(name, tmp_path)[0]]
    assert failed == ([mistake] if mistake else [])


def test_hidden_tests_fail_without_a_record_and_on_a_forged_one(tmp_path):
    assert run_hidden("gap", tmp_path) == (False, "not recorded (no check('cross_validation', out=...) ran)")
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "cross_validation.npz").write_bytes(b"not an npz")
    passed, message = run_hidden("gap", tmp_path)
    assert not passed and "unreadable record" in message


def test_a_public_check_names_what_it_found(capsys):
    import numpy as np

    from encoding_kit.teach.checks import check

    assert not check("audio_features", X_audio=np.full((10, 3), np.nan), n_trs=10)
    assert not check("audio_features", X_audio=np.zeros((9, 3)), n_trs=10)
    assert check("audio_features", X_audio=np.zeros((10, 3)), n_trs=10)
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["FAIL check('audio_features'): X_audio has 30 NaN or infinite values",
                     "FAIL check('audio_features'): X_audio has shape (9, 3), expected (10, ...)",
                     "PASS check('audio_features'): shape, time base, causality and NaN as expected"]
    with pytest.raises(ValueError, match="check 'audio' is unknown"):
        check("audio")


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["items"][0].update(check="vibes"), "item 1 (runs_to_end): unknown check 'vibes'"),
    (lambda r: r["items"][1].update(points=-5), "item 2 (public_checks): points must be a number >= 0, found -5"),
    (lambda r: r["items"][2].pop("points"), "item 3 (models_per_modality): missing 'points'"),
    (lambda r: r["items"][6].pop("test"), "item 7 (hidden_time_base): missing 'test'"),
    (lambda r: r.update(items=[]), "no 'items' list"),
    (lambda r: r["items"][7].update(id="runs_to_end"), "the id 'runs_to_end' appears twice"),
])
def test_a_bad_rubric_is_one_line_naming_the_file_and_item(tmp_path, capsys, edit, message):
    import yaml

    rubric = yaml.safe_load(DEFAULT_RUBRIC.read_text())
    edit(rubric)
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(rubric))
    with pytest.raises(RubricError, match="^" + str(path).replace(".", r"\.")) as caught:
        load_rubric(path)
    assert message in str(caught.value)
    assert main(["grade", str(tmp_path), "--out", str(tmp_path / "out"), "--rubric", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not (tmp_path / "out").exists()


def test_release_refuses_an_existing_folder(tmp_path, capsys):
    assert main(["release", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"error: --out {tmp_path}: the folder exists; the release is written into a "
                                       "new folder only\n")


def test_release_stops_at_an_unclosed_marker_before_writing(tmp_path, capsys):
    kit = tmp_path / "kit"
    (kit / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "assignment.py", kit / "assignment.py")
    text = (kit / "assignment.py").read_text().replace("# END EXERCISE\nutils.check(\"subjects\"", "utils.check(\"subjects\"")
    (kit / "assignment.py").write_text(text)
    with pytest.raises(MarkerError, match=r"assignment\.py:\d+: BEGIN EXERCISE subjects is not closed"):
        release(tmp_path / "out", root=kit)
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def student_kit(tmp_path_factory):
    """`python -m encoding_kit release --out DIR --with-solutions` from this checkout (about a minute: otter assign)."""
    out = tmp_path_factory.mktemp("release") / "kit"
    assert main(["release", "--out", str(out), "--with-solutions"]) == 0
    return out


def test_the_student_kit_has_scaffolds_and_no_solutions(student_kit):
    import nbformat

    nb = nbformat.read(student_kit / "assignment.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert code.count("raise NotImplementedError(") == len(EXERCISES)
    for solution_line in ("word_trs = np.floor(onsets / utils.TR)", "scaler = StandardScaler().fit(Xd[train])",
                          "reported_r = layer_r[reported_on"):
        assert solution_line not in code and solution_line not in (student_kit / "assignment.py").read_text()
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert nb.metadata["kernelspec"]["name"] == "encoding-kit"
    for src in sources():
        rel = src.relative_to(ROOT)
        assert (student_kit / rel).exists() and (student_kit / rel.with_suffix(".ipynb")).exists()
        solution = (student_kit / "solutions" / rel.with_suffix(".ipynb")).read_text()
        assert solution == (ROOT / rel.with_suffix(".ipynb")).read_text()
    assert not (student_kit / "encoding_kit" / "teach" / "hidden.py").exists()
    assert not (student_kit / "tests" / "test_teach.py").exists()
    assert "utils.check" in (student_kit / "README.md").read_text()
    for kept in ("Makefile", "requirements.txt", "pyproject.toml", "data/README.md", "utils.py", "docs/student_guide.md"):
        assert (student_kit / kept).exists(), kept


def test_in_the_student_kit_the_tests_that_need_solutions_skip_with_their_reason_and_the_checks_run(student_kit, tmp_path):
    kit = tmp_path / "fresh"
    shutil.copytree(student_kit, kit)  # a fresh copy, as a student unpacks it
    env = {**os.environ, "PYTHONPATH": str(kit)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "tests/test_notebooks.py", "tests/test_timebase.py"],
                          cwd=kit, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    reason = json.loads((kit / ".student-release").read_text())["test_notebooks.py"]
    assert f"student release: {reason}" in proc.stdout and " passed" in proc.stdout
    check = subprocess.run([sys.executable, "-c", "import utils, numpy as np; "
                            "assert utils.check('audio_features', X_audio=np.zeros((4, 2)), n_trs=4)"],
                           cwd=kit, env=env, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0 and check.stdout.startswith("PASS"), check.stderr[-2000:]
    assert "lab: $(STAMP)" in (kit / "Makefile").read_text()
