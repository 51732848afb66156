"""scripts/gpu_check.py: skips cleanly without a GPU, and its comparison runs (CPU against CPU here)."""

import importlib.util
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from encoding_kit.features.models import standin

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_a_gpu_it_says_so_in_one_sentence_and_exits_0(monkeypatch, capsys):
    gpu_check = load_script()
    monkeypatch.setattr(gpu_check, "cuda_available", lambda: False)
    assert gpu_check.main([]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("No CUDA GPU") and out.count("\n") == 0


def test_the_script_exits_0_on_this_machine_without_a_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the script runs its checks instead of skipping")
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("No CUDA GPU"), done.stdout + done.stderr


def test_the_comparison_finds_no_difference_between_two_cpu_runs():
    gpu_check = load_script()
    models = {"gpt2": lambda: standin("gpt2", "gpt2"), "whisper": lambda: standin("whisper", "whisper"),
              "clap": lambda: standin("clap", "clap")}
    table = gpu_check.check_models(Namespace(words=40, trs=6), device="cpu", models=models)
    assert list(table.kind) == ["text", "audio", "audio", "text"]
    assert (table.max_rel_diff < 1e-5).all() and (table.median_r > 0.9999).all()
