"""Shared fixtures: a small demo dataset made once per test session."""

import os
import sys
import tempfile
from pathlib import Path

import pytest

from encoding_kit.demo.generate import make_demo_dataset

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


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """A 6-subject x 300-TR demo dataset (folder path)."""

    return make_demo_dataset(tmp_path_factory.mktemp("demo"), n_subjects=6, n_trs=300, seed=1)


@pytest.fixture(scope="session")
def medium_demo(tmp_path_factory):
    """An 8-subject x 800-TR demo: long enough for recovery checks."""

    return make_demo_dataset(tmp_path_factory.mktemp("demo_medium"), n_subjects=8, n_trs=800, seed=2)
