"""Run profiles: what ``make run`` computes on the real data, and what it costs.

``full`` runs every notebook with its defaults. ``laptop`` is the lighter run
for the night before a deadline, still covering what the course asks (three or
more models per modality, each with a layer profile); its estimate is printed
before the run (about 1.6 h on the real story, against about 4.7 h for
``full``). Whisper reads each window alone (``WHISPER_INPUT="window"``) and it runs every other
layer in 01 and 02, one audio model in 02 (Whisper and CLAP are the other
two, in 03), three text contexts and one audio window in 05, 200 circular
shifts in 04. It prints what it leaves out.

The cost of a profile is the sum of its feature extractions (each counted in
the first notebook that asks for it: later ones hit the feature cache) and its
ridge evaluations, from the per-unit figures that
``benchmarks/bench_real_models.py`` measured (:data:`PER_UNIT_MS`).
"""

from __future__ import annotations

NOTEBOOKS = ("assignment", "01", "02", "03", "04", "05", "06", "07", "08", "09")
TEXT, AUDIO = "text", "audio"
REAL_STORY_WORDS, REAL_STORY_TRS = 8267, 2249

FULL_EXTRACTIONS = [
    # (first notebook that extracts it, model, kind, settings); later notebooks hit the cache
    ("assignment", "bert-base-uncased", TEXT, dict(context_tokens=100, mode="exact")),
    ("assignment", "openai/whisper-base", AUDIO, dict(window_trs=2)),
    ("01", "gpt2", TEXT, dict(context_tokens=100, mode="strided")),
    ("01", "Qwen/Qwen2.5-0.5B", TEXT, dict(context_tokens=100, mode="strided")),
    ("02", "facebook/wav2vec2-base", AUDIO, dict(window_trs=2)),
    ("02", "microsoft/wavlm-base-plus", AUDIO, dict(window_trs=2)),
    ("02", "facebook/hubert-base-ls960", AUDIO, dict(window_trs=2)),
    ("03", "openai/whisper-base", AUDIO, dict(window_trs=2, part="decoder")),
    ("03", "laion/clap-htsat-unfused", AUDIO, dict(window_trs=2)),
    ("03", "laion/clap-htsat-unfused", TEXT, dict(context_tokens=64, mode="exact")),
    *[("05", "gpt2", TEXT, dict(context_tokens=c, mode="strided")) for c in (10, 50, 200, 500, 800)],
    *[("05", "openai/whisper-base", AUDIO, dict(window_trs=w)) for w in (1, 4, 8)],
    ("09", "openai/whisper-base", AUDIO, dict(window_trs=2, part="frames")),
]
FULL_RIDGE = {"assignment": 2.1, "01": 51, "02": 42, "03": 36, "04": 4, "05": 25, "06": 21, "07": 1, "08": 2.4, "09": 4}
"""Ridge evaluations of all subjects each notebook makes (one per layer or sweep point; 01: 13 + 13 + 25 layers;
02: 3 x 13 layers + 3 acoustic baselines; 03: 7 + 7 Whisper encoder and decoder + 5 CLAP-audio + 13 CLAP-text
layers, 2 single sets, 2
fusions counted as one each; 05: 12 text + 5 pooling + 8 audio points; 06: 13 + 7 layers + 1; assignment: 2 plus 2
one-subject fits; 07: one ridge of 3 subjects, its networks not counted; 08: 10 ridges scored on one outer fold of
five (2 full evaluations) and 2 ridge selections inside the training TRs; its 9 fine-tuning runs and their feature
extractions are not counted: they were not benchmarked at a real checkpoint's size; 09: two ridges of the frames
and 7 narrow phoneme-class ridges counted as 2, its Whisper layer sweeps re-used from 03's cache, its network not
counted)."""

