"""Precision: float32 or bf16 autocast, chosen per machine and overridable; model inputs always in float32.

What is asserted: ``ENCODING_KIT_PRECISION`` chooses (``float32`` wins on
every device, ``bf16`` forces autocast, ``auto`` follows the CPU's native bf16)
and a bad value is refused naming the variable; in bf16 every model family's
features come back as float32 arrays, differ from float32's (autocast did run)
but stay close to them, and are cached apart from them; log-mel inputs are the
same inside autocast; Whisper's shared padding computed under autocast is never
served to a float32 run. The suite itself runs in float32 (conftest), so its
exactness tests hold on every CPU; the fidelity of bf16 on real weights is
measured by ``benchmarks/bench_fast_paths.py --only bf16``.
"""

import numpy as np
import pytest
import torch

from encoding_kit.core import runtime
from encoding_kit.data.story import load_story
from encoding_kit.features import whisper_padding
from encoding_kit.features.audio import extract_audio_features
from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.families.clap import clap_log_mel
from encoding_kit.features.models import standin
from encoding_kit.features.text import extract_text_features
from encoding_kit.features.wavlm_layout import store_attention_input_time_first
from encoding_kit.features.whisper_decoder import whisper_decoder_features

SR = 16000
CPU = torch.device("cpu")


