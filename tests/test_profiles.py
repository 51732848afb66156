"""Run profiles: parameters the notebooks know, the course's coverage, an estimate printed before the run."""

import re
from pathlib import Path

import pytest

from encoding_kit.run import cpu_speed, profiles, runner

ROOT = Path(__file__).resolve().parents[1]


def parameter_cell(stem):
    text = (ROOT / ("assignment.py" if stem == "assignment" else f"notebooks/{stem}.py")).read_text()
    return text.split("# %% tags=[\"parameters\"]")[1].split("# %%")[0]


@pytest.mark.parametrize("profile", list(profiles.PROFILES))
def test_every_profile_parameter_is_a_parameter_of_its_notebook(profile):
    for stem, params in profiles.PROFILES[profile].items():
        cell = parameter_cell(stem)
        for name in params:
            assert re.search(rf"^{name} = ", cell, re.M), f"{stem} has no parameter {name}"


def test_laptop_keeps_three_models_per_modality_each_with_a_layer_profile():
    laptop = profiles.extractions("laptop")
    # every model with all layers extracted (no layers= in the notebooks that sweep layers: 01, 02, 03)
    swept = {(m, k) for nb, m, k, _ in laptop if nb in ("assignment", "01", "02", "03")}
    text = {m for m, k in swept if k == "text"}
    audio = {m for m, k in swept if k == "audio"}
    assert len(text) >= 3 and len(audio) >= 3
    assert {m for nb, m, k, _ in laptop if nb == "02"} == set(profiles.PROFILES["laptop"]["02_audio_models"]["MODELS"])


def test_laptop_is_cheaper_and_says_what_it_leaves_out():
    full, laptop = profiles.estimate("full", runner=True), profiles.estimate("laptop", runner=True)
    assert laptop.loc["total", "total_min"] < 0.7 * full.loc["total", "total_min"]
    text = profiles.describe("laptop")
    assert "Left out" in text and "HuBERT" in text and f"{laptop.loc['total', 'total_min']:.0f} min" in text
    assert "Left out" not in profiles.describe("full")
    with pytest.raises(ValueError, match="profile must be one of full, laptop"):
        profiles.parameters("night", "01_text_models")