PROFILES = {
    "full": {},
    "laptop": {
        "01_text_models": {"LAYER_STEP": 2},
        "02_audio_models": {"MODELS": ["facebook/wav2vec2-base"], "LAYER_STEP": 2},
        "04_multi_subject": {"N_SHIFTS": 200, "WHISPER_INPUT": "window"},
        "05_window_pooling_sweeps": {"CONTEXTS": [10, 100, 800], "AUDIO_WINDOWS": [2], "WHISPER_INPUT": "window"},
        **{stem: {"WHISPER_INPUT": "window"} for stem in ("assignment", "03_multimodal_models", "06_brain_maps",
                                                          "07_nonlinear_and_decoding")},
        "09_speech_interpretation": {"LAYER_INPUT": "window"},
    },
}
"""Notebook parameters (papermill) each profile sets; a notebook not named runs with its defaults."""
LEFT_OUT = {
    "full": [],
    "laptop": ["01: every other layer of GPT-2, BERT and Qwen (and always the last)",
               "02: WavLM-base-plus and HuBERT-base (wav2vec2-base kept, every other layer); the audio models "
               "with layer profiles are wav2vec2, Whisper (03) and CLAP (03)",
               "04: 200 circular shifts instead of 1000 for the significance tests",
               "05: text contexts 50, 200 and 500 tokens (10, 100 and 800 kept); Whisper windows of 1, 4 and 8 TRs "
               "(2 kept)",
               "Whisper's encoder reads each window alone instead of padded to 30 s (WHISPER_INPUT='window', "
               "10x faster): held-out r within 0.0006 of the padded features on the demo, but deep layers' features "
               "differ (median per-dimension r 0.89-0.93), so the full profile keeps the padded input"],
}
LAPTOP_RIDGE = {"assignment": 2.1, "01": 27, "02": 10, "03": 36, "04": 4, "05": 13, "06": 21, "07": 1, "08": 2.4, "09": 4}


def extractions(profile):
    """The feature extractions a profile makes: list of (notebook, model, kind, settings)."""
    _check(profile)
    if profile == "full":
        return list(FULL_EXTRACTIONS)
    dropped = {"microsoft/wavlm-base-plus", "facebook/hubert-base-ls960"}
    keep = []
    for notebook, model, kind, settings in FULL_EXTRACTIONS:
        if model in dropped or (notebook == "05" and kind == AUDIO):
            continue
        if notebook == "05" and settings["context_tokens"] not in (10, 800):
            continue
        if model.startswith("openai/whisper") and settings.get("part") != "frames":
            settings = {**settings, "whisper_input": "window"}  # the laptop profile's WHISPER_INPUT
        keep.append((notebook, model, kind, settings))
    return keep


def ridge_evaluations(profile):
    """Ridge evaluations per notebook, dict {notebook: count}."""
    _check(profile)
    return dict(FULL_RIDGE if profile == "full" else LAPTOP_RIDGE)


def setting_label(model, kind, settings):
    """The key of a setting in :data:`PER_UNIT_MS`."""
    return f"{model} {kind} " + ", ".join(f"{k}={v}" for k, v in settings.items())