@pytest.mark.parametrize("value, native, cpu, cuda", [
    ("float32", True, "float32", "float32"),
    ("bf16", False, "bf16-autocast", "bf16-autocast"),
    ("auto", True, "bf16-autocast", "bf16-autocast"),
    ("auto", False, "float32", "bf16-autocast"),
    (None, False, "float32", "bf16-autocast"),
    (" BF16 ", False, "bf16-autocast", "bf16-autocast"),
])
def test_the_variable_and_the_cpu_choose_the_precision(monkeypatch, value, native, cpu, cuda):
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: native)
    if value is None:
        monkeypatch.delenv(runtime.PRECISION_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(runtime.PRECISION_VARIABLE, value)
    assert runtime.precision(CPU) == cpu
    assert runtime.precision(torch.device("cuda")) == cuda
    assert runtime.precision(torch.device("mps")) == "float32"  # no bf16 autocast there
    assert isinstance(runtime.autocast(CPU), torch.autocast) == (cpu == "bf16-autocast")


@pytest.mark.parametrize("value", ["float32", "bf16", "auto", None])
@pytest.mark.parametrize("device", ["cpu", "cuda", "mps"])
@pytest.mark.parametrize("native", [False, True])
def test_run_precision_is_the_precision_of_the_device_the_run_uses(monkeypatch, value, device, native):
    """The cache keys' precision, read without torch under float32, is the one of the device the run picks."""
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(runtime, "torch_device", lambda d=None: torch.device(d or device))
    if value is None:
        monkeypatch.delenv(runtime.PRECISION_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(runtime.PRECISION_VARIABLE, value)
    assert runtime.run_precision() == runtime.precision(torch.device(device))
    assert runtime.run_precision("cpu") == runtime.precision(CPU)


def test_run_precision_under_float32_does_not_import_torch():
    import os
    import subprocess
    import sys

    from conftest import ROOT

    code = ("import sys\nfrom encoding_kit.core.runtime import run_precision\n"
            "print(run_precision(), 'torch' in sys.modules)\n")
    env = {**os.environ, runtime.PRECISION_VARIABLE: "float32", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "float32 False"


def test_gpu_available_agrees_with_torch_and_skips_it_without_a_gpu_driver():
    import os
    import subprocess
    import sys

    from conftest import ROOT

    assert runtime.gpu_available() == torch.cuda.is_available()
    if not sys.platform.startswith("linux"):
        return
    code = ("import sys\nfrom encoding_kit.core import runtime\nruntime.GPU_DRIVER_FILES = ('/no/such/driver',)\n"
            "print(runtime.gpu_available(), runtime.ridge_backend(), 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False numpy False"
    wsl2 = ("import os, sys\nfrom encoding_kit.core import runtime\nreal = os.path.exists\n"
            "os.path.exists = lambda f: f == '/dev/dxg' or (real(f) and f not in runtime.GPU_DRIVER_FILES)\n"
            "runtime.gpu_available()\nprint('torch' in sys.modules)\n")  # CUDA on WSL2: only /dev/dxg, torch asked
    out = subprocess.run([sys.executable, "-c", wsl2], env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "True"


def test_a_bad_precision_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv(runtime.PRECISION_VARIABLE, "half")
    with pytest.raises(ValueError, match="ENCODING_KIT_PRECISION must be one of auto, float32, bf16, got 'half'"):
        runtime.precision(CPU)


def test_log_mel_inputs_are_computed_in_float32_inside_autocast():
    rng = np.random.default_rng(0)
    batch = (0.1 * rng.standard_normal((3, 3 * SR))).astype(np.float32)
    whisper = standin("whisper", "whisper").processor
    clap = standin("clap", "clap").processor.feature_extractor
    clap_batch = np.repeat(batch, 3, axis=1)[:, : int(clap.max_length_s * clap.sampling_rate)]
    mel, levels = whisper_padding.window_log_mel(whisper, batch, SR)
    clap_mel = clap_log_mel(clap_batch, clap)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mel_bf16, levels_bf16 = whisper_padding.window_log_mel(whisper, batch, SR)
        clap_bf16 = clap_log_mel(clap_batch, clap)
    assert mel_bf16.dtype == clap_bf16.dtype == torch.float32
    np.testing.assert_array_equal(mel_bf16.numpy(), mel.numpy())
    np.testing.assert_array_equal(levels_bf16, levels)
    np.testing.assert_array_equal(clap_bf16.numpy(), clap_mel.numpy())


def median_dimension_r(a, b):
    a, b = a - a.mean(0), b - b.mean(0)
    norm = np.sqrt((a ** 2).sum(0) * (b ** 2).sum(0))
    return float(np.median((a * b).sum(0)[norm > 0] / norm[norm > 0]))


def extract(kind, story, tmp_path):
    """Features of every layer of a tiny random model of ``kind``, cached in ``tmp_path``."""
    kw = dict(run=ExtractionRun(cache_dir=tmp_path, progress=False))
    if kind in ("bert", "gpt2"):
        return extract_text_features(story.words, standin(f"random-{kind}", kind), context_tokens=32, **kw)
    audio = dict(kw, run=kw["run"].replace(allow_short_audio=True))
    if kind == "whisper-decoder":
        out = whisper_decoder_features(story.wav, story.sr, story.words, story.n_trs, standin("whisper", "whisper"),
                                       whisper_input="shared_padding", **audio)
        return out
    return extract_audio_features(story.wav, story.sr, story.n_trs, standin(kind, kind), **audio)


@pytest.mark.parametrize("kind", ["bert", "gpt2", "wav2vec2", "wavlm", "whisper", "whisper-decoder", "clap"])
def test_bf16_features_are_float32_arrays_near_float32s_and_cached_apart(monkeypatch, small_demo, tmp_path, kind):
    story = load_story(small_demo, max_trs=24)
    monkeypatch.setenv(runtime.PRECISION_VARIABLE, "float32")
    exact = extract(kind, story, tmp_path)
    monkeypatch.setenv(runtime.PRECISION_VARIABLE, "bf16")
    fast = extract(kind, story, tmp_path)  # same cache folder: a float32 entry must not be served
    assert set(fast) == set(exact)
    for layer in exact:
        assert fast[layer].dtype == np.float32 and fast[layer].shape == exact[layer].shape
        assert np.isfinite(fast[layer]).all()
        assert median_dimension_r(exact[layer], fast[layer]) > 0.9, layer
    assert any(not np.array_equal(exact[layer], fast[layer]) for layer in exact)  # bf16 did run
    monkeypatch.setenv(runtime.PRECISION_VARIABLE, "float32")
    again = extract(kind, story, tmp_path)
    for layer in exact:
        np.testing.assert_array_equal(again[layer], exact[layer])  # and float32 gets its own entry back


def test_shared_padding_computed_under_autocast_is_not_served_to_float32():
    whisper_padding._CACHES.clear()
    whisper = standin("whisper", "whisper")
    batch = (0.1 * np.random.default_rng(1).standard_normal((2, 3 * SR))).astype(np.float32)
    encoder, extractor = whisper.model.encoder, whisper.processor
    with torch.inference_mode():
        exact = whisper_padding.shared_padding_states(encoder, extractor, batch, SR, CPU)
        whisper_padding._CACHES.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            whisper_padding.shared_padding_states(encoder, extractor, batch, SR, CPU)
        after_bf16 = whisper_padding.shared_padding_states(encoder, extractor, batch, SR, CPU)
    whisper_padding._CACHES.clear()
    for a, b in zip(exact, after_bf16):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_wavlm_attention_reads_its_input_time_first_and_its_features_do_not_change(monkeypatch, small_demo, tmp_path):
    """WavLM's attention projects a transposed view of its input: stored time-first, that view is contiguous, so the
    projections stay one matrix product under CPU bf16 autocast (features/wavlm_layout.py); the values are the same."""
    lm = standin("wavlm", "wavlm")
    lm.model.eval()
    rng = np.random.default_rng(3)
    x = torch.from_numpy((0.1 * rng.standard_normal((2, 3 * SR))).astype(np.float32))
    with torch.inference_mode():
        plain = lm.model(x, output_hidden_states=True).hidden_states
    assert store_attention_input_time_first(lm.model) == len(lm.model.encoder.layers)
    assert store_attention_input_time_first(lm.model) == len(lm.model.encoder.layers)  # installed once
    seen = []  # a probe registered after the kit's hook sees what the attention receives
    lm.model.encoder.layers[0].attention.register_forward_pre_hook(lambda m, args, kwargs: seen.append(
        (args[0] if args else kwargs["hidden_states"]).transpose(0, 1).is_contiguous()), with_kwargs=True)
    with torch.inference_mode():
        time_first = lm.model(x, output_hidden_states=True).hidden_states
    assert seen == [True]
    for a, b in zip(plain, time_first):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    story = load_story(small_demo, max_trs=24)
    monkeypatch.setenv(runtime.PRECISION_VARIABLE, "bf16")
    fresh = standin("wavlm", "wavlm")
    extract_audio_features(story.wav, story.sr, story.n_trs, fresh,
                           run=ExtractionRun(cache=False, progress=False, allow_short_audio=True))
    assert all(getattr(layer.attention, "_kit_time_first", False) for layer in fresh.model.encoder.layers)
