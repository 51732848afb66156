"""``utils``, the notebooks' one import surface: every public name resolves, and importing it stays cheap.

Every notebook's kernel imports ``utils``; names whose modules import torch (brain tuning, notebook 08 only) are
imported on first use, so a kernel that never tunes does not pay for torch.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import utils

ROOT = Path(__file__).resolve().parent.parent


def test_a_kernel_that_runs_no_model_does_not_import_torch():
    """`import utils` and the first cell's run-time line (float32 asked for: no CPU probe) leave torch unimported."""
    code = ("import sys, utils; utils.run_time_line('04'); "
            "print(sorted(m for m in ('torch', 'encoding_kit.brain_tuning') if m in sys.modules))")
    env = {**os.environ, "ENCODING_KIT_PRECISION": "float32"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]", f"`import utils` and `utils.run_time_line` imported {out.strip()}"


def test_every_public_name_resolves_and_is_listed():
    from encoding_kit import brain_tuning

    for name in utils.__all__:
        assert getattr(utils, name) is not None, name
    assert set(utils.__all__) <= set(dir(utils))
    assert utils.BrainTuningStudy is brain_tuning.BrainTuningStudy
    assert utils.tuning_verdict_text is brain_tuning.tuning_verdict_text


def test_an_unknown_name_is_refused_by_utils():
    with pytest.raises(AttributeError, match="'utils' has no attribute 'no_such_name'"):
        utils.no_such_name  # noqa: B018
