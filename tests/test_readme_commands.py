"""The README's and the TA guide's commands run as written (the grading block's one source:
encoding_kit/run/commands.py); the README stays short; the kit's kernel and packaging."""

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT

from encoding_kit.grading.synthetic import WRITE_RESULTS, notebook
from encoding_kit.run.commands import ACTIVATE, GRADING_COMMANDS, RELEASE_COMMANDS, RUN_QUICK
from encoding_kit.run.kernel import KERNEL_NAME, install_kernel

README_LIMIT = 8 * 1024  # bytes: a README a student reads in one go; the rest is in docs/


def command_lines():
    """The runnable lines of the TA guide's block (not comments, not the DATA= example, not `run`: test_notebooks runs it)."""
    lines = [ln for ln in GRADING_COMMANDS.splitlines() if ln.strip() and not ln.startswith("#")]
    return [ln for ln in lines if not ln.startswith("DATA=") and ln != RUN_QUICK]


def kit_installed():
    """True when this Python finds `utils` and `encoding_kit` from a folder outside the kit (as `make` installs them)."""
    code = "import importlib.util as u; assert u.find_spec('utils') and u.find_spec('encoding_kit')"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", code], cwd=tempfile.gettempdir(), env=env, capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def kit_env(tmp_path_factory):
    """Environment for the commands: a plain shell's PATH (the venv's scripts left out: the README's block activates
    it); the kit's kernel (a temporary one when `make` has not installed it); this checkout of the kit first on
    PYTHONPATH (tests run before `make`, or in a second checkout)."""
    from jupyter_client.kernelspec import KernelSpecManager

    venv_bin = str(Path(sys.executable).parent)
    plain = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p and p != venv_bin)
    env = {**{k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}, "PATH": plain, "MPLBACKEND": "Agg",
           "HF_HUB_OFFLINE": "1"}
    if KERNEL_NAME not in KernelSpecManager().find_kernel_specs():
        prefix = tmp_path_factory.mktemp("kernel")
        install_kernel(prefix)
        env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(prefix / "share" / "jupyter"), env.get("JUPYTER_PATH")) if p)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def test_the_ta_guide_quotes_the_grading_commands_verbatim_and_the_readme_links_it():
    guide = (ROOT / "docs" / "ta_guide.md").read_text()
    assert f"```bash\n{GRADING_COMMANDS}```" in guide
    assert len(command_lines()) == 5 and command_lines()[0] == ACTIVATE
    assert "(docs/ta_guide.md)" in (ROOT / "README.md").read_text()


def test_the_readme_is_short():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes, over {README_LIMIT}: move the detail into docs/"


def readme_commands():
    """Every command line of the README's ```bash blocks, without its comment."""
    blocks = (ROOT / "README.md").read_text().split("```bash\n")[1:]
    lines = [ln.split("#")[0].strip() for block in blocks for ln in block.split("```")[0].splitlines()]
    return [ln for ln in lines if ln]


def makefile_recipe():
    """The Makefile's targets and its recipe lines written as a student types them without `make`."""
    text = (ROOT / "Makefile").read_text()
    targets = {ln.split(":")[0] for ln in text.splitlines() if ln and not ln[0].isspace() and ":" in ln and "=" not in ln}
    recipe = " ".join(ln.strip() for ln in text.splitlines() if ln.startswith("\t"))
    recipe = recipe.replace("$(BIN)/python -m pip install -q ", "pip install ").replace("$(BIN)/", "")
    return targets, recipe


def test_every_readme_command_is_a_make_target_or_a_line_of_its_recipe():
    """`make X` names a target; each line of the "Without make" block is what `make` itself runs (CI runs `make test`,
    tests/test_browser.py `make lab`), so the two ways of installing cannot drift apart."""
    targets, recipe = makefile_recipe()
    commands = readme_commands()
    assert "make lab" in commands and "make run" in commands and "make test" in commands
    for line in commands:
        if line.startswith("make "):
            assert line.split()[1] in targets, f"README runs `{line}`, which is no target of the Makefile"
        elif line.startswith(("python -m venv", ".venv")):
            continue
        else:
            assert line in recipe, f"README's `{line}` is not what the Makefile runs"


