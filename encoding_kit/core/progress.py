"""Progress bars: widgets in Jupyter, a live bar in a terminal, one final line in headless runs.

Every bar of the kit comes from here (``from ..progress import tqdm``). In
Jupyter with ipywidgets, ``tqdm.auto`` draws a widget; in a terminal, a text
bar. A headless execution (papermill / nbclient, started by ``python -m
encoding_kit run`` or ``grade``, which set ``KIT_PROGRESS=final``) has no widget
frontend: each redraw of a text bar would be one more stderr output in the
executed notebook (hundreds per cell). There a bar prints nothing while it runs
and one line when it closes, and only if it is meant to stay (``leave=True``).
"""

from __future__ import annotations

import io
import sys

from tqdm.auto import tqdm as _auto_tqdm
from tqdm.std import tqdm as _text_tqdm

from .runtime import environment

PROGRESS_ENV = "KIT_PROGRESS"  # "final": one line per finished bar; "off": none; unset: tqdm.auto


class FinalLineTqdm(_text_tqdm):
    """A text bar that draws nothing while running and prints its final state once, on close."""

    def __init__(self, *args, file=None, leave=True, **kwargs):
        self._final_file = file or sys.stderr
        self._final_leave = leave
        kwargs.pop("mininterval", None)
        super().__init__(*args, file=io.StringIO(), leave=leave, mininterval=float("inf"), **kwargs)

    def close(self):
        if self.disable:
            return
        line = self.format_meter(**{**self.format_dict, "ncols": 100})
        super().close()
        if self._final_leave:
            print(line, file=self._final_file, flush=True)


def _chosen_class():
    mode = environment(PROGRESS_ENV).strip().lower()
    if mode == "final":
        return FinalLineTqdm
    if mode == "off":
        return None
    return _auto_tqdm


def tqdm(*args, **kwargs):
    """``tqdm.auto.tqdm``, or one final line per bar when ``$KIT_PROGRESS`` is ``final`` (none when ``off``)."""
    cls = _chosen_class()
    if cls is None:
        kwargs["disable"] = True
        cls = _text_tqdm
    return cls(*args, **kwargs)
