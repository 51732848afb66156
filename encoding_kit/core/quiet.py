"""The one place where the kit silences messages it knows to be harmless (called when ``utils`` is imported).

Each filter matches one message by regex on one logger; nothing is silenced
wholesale, so any other warning of the same library still shows.

- transformers: "Token indices sequence length is longer than the specified
  maximum sequence length": the kit tokenizes the whole story once, then reads
  it in windows no longer than the model's maximum (``features/text.py``).
- nibabel: "pixdim[1,2,3] should be non-zero": the packaged surface files have
  no voxel size, which a surface mesh does not need.
- VTK: "bad X server connection": on Linux without a display VTK tries X
  first, warns, then renders offscreen with EGL; the kit asks for EGL directly.
- Headless runs (``$KIT_PROGRESS`` set by the runner and the grader): the
  "Loading weights" bars of transformers (see ``progress.py`` for the kit's own).
- Jupyter's "Kernel is running over TCP without encryption" is avoided where it
  arises: the runner and the grader start kernels over IPC on POSIX (``kernel.py``).
"""

from __future__ import annotations

import ctypes.util
import logging
import re
import sys

from .progress import PROGRESS_ENV
from .runtime import environment, set_environment

KNOWN_HARMLESS = {
    "transformers.tokenization_utils_base": r"Token indices sequence length is longer than the specified maximum",
    "nibabel.global": r"pixdim\[1,2,3\] should be non-zero",
}


class MessageFilter(logging.Filter):
    """Drop the records of one logger whose message matches ``pattern``."""

    def __init__(self, pattern):
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record):
        return not self.pattern.search(record.getMessage())


def silence_known_warnings():
    """Install the filters above (idempotent)."""
    for name, pattern in KNOWN_HARMLESS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, MessageFilter) and f.pattern.pattern == pattern for f in logger.filters):
            logger.addFilter(MessageFilter(pattern))
    _prefer_egl_without_display()
    if environment(PROGRESS_ENV).strip().lower() in ("final", "off"):
        _disable_transformers_bars()


def _prefer_egl_without_display():
    headless = sys.platform.startswith("linux") and not (environment("DISPLAY") or environment("WAYLAND_DISPLAY"))
    if headless and not environment("VTK_DEFAULT_OPENGL_WINDOW") and ctypes.util.find_library("EGL"):
        set_environment("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def _disable_transformers_bars():
    """transformers' and the Hub's progress bars off, without importing transformers (about 1 s) when not loaded.

    transformers reads the Hub's switch when it is first imported (``_tqdm_active``), so turning the Hub's bars off
    is enough until then; once imported, its own switch is turned off too.
    """
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        return
    try:
        from huggingface_hub.utils import disable_progress_bars
    except ImportError:
        return
    disable_progress_bars()