def test_the_runner_prints_the_estimate_first_and_passes_the_profile(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr(runner, "ensure_data", lambda data_dir: (tmp_path, "demo"))
    monkeypatch.setattr(runner, "execute_notebook", lambda path, out, params, **k: calls.append((path.stem, params)))
    runner.run_all(root=ROOT, only=["02_audio", "05_window"], profile="laptop")
    out = capsys.readouterr().out
    assert out.index("Profile 'laptop'") < out.index("=== notebooks/02_audio_models.ipynb")
    params = dict(calls)
    assert params["02_audio_models"]["MODELS"] == ["facebook/wav2vec2-base"]
    assert params["05_window_pooling_sweeps"]["AUDIO_WINDOWS"] == [2] and params["02_audio_models"]["QUICK"] is False


@pytest.mark.parametrize("notebook", profiles.NOTEBOOKS)
def test_the_run_time_line_a_notebook_prints_is_the_estimate(notebook, monkeypatch):
    """The one line a notebook's setup cell prints (tests/test_notebooks.py checks that it does) holds the estimate."""
    monkeypatch.setattr(cpu_speed, "cpu_features", lambda: {"AVX2": True, "AVX512F": True})
    line = profiles.run_time_line(notebook, precision=profiles.FLOAT32)
    expected = [profiles.real_run_minutes(notebook, profile, precision) for profile in ("full", "quick")
                for precision in (profiles.BF16, profiles.FLOAT32)]
    stated = re.search(r"about (\d+) min in bf16, (\d+) min in float32 \(`make run`\); (\d+) / (\d+) min with `--quick`",
                       line)
    assert stated and [int(x) for x in stated.groups()] == expected, (line, expected)
    assert "\n" not in line and line.endswith("This CPU runs float32; the demo's stand-ins are faster.")
    if notebook != "assignment":
        stem = next((ROOT / "notebooks").glob(f"{notebook}_*.py")).stem
        assert profiles.run_time_line(stem, precision=profiles.FLOAT32) == line
    with pytest.raises(ValueError, match="notebook must be 'assignment' or one of the numbers"):
        profiles.run_time_line("10")


def test_the_estimate_follows_the_machines_precision(monkeypatch):
    monkeypatch.setenv("ENCODING_KIT_PRECISION", "bf16")
    bf16 = profiles.estimate("full", runner=True)
    assert bf16.equals(profiles.estimate("full", precision=profiles.BF16, runner=True))
    text = profiles.describe("full")
    assert f"about {bf16.loc['total', 'total_min']:.0f} min on a 2-core CPU like this one (in bf16" in text
    monkeypatch.setenv("ENCODING_KIT_PRECISION", "float32")
    float32 = profiles.estimate("full", runner=True)
    assert float32.equals(profiles.estimate("full", precision=profiles.FLOAT32, runner=True))
    assert f"about {bf16.loc['total', 'total_min']:.0f} min in bf16" in profiles.describe("full")
    assert bf16.loc["total", "extraction_min"] < 0.7 * float32.loc["total", "extraction_min"]
    assert bf16.loc["total", "ridge_min"] == float32.loc["total", "ridge_min"]  # numpy: no autocast
    for precision in (profiles.BF16, profiles.FLOAT32):  # every setting of every run timed in both
        assert {profiles.setting_label(m, k, s) for _, m, k, s in [*profiles.extractions("full"),
                                                                  *profiles.QUICK_EXTRACTIONS]} \
            <= set(profiles.PER_UNIT_MS[precision])


def test_every_notebook_is_in_the_profiles():
    stems = ["assignment", *sorted(p.name[:2] for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    assert list(profiles.NOTEBOOKS) == stems


@pytest.mark.parametrize("family, passed", [("whisper", True), ("wav2vec2", False)])
def test_whisper_input_reaches_whisper_only(monkeypatch, family, passed):
    """The notebooks pass WHISPER_INPUT whatever AUDIO_MODEL a student picks; only Whisper receives it."""
    from types import SimpleNamespace

    from encoding_kit.data.timebase import TimeBase
    from encoding_kit.run import sweeps

    seen = {}
    monkeypatch.setattr(sweeps, "extract_audio_features", lambda *a, **kw: seen.update(kw) or {})
    story = SimpleNamespace(wav=None, sr=16000, n_trs=3, timebase=TimeBase(1.5, 2.0))
    sweeps.audio_layers(story, SimpleNamespace(family=family), whisper_input="window")
    assert (seen.get("whisper_input") == "window") is passed
    assert seen["timebase"] == TimeBase(1.5, 2.0)  # the audio windows are cut on the story's time base


WHISPER_NOTEBOOKS = ("assignment", "03_multimodal_models", "04_multi_subject", "05_window_pooling_sweeps",
                     "06_brain_maps", "07_nonlinear_and_decoding")


def test_every_estimate_times_the_whisper_input_the_notebooks_read():
    """The notebooks read Whisper with the shared padding by default, no profile changes it, and every estimate
    times that input (09's sub-TR frames read the window alone, its own default)."""
    for stem in WHISPER_NOTEBOOKS:
        assert re.search(r'^WHISPER_INPUT = "shared_padding"', parameter_cell(stem), re.M), stem
    assert re.search(r'^LAYER_INPUT = "shared_padding"', parameter_cell("09_speech_interpretation"), re.M)
    assert not any("WHISPER_INPUT" in params for profile in profiles.PROFILES.values() for params in profile.values())
    for settings_list in (profiles.extractions("full"), profiles.extractions("laptop"), profiles.QUICK_EXTRACTIONS):
        whisper = [s for nb, m, k, s in settings_list if m.startswith("openai/whisper") and s.get("part") != "frames"]
        assert whisper and all(s["whisper_input"] == "shared_padding" for s in whisper)


def test_the_quick_run_is_estimated_and_printed_before_it_starts():
    quick, full = profiles.estimate("quick", runner=True), profiles.estimate("full", runner=True)
    assert 0 < quick.loc["total", "total_min"] < 0.2 * full.loc["total", "total_min"]
    counted = ({n for n, *_ in profiles.QUICK_EXTRACTIONS} | {n for n, c in profiles.QUICK_RIDGE.items() if c > 0}
               | set(profiles.NETWORK_MIN["quick"]))
    assert counted == set(profiles.NOTEBOOKS)  # every notebook's work is counted (04 and 06 round to 0.0 min)
    assert f"{quick.loc['total', 'total_min']:.0f} min" in profiles.describe("quick")


def quick_cell(stem):
    """The ``if QUICK:`` block of a notebook's setup cell."""
    text = (ROOT / f"notebooks/{stem}.py").read_text()
    return text.split("if QUICK:")[1].split("\nstory")[0]


def test_the_quick_estimate_counts_the_audio_models_the_quick_run_runs_and_prints_the_others():
    """02's `if QUICK:` keeps the first MODELS; the estimate counts exactly those and names the others as left out."""
    cell = parameter_cell("02_audio_models")
    models = eval(re.search(r"^MODELS = (\[.*\])", cell, re.M).group(1))
    kept = int(re.search(r"^\s+MODELS = MODELS\[:(\d+)\]", quick_cell("02_audio_models"), re.M).group(1))
    assert [m for n, m, *_ in profiles.QUICK_EXTRACTIONS if n == "02"] == models[:kept]
    text = profiles.describe("quick", precision=profiles.FLOAT32)
    assert "Left out by `--quick`" in text
    names = {"microsoft/wavlm-base-plus": "WavLM", "facebook/hubert-base-ls960": "HuBERT"}
    assert all(names[m] in text for m in models[kept:])


def test_what_quick_leaves_out_of_07_and_08_is_what_their_quick_cells_set():
    """The printed left-out lines name the seeds, subjects and epochs the `if QUICK:` cells keep (re-read here)."""
    left_out = {line[:2]: line for line in profiles.LEFT_OUT["quick"]}
    seeds = int(re.search(r"SEEDS\[:(\d+)\]", quick_cell("08_brain_tuned_models")).group(1))
    assert f"{seeds} seed{'s' if seeds > 1 else ''} x 2 outer folds" in left_out["08"]
    cell = quick_cell("07_nonlinear_and_decoding")
    subjects = int(re.search(r"SUBJECTS, MAX_EPOCHS = min\(SUBJECTS or (\d+), \d+\)", cell).group(1))
    trials, epochs = map(int, re.search(r"N_TRIALS, DECODER_EPOCHS = (\d+), (\d+)", cell).groups())
    assert f"{subjects} subjects" in left_out["07"]
    assert f"tries {trials} settings" in left_out["07"] and f"at most {epochs} epochs" in left_out["07"]


def test_the_quick_ridge_count_of_01_is_the_layers_its_quick_cell_scores():
    """GPT-2 and BERT (13 hidden states) at LAYER_STEP, Qwen (25) at DEEP_LAYER_STEP, the last layer always."""
    from encoding_kit.run.sweeps import layer_step

    cell = quick_cell("01_text_models")
    every, deep = map(int, re.search(r"LAYER_STEP, DEEP_LAYER_STEP = SUBJECTS or \d+, \d+, (\d+), (\d+)", cell).groups())

    def scored(n):
        step = layer_step(n, every, deep)
        return len([i for i in range(n) if i % step == 0 or i == n - 1])

    assert profiles.QUICK_RIDGE["01"] == scored(13) + scored(13) + scored(25)


def test_an_avx2_cpu_gets_its_float32_extraction_scaled_and_the_measured_figure_beside_it(monkeypatch):
    """Without AVX-512 an x86 CPU's float32 extraction counts x AVX2_EXTRACTION_RATIO; bf16, AVX-512 and ARM: as measured."""
    ratio = cpu_speed.AVX2_EXTRACTION_RATIO
    avx2 = {"AVX2": True, "AVX512F": False}
    assert cpu_speed.extraction_scale(profiles.FLOAT32, "x86_64", avx2) == ratio > 1
    assert cpu_speed.extraction_scale(profiles.BF16, "x86_64", avx2) == 1
    assert cpu_speed.extraction_scale(profiles.FLOAT32, "x86_64", {"AVX2": True, "AVX512F": True}) == 1
    assert cpu_speed.extraction_scale(profiles.FLOAT32, "arm64", {"ASIMD": True}) == 1
    monkeypatch.setattr(cpu_speed, "cpu_features", lambda: avx2)
    monkeypatch.setattr(cpu_speed.platform, "machine", lambda: "x86_64")
    measured = profiles.estimate("full", precision=profiles.FLOAT32, runner=True)
    scaled = profiles.estimate("full", precision=profiles.FLOAT32, extraction_scale=ratio, runner=True)
    total = scaled.loc["total"]
    assert total["extraction_min"] == pytest.approx(ratio * measured.loc["total", "extraction_min"], abs=0.2)
    assert total["total_min"] == pytest.approx(total["extraction_min"] + total["ridge_min"] + total["network_min"],
                                               abs=0.2)
    text = profiles.describe("full", precision=profiles.FLOAT32)
    assert f"this run takes about {total['total_min']:.0f} min on a 2-core CPU like this one" in text
    assert f"AVX-512 CPU, where this run takes about {measured.loc['total', 'total_min']:.0f} min" in text
    line = profiles.run_time_line("02", precision=profiles.FLOAT32)
    slow = [profiles.real_run_minutes("02", p, profiles.FLOAT32, extraction_scale=ratio) for p in ("full", "quick")]
    assert f"takes about {ratio:.1f}x as long: about {slow[0]} / {slow[1]} min;" in line
    assert slow[0] > profiles.real_run_minutes("02", "full", profiles.FLOAT32)
    assert "AVX" not in profiles.run_time_line("02", precision=profiles.BF16)


@pytest.mark.parametrize("profile", ["full", "laptop", "quick"])
def test_make_runs_estimate_counts_whispers_encoder_once_as_the_runner_runs_03_first(profile):
    """03's decoder pass stores the encoder features the assignment reads: ``make run`` does not pay for them twice,
    a notebook run by hand in the kit's order (its first cell's line) does."""
    from encoding_kit.run import schedule

    entries = profiles.QUICK_EXTRACTIONS if profile == "quick" else profiles.extractions(profile)
    stored = [e for e in entries if profiles.stored_by_a_decoder_pass(e, entries)]
    assert [(n, m, e["window_trs"]) for n, m, _, e in stored] == [("assignment", "openai/whisper-base", 2)]
    assert schedule.START_ORDER["quick" if profile == "quick" else "full"].index("03") < \
        schedule.START_ORDER["quick" if profile == "quick" else "full"].index("assignment")
    for precision in (profiles.BF16, profiles.FLOAT32):
        by_hand = profiles.estimate(profile, precision=precision)
        run = profiles.estimate(profile, precision=precision, runner=True)
        trs = profiles.QUICK_TRS if profile == "quick" else profiles.REAL_STORY_TRS
        encoder_min = profiles.PER_UNIT_MS[precision][profiles.setting_label(*stored[0][1:])] * trs / 6e4
        assert by_hand.loc["assignment", "extraction_min"] - run.loc["assignment", "extraction_min"] == \
            pytest.approx(encoder_min, abs=0.1)
        assert run.drop(index=["assignment", "total"]).equals(by_hand.drop(index=["assignment", "total"]))
    total = profiles.estimate(profile, runner=True).loc["total", "total_min"]
    assert f"takes about {total:.0f} min" in profiles.describe(profile)