PER_UNIT_MS = {
    "bert-base-uncased text context_tokens=100, mode=exact": 128.4,
    "openai/whisper-base audio window_trs=2": 730.7,
    "gpt2 text context_tokens=100, mode=strided": 10.8,
    "Qwen/Qwen2.5-0.5B text context_tokens=100, mode=strided": 13.9,
    "facebook/wav2vec2-base audio window_trs=2": 554.5,
    "microsoft/wavlm-base-plus audio window_trs=2": 402.2,
    "facebook/hubert-base-ls960 audio window_trs=2": 449.9,
    "openai/whisper-base audio window_trs=2, part=decoder": 730.7 * 1.1,
    "laion/clap-htsat-unfused audio window_trs=2": 195.6,
    "openai/whisper-base audio window_trs=2, part=frames": 730.7 / 10,
    "openai/whisper-base audio window_trs=2, whisper_input=window": 730.7 / 10.1,
    "openai/whisper-base audio window_trs=2, part=decoder, whisper_input=window": 730.7 / 10.1 * 1.3,
    "laion/clap-htsat-unfused text context_tokens=64, mode=exact": 65.4,
    "gpt2 text context_tokens=10, mode=strided": 8.0,
    "gpt2 text context_tokens=50, mode=strided": 12.6,
    "gpt2 text context_tokens=200, mode=strided": 27.7,
    "gpt2 text context_tokens=500, mode=strided": 27.7,
    "gpt2 text context_tokens=800, mode=strided": 27.7,
    "openai/whisper-base audio window_trs=1": 730.7,
    "openai/whisper-base audio window_trs=4": 730.7,
    "openai/whisper-base audio window_trs=8": 730.7,
}
"""Milliseconds per word (text) or per TR (audio) of each setting at the real checkpoint's size, from
``python benchmarks/bench_real_models.py --quick`` on the kit's 2-core development CPU (2026-12-01, load average
1.1-1.9, shared with other work: the figures are high by up to that factor). Whisper pads every window to 30 s, so
every window length costs the same (the benchmark's 1-, 4- and 8-TR rows ran at a higher load and are set to the
2-TR figure). Whisper's decoder features run the encoder again (their pass stores the encoder features too, but the
assignment extracted those first) plus the decoder, estimated as the encoder's figure + 10 % (the decoder's share
measured on the real Whisper tiny.en, 12 s input, 2026-12-05: 0.05 of 0.55 s per TR). 09's sub-TR frames read the
window alone (``whisper_input="window"``: 150 encoder positions instead of 1500), estimated at a tenth of the padded
figure (not benchmarked); contexts of 500 and 800 tokens were not timed by ``--quick`` and take the 200-token figure. The laptop profile's Whisper reads the window
alone (``WHISPER_INPUT="window"``): the padded figure divided by 10.1, the ratio measured for whisper-base at its
real size with 2-TR windows (padded and window interleaved in one process, 2026-12-05); its decoder features at 1.3
times that (the ratio of decoder-with-encoder to encoder alone measured on tiny.en with window input)."""
RIDGE_S = 12.0
"""Seconds of one ridge evaluation of 25 subjects x 2,249 TRs (768 features, in-fold PCA 128), same machine."""


def estimate(profile, per_unit_ms=None, ridge_s=RIDGE_S):
    """Estimated minutes per notebook on the real story, DataFrame (extraction_min, ridge_min, total_min)."""
    import pandas as pd

    per_unit_ms = per_unit_ms or PER_UNIT_MS
    extraction = dict.fromkeys(NOTEBOOKS, 0.0)
    for notebook, model, kind, settings in extractions(profile):
        units = REAL_STORY_WORDS if kind == TEXT else REAL_STORY_TRS
        extraction[notebook] += per_unit_ms[setting_label(model, kind, settings)] * units / 60000
    ridge = ridge_evaluations(profile)
    table = pd.DataFrame({"extraction_min": extraction, "ridge_min": {n: ridge[n] * ridge_s / 60 for n in NOTEBOOKS}})
    table["total_min"] = table.sum(axis=1)
    table.loc["total"] = table.sum()
    return table.round(1)


def describe(profile):
    """Lines the runner prints before it starts: the estimate and what the profile leaves out."""
    table = estimate(profile)
    lines = [f"Profile '{profile}': on the real story (8,267 words, 2,249 TRs) with the real checkpoints this run "
             f"takes about {table.loc['total', 'total_min']:.0f} min on a 2-core laptop CPU (feature extraction "
             f"{table.loc['total', 'extraction_min']:.0f} min, ridge {table.loc['total', 'ridge_min']:.0f} min; "
             "the demo's stand-ins are far cheaper). Per notebook (min):",
             table.to_string()]
    if LEFT_OUT[profile]:
        lines += ["Left out by this profile (`make run PROFILE=full` runs everything):",
                  *[f"  - {item}" for item in LEFT_OUT[profile]]]
    return "\n".join(lines)


def parameters(profile, notebook_stem):
    """Papermill parameters a profile sets for one notebook (``notebook_stem`` e.g. ``"01_text_models"``)."""
    _check(profile)
    return dict(PROFILES[profile].get(notebook_stem, {}))


def _check(profile):
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")


def real_run_minutes(notebook, profile="full"):
    """Whole minutes (at least 1) one notebook takes on the real story, as its first cell states.

    Parameters
    ----------
    notebook : str
        ``"assignment"`` or the notebook's number, e.g. ``"05"``.
    profile : {"full", "laptop"}

    Returns
    -------
    int
    """
    return max(1, int(round(float(estimate(profile).loc[notebook, "total_min"]))))