def test_readme_commands_run_on_a_tiny_demo(tmp_path, small_demo, kit_env, model_copies):
    """The TA guide's grading block, verbatim, pasted into one plain bash (no venv on PATH) in a folder laid out as the
    kit's (its notebooks, its .venv)."""
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("*.py"))
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))  # the kit's folder holds the venv `make` built
    notebook(tmp_path / "submissions" / "alice" / "assignment.ipynb", WRITE_RESULTS)
    notebook(tmp_path / "submissions" / "bob" / "assignment.ipynb", "raise ValueError('planted failure')")
    env = {**kit_env, "DATA": str(small_demo), "KIT_FEATURE_DIR": str(model_copies(tmp_path / "features"))}
    plain = subprocess.run(["bash", "-c", "command -v papermill jupyter || true"], env=env, capture_output=True, text=True)
    assert plain.stdout.strip() == "", "the test's shell must not find the venv's commands before the block activates it"
    script = "set -e\n" + "\n".join(command_lines())
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    executed = nbformat.read(tmp_path / "01_graded.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    assert (tmp_path / "graded" / "assignment.ipynb").exists() and (tmp_path / "graded" / "assignment.html").exists()
    gradebook = (tmp_path / "grading" / "gradebook.csv").read_text()
    assert "alice,assignment.ipynb,ok" in gradebook and "bob,assignment.ipynb,error" in gradebook


def test_the_ta_guide_quotes_the_release_commands_verbatim_and_they_run(tmp_path, small_demo, kit_env):
    """The release and rubric block, verbatim, in one plain bash (no venv on PATH): two kits, a rubric copied and
    checked, and a class of two (the assignment's solution cells and a copy with no gap) graded with it."""
    from encoding_kit.grading.synthetic import notebook as write_notebook
    from encoding_kit.teach.synthetic import submission_cells

    assert f"```bash\n{RELEASE_COMMANDS}```" in (ROOT / "docs" / "ta_guide.md").read_text()
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    write_notebook(tmp_path / "submissions" / "alice" / "assignment.ipynb", *submission_cells())
    write_notebook(tmp_path / "submissions" / "bob" / "assignment.ipynb", *submission_cells(mistake="hidden_gap"))
    lines = [ln for ln in RELEASE_COMMANDS.splitlines() if ln.strip() and not ln.startswith(("#", "DATA="))]
    script = "set -e\n" + "\n".join(lines)
    env = {**kit_env, "DATA": str(small_demo)}
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert "raise NotImplementedError(" in (tmp_path / "student-kit" / "assignment.ipynb").read_text()
    assert (tmp_path / "ta-kit" / "solutions" / "assignment.ipynb").exists()
    assert not (tmp_path / "student-kit" / "solutions").exists()
    lms = (tmp_path / "grading" / "lms.csv").read_text().splitlines()
    assert lms[0] == "student_id,total" and len(lms) == 3
    totals = dict(line.split(",") for line in lms[1:])
    assert float(totals["alice"]) - float(totals["bob"]) == 5  # bob's folds have no gap: the hidden test's 5 points


def test_the_notebook_run_test_executes_the_readme_command():
    assert "RUN_QUICK" in (ROOT / "tests" / "test_notebooks.py").read_text()


def test_the_kit_kernel_imports_utils_from_any_folder(tmp_path, kit_env):
    """The `encoding-kit` kernelspec (installed by `make`, else a temporary one) starts in a folder outside the kit."""
    from jupyter_client.manager import start_new_kernel

    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "PYTHONPATH")}
    os.environ.update({k: kit_env[k] for k in saved if k in kit_env})
    try:
        km, kc = start_new_kernel(kernel_name=KERNEL_NAME, cwd=str(tmp_path))
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    try:
        reply = kc.execute_interactive("import os, utils, encoding_kit; print(os.getcwd(), utils.__file__)", timeout=120)
        assert reply["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert km.kernel_spec.display_name == "Python (encoding-kit)"


def test_the_kit_installs_utils_as_a_top_level_module():
    project = pytest.importorskip("tomllib").loads((ROOT / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["py-modules"] == ["utils"]
    if kit_installed():
        files = {str(f) for f in importlib.metadata.distribution("encoding-kit").files or []}
        assert any("editable" in f or f == "utils.py" for f in files), files


def test_pyproject_dependencies_are_the_requirements_ranges():
    project = pytest.importorskip("tomllib").loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"]) | {d for extra in project["optional-dependencies"].values() for d in extra}
    required = {ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")}
    assert declared == required, (declared ^ required)
    assert set(project["optional-dependencies"]) == {"maps", "notebooks", "dev", "docs"}


def test_no_sys_path_edits_left_for_importing_the_kit():
    sources = [ROOT / "assignment.py", *(ROOT / "notebooks").glob("*.py"), *(ROOT / "scripts").glob("*.py"),
               *(ROOT / "benchmarks").glob("*.py")]
    offenders = [p.name for p in sources if "sys.path.insert" in p.read_text()]
    assert offenders == []


def test_make_installs_the_kit_and_its_kernel_and_make_lab_opens_jupyterlab():
    makefile = (ROOT / "Makefile").read_text()
    assert "$(BIN)/python -m pip install -q --no-deps -e ." in makefile
    assert "$(BIN)/python -m encoding_kit kernel" in makefile
    assert "lab: $(STAMP)\n\t$(BIN)/jupyter lab" in makefile


def test_without_the_kit_kernel_the_runner_says_which_kernel_it_uses(monkeypatch, capsys):
    from jupyter_client import kernelspec

    from encoding_kit.run import kernel

    monkeypatch.setattr(kernelspec.KernelSpecManager, "find_kernel_specs", lambda self: {"python3": "/x"})
    assert kernel.kernel_name() == "python3"
    assert "'encoding-kit' is not installed" in capsys.readouterr().err
    monkeypatch.setattr(kernelspec.KernelSpecManager, "find_kernel_specs", lambda self: {"encoding-kit": "/y"})
    assert kernel.kernel_name() == "encoding-kit"
