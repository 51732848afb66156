"""Readable executed notebooks: progress bars and the known-harmless messages (encoding_kit/core/progress.py, quiet.py)."""

import io
import logging
import os

import pytest

from encoding_kit.core import progress
from encoding_kit.core.quiet import KNOWN_HARMLESS, silence_known_warnings


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.mark.parametrize("logger_name, harmless, other", [
    ("transformers.tokenization_utils_base",
     "Token indices sequence length is longer than the specified maximum sequence length for this model (7806 > 512). "
     "Running this sequence through the model will result in indexing errors", "Some other tokenizer warning"),
    ("nibabel.global", "pixdim[1,2,3] should be non-zero; setting 0 dims to 1", "pixdim[1,2,3] should be positive"),
])
def test_only_the_known_harmless_message_is_silenced(logger_name, harmless, other):
    silence_known_warnings()
    silence_known_warnings()  # idempotent: one filter per logger
    logger = logging.getLogger(logger_name)
    assert len(logger.filters) == 1
    seen = Collect()
    logger.addHandler(seen)
    try:
        logger.warning(harmless)
        logger.warning(other)
    finally:
        logger.removeHandler(seen)
    assert seen.messages == [other]
    assert set(KNOWN_HARMLESS) == {"transformers.tokenization_utils_base", "nibabel.global"}


def test_vtk_is_asked_for_egl_only_without_a_display(monkeypatch):
    from encoding_kit.core import quiet

    monkeypatch.setattr(quiet.ctypes.util, "find_library", lambda name: "libEGL.so.1")
    monkeypatch.setattr(quiet.sys, "platform", "linux")
    monkeypatch.delenv("VTK_DEFAULT_OPENGL_WINDOW", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    quiet._prefer_egl_without_display()
    assert "VTK_DEFAULT_OPENGL_WINDOW" not in os.environ
    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    quiet._prefer_egl_without_display()
    assert os.environ["VTK_DEFAULT_OPENGL_WINDOW"] == "vtkEGLRenderWindow"


def test_headless_bars_print_one_final_line_and_only_when_they_stay(monkeypatch):
    monkeypatch.setenv(progress.PROGRESS_ENV, "final")
    out = io.StringIO()
    for _ in progress.tqdm(range(500), desc="encoding folds", file=out):
        pass
    with progress.tqdm(total=3, desc="inner", file=out, leave=False) as bar:
        bar.update(3)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("encoding folds: 100%") and "500/500" in lines[0]
    assert "\r" not in out.getvalue()


def test_bars_are_tqdm_auto_unless_headless_and_none_when_off(monkeypatch):
    from tqdm.auto import tqdm as auto

    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    with progress.tqdm(range(2), file=io.StringIO()) as bar:
        assert type(bar) is auto
    monkeypatch.setenv(progress.PROGRESS_ENV, "off")
    out = io.StringIO()
    for _ in progress.tqdm(range(50), file=out):
        pass
    assert out.getvalue() == ""


def test_kit_modules_take_their_bars_from_progress():
    from conftest import ROOT

    direct = [p.relative_to(ROOT).as_posix() for p in (ROOT / "encoding_kit").rglob("*.py")
              if "from tqdm" in p.read_text() and p.name != "progress.py"]
    assert direct == []


def test_headless_kernels_talk_over_ipc_and_get_headless_bars(monkeypatch):
    import os

    from encoding_kit.run.kernel import headless_kernel

    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    with headless_kernel("python3") as km:
        if os.name == "posix":  # set for the kernel only: concurrent notebooks never change this process's env
            assert km.transport == "ipc"
            assert km.kit_env[progress.PROGRESS_ENV] == "final" and progress.PROGRESS_ENV not in os.environ
        else:
            assert os.environ[progress.PROGRESS_ENV] == "final"
    assert progress.PROGRESS_ENV not in os.environ


@pytest.mark.parametrize("import_first", [False, True])
def test_headless_bars_turn_transformers_bars_off_without_importing_it(import_first):
    """Headless (``final``), transformers' bars are off whether it is imported before or after; not imported by it."""
    import subprocess
    import sys

    from conftest import ROOT

    code = ("import sys\n" + ("import transformers\n" if import_first else "")
            + "from encoding_kit.core.quiet import silence_known_warnings\n"
            "silence_known_warnings()\n"
            "print('imported', 'transformers' in sys.modules)\n"
            "from transformers.utils import logging\n"
            "print('bars', logging.is_progress_bar_enabled())\n")
    env = {**os.environ, progress.PROGRESS_ENV: "final", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout.split("\n")
    assert out[:2] == [f"imported {import_first}", "bars False"]
