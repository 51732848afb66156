"""Grading a class nobody can spoil: names, sandboxes, forged results, stray processes and Ctrl-C (issue 29)."""

import hashlib
import os
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from conftest import ROOT

from encoding_kit.grading import grade
from encoding_kit.grading.discover import folder_names
from encoding_kit.grading.synthetic import notebook

CHINESE = ["张三", "李四", "王芳"]


def tree_digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def processes_with(marker):
    """Pids whose command line holds ``marker`` (psutil when installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        found = []
        for entry in os.listdir("/proc"):
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if entry.isdigit() and marker in cmd and state != "Z":
                found.append(int(entry))
        return found
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and marker in " ".join(proc.info["cmdline"] or []):
            found.append(proc.pid)
    return found


def scores(value, name):
    """A cell that prints the student's name and saves a summary.csv like the assignment's (scope 'all')."""
    return ("import os, pathlib\n"
            "out = pathlib.Path(os.environ.get('KIT_RESULTS_DIR', 'results')) / 'assignment'\n"
            "out.mkdir(parents=True, exist_ok=True)\n"
            f"(out / 'summary.csv').write_text('scope,n_rois,mean_r,std_r,features\\nall,360,{value},0.01,text\\n')\n"
            f"print('I am', {name!r})")


def test_folder_names_are_unique_readable_and_stable():
    nfd = unicodedata.normalize("NFD", "José")
    ids = [*CHINESE, "Anne Marie", "Anne_Marie", "Bob", "bob", nfd, "section1/张三", "a" * 200, "..", "x/y:z*?"]
    names = folder_names(ids)
    assert len(set(n.casefold() for n in names.values())) == len(ids)  # unique even on a case-insensitive disk
    assert names["张三"] == "张三" and names["李四"] == "李四" and names["section1/张三"] == "section1__张三"
    assert names[nfd] == unicodedata.normalize("NFC", "José")
    assert names["Anne Marie"].startswith("Anne_Marie-") and names["Anne_Marie"].startswith("Anne_Marie-")
    assert names["Bob"].startswith("Bob-") and names["bob"].startswith("bob-")
    assert all("/" not in n and ":" not in n and "*" not in n and len(n.encode()) < 255 for n in names.values())
    assert folder_names(list(reversed(ids))) == names  # the same class, the same names


@pytest.mark.parametrize("jobs", [1, 2])
def test_every_row_links_to_its_own_copy_and_its_own_numbers(tmp_path, jobs):
    students = {**{n: 0.11 + 0.01 * k for k, n in enumerate(CHINESE)}, "Anne Marie": 0.21, "Anne_Marie": 0.22,
                "Bob": 0.31, "bob": 0.32}
    klass = tmp_path / "class"
    for name, value in students.items():
        notebook(klass / name / "assignment.ipynb", scores(value, name))
    notebook(klass / "José.ipynb", scores(0.41, "José"))  # a loose notebook, scored like a folder
    students["José.ipynb"] = 0.41
    (tmp_path / "data").mkdir()
    table = grade(klass, tmp_path / "out", data_dir=tmp_path / "data", quick=True, timeout=60, jobs=jobs)
    assert sorted(table["student"]) == sorted(students)
    assert table["executed"].nunique() == len(table) and table["html"].nunique() == len(table)
    for row in table.itertuples():
        assert row.status == "ok", (row.student, row.error)
        executed = nbformat.read(tmp_path / "out" / row.executed, as_version=4)
        printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
        assert f"I am {Path(row.student).stem}" in printed, (row.student, row.executed)
        assert row.numbers == f"text: mean r over 360 ROIs = {students[row.student]:.3f} +- 0.010 (std over subjects)"
        assert (tmp_path / "out" / row.html).read_text().count(f"I am {Path(row.student).stem}") >= 1
    assert {Path(e).parts[0] for e in table["executed"]} >= set(CHINESE)  # readable folders


def test_a_forged_result_line_and_a_killed_parent_are_not_graded_ok(tmp_path):
    forge = ("import json, os\n"
             "line = 'KIT-GRADE-RESULT ' + json.dumps({'status': 'ok', 'cell': None, 'error': ''}) + '\\n'\n"
             "open(f'/proc/{os.getppid()}/fd/1', 'w').write(line)\n")
    klass = tmp_path / "class"
    notebook(klass / "killer" / "assignment.ipynb", forge + "os.kill(os.getppid(), 9)")
    notebook(klass / "liar" / "assignment.ipynb", forge, "raise RuntimeError('the real outcome')")
    (tmp_path / "data").mkdir()
    table = grade(klass, tmp_path / "out", data_dir=tmp_path / "data", quick=True, timeout=60, jobs=2)
    rows = table.set_index("student")
    assert rows.loc["killer", "status"] == "kernel died" and "SIGKILL" in rows.loc["killer", "error"]
    assert rows.loc["liar", "status"] == "error" and rows.loc["liar", "error"] == "RuntimeError: the real outcome"
    assert rows.loc["liar", "cell"] == 4 and rows.loc["liar", "source_cell"] == 3  # papermill's cell counted once


DELETER = ("import os, pathlib, shutil\n"
           "data = pathlib.Path(DATA_DIR)\n"
           "try:\n    os.remove(data / 'course.txt')\nexcept OSError as exc:\n    print('refused', exc)\n"
           "try:\n    (data / 'mine.txt').write_text('planted')\nexcept OSError as exc:\n    print('refused', exc)\n"
           "for victim in VICTIMS:\n"
           "    try:\n        os.remove(victim)\n    except OSError as exc:\n        print('refused', exc)\n"
           "print('class folder visible:', os.path.exists(VICTIMS[0]))")
DAEMON = ("import subprocess, sys\n"
          "code = ('import os, time, pathlib\\nif os.fork(): os._exit(0)\\nos.setsid()\\n'\n"
          "        'time.sleep(5)\\npathlib.Path(%r).write_text(\"late\")' % LATE)\n"
          "subprocess.Popen([sys.executable, '-c', code, 'kit-test-daemon'], start_new_session=True)\n"
          "print('daemon started')")
LOOP = "import subprocess\nsubprocess.Popen(['sleep', '913'])\nwhile True:\n    pass"


def spoilers(tmp_path):
    """A class with a victim, a deleter, a daemon and an infinite loop; the data folder with one course file."""
    klass, data = tmp_path / "class", tmp_path / "data"
    data.mkdir()
    (data / "course.txt").write_text("course data")
    notebook(klass / "张三" / "assignment.ipynb", scores(0.123, "张三"))
    (klass / "张三" / "notes.txt").write_text("mine")
    victims = [str(klass / "张三" / "notes.txt"), str(data / "course.txt")]
    notebook(klass / "Anne_Marie" / "assignment.ipynb", f"VICTIMS = {victims!r}\nCLASS = {str(klass)!r}\n" + DELETER)
    notebook(klass / "王芳" / "assignment.ipynb", f"LATE = {str(tmp_path / 'late.txt')!r}\n" + DAEMON)
    notebook(klass / "bob" / "assignment.ipynb", LOOP)
    return klass, data


def check_spoilers(table, tmp_path, klass, before, data_before, bwrap=False):
    rows = table.set_index("student")
    assert rows.loc["张三", "status"] == "ok" and "0.123" in rows.loc["张三", "numbers"]
    assert rows.loc["bob", "status"] == "timeout"
    assert rows.loc["王芳", "status"] == "ok"
    time.sleep(6)  # the daemon would have written by now
    assert not (tmp_path / "late.txt").exists(), "a daemon outlived its notebook"
    assert processes_with("kit-test-daemon") == [] and processes_with("sleep 913") == []
    assert tree_digest(klass) == before and tree_digest(tmp_path / "data") == data_before
    out = tmp_path / "out"
    printed = "".join(o.get("text", "") for c in nbformat.read(out / rows.loc["Anne_Marie", "executed"], as_version=4).cells
                      for o in c.get("outputs", []))
    if bwrap:  # prevented: nothing outside reachable, the data read-only
        assert "class folder visible: False" in printed and printed.count("refused") == 4
        assert "Read-only file system" in printed
    else:  # the copy took the damage; the originals were put back and the planted file quarantined
        assert rows.loc["Anne_Marie", "status"] == "wrote outside its folder"
        quarantined = out / Path(rows.loc["Anne_Marie", "executed"]).parts[0] / "quarantine" / "data" / "mine.txt"
        assert "restored" in rows.loc["Anne_Marie", "error"] and quarantined.exists()


def test_a_deleter_a_daemon_and_an_infinite_loop_spoil_nothing(tmp_path):
    klass, data = spoilers(tmp_path)
    before, data_before = tree_digest(klass), tree_digest(data)
    table = grade(klass, tmp_path / "out", data_dir=data, quick=True, timeout=15, jobs=2)
    check_spoilers(table, tmp_path, klass, before, data_before)


def test_bwrap_isolation_prevents_what_the_default_repairs(tmp_path):
    from encoding_kit.grading.isolation import check_isolation

    try:
        check_isolation("bwrap")
    except ValueError as exc:
        pytest.skip(str(exc))
    klass, data = spoilers(tmp_path)
    before, data_before = tree_digest(klass), tree_digest(data)
    table = grade(klass, tmp_path / "out", data_dir=data, quick=True, timeout=15, jobs=2, isolation="bwrap")
    check_spoilers(table, tmp_path, klass, before, data_before, bwrap=True)


def start_grading(tmp_path, klass, jobs, timeout=120):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "encoding_kit", "grade", str(klass), "--out", str(tmp_path / "out"),
                             "--data-dir", str(tmp_path / "data"), "--quick", "--timeout", str(timeout), "--jobs", str(jobs)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("jobs,signals", [(1, 1), (2, 1), (1, 2), (2, 2)])
def test_ctrl_c_stops_cleanly(tmp_path, jobs, signals):
    klass = tmp_path / "class"
    notebook(klass / "a_fast" / "assignment.ipynb", scores(0.2, "a_fast"))
    marker = f"sleep {700 + 10 * jobs + signals}"
    for name in ("b_slow", "c_slow"):
        notebook(klass / name / "assignment.ipynb", f"import subprocess\nsubprocess.run({marker.split()!r})")
    (tmp_path / "data").mkdir()
    proc = start_grading(tmp_path, klass, jobs)
    assert wait_for(lambda: processes_with(marker)), "no notebook started sleeping"
    for _ in range(signals):  # a second one at once: before the worker threads see the first and kill their jobs
        proc.send_signal(signal.SIGINT)
        time.sleep(0.02)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert wait_for(lambda: not processes_with(marker), 5), "a notebook process survived Ctrl-C"
    assert processes_with(str(klass)) == []  # nor the grader's own execution processes
    csv = tmp_path / "out" / "gradebook.csv"
    if signals == 2:
        assert stderr.startswith("Interrupted twice") and not csv.exists()
        return
    assert stderr.startswith("Interrupted:")
    status = dict(zip(*pd.read_csv(csv)[["student", "status"]].T.values))
    assert status["b_slow"] == "interrupted" and status["c_slow"] == "interrupted"
    assert status["a_fast"] == ("ok" if jobs == 1 else status["a_fast"])  # with 2 jobs it may have been stopped too


def test_a_spoiling_class_interrupted_and_regraded_ends_intact_with_a_correct_gradebook(tmp_path):
    """Issue 29's done-when: 6 submissions (colliding and Chinese names, a deleter, a forger, a daemon, a loop)."""
    klass, data = spoilers(tmp_path)  # 张三, Anne_Marie (deleter), 王芳 (daemon), bob (loop)
    notebook(klass / "Anne Marie" / "assignment.ipynb", scores(0.234, "Anne Marie"))
    notebook(klass / "李四" / "assignment.ipynb",
             "import os\nopen(f'/proc/{os.getppid()}/fd/1', 'w').write('KIT-GRADE-RESULT {\"status\": \"ok\"}\\n')\n"
             "os.kill(os.getppid(), 9)")
    before, data_before = tree_digest(klass), tree_digest(data)
    proc = start_grading(tmp_path, klass, 2, timeout=15)
    assert wait_for(lambda: processes_with("sleep 913")), "the looping notebook never started"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and stderr.startswith("Interrupted:"), stderr
    assert "interrupted" in set(pd.read_csv(tmp_path / "out" / "gradebook.csv")["status"])
    proc = start_grading(tmp_path, klass, 2, timeout=15)  # the re-run: the interrupted grading folder is moved aside
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "was moved to" in stdout
    table = pd.read_csv(tmp_path / "out" / "gradebook.csv")
    rows = table.set_index("student")
    assert rows.loc["李四", "status"] == "kernel died"
    assert rows.loc["Anne Marie", "status"] == "ok" and "0.234" in rows.loc["Anne Marie", "numbers"]
    assert rows.loc["Anne Marie", "executed"] != rows.loc["Anne_Marie", "executed"]
    check_spoilers(table, tmp_path, klass, before, data_before)


def test_bwrap_keeps_a_kit_or_python_under_tmp_visible(monkeypatch, tmp_path):
    """bwrap empties /tmp; a kit or venv that lives there (a student release unpacked in /tmp) is bound back read-only,
    after /tmp is emptied, or the kernel cannot start ("execvp .../.venv/bin/python: No such file or directory")."""
    import types

    from encoding_kit.grading.isolation import bwrap_command

    venv = Path("/tmp") / "a-kit-under-tmp" / ".venv"
    monkeypatch.setattr(sys, "prefix", str(venv))
    monkeypatch.setattr(sys, "executable", str(venv / "bin" / "python"))
    sandbox = types.SimpleNamespace(root=tmp_path / "box", data=tmp_path / "box" / "data")
    args = bwrap_command(sandbox, tmp_path / "box")
    binds = [args[i + 1] for i, a in enumerate(args) if a == "--ro-bind"]
    assert str(venv) in binds and str(venv / "bin") in binds
    assert args.index(str(venv)) > args.index("/tmp"), "bound before /tmp is emptied: hidden again"
