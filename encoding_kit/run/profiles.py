"""Run profiles: what ``make run`` computes on the real data, and what it costs.

``full`` runs every notebook with its defaults. ``laptop`` is the lighter run
for the night before a deadline, still covering what the course asks (three or
more models per modality, each with a layer profile); its estimate is printed
before the run (about 1.4 h on the real story, against about 2.2 h for
``full``). It runs every other
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
SHARED = "shared_padding"
"""What Whisper's encoder reads in every profile: its padded input, the padding's states shared between windows
(:mod:`encoding_kit.features.whisper_padding`; fidelity to ``"padded"`` measured by
``benchmarks/bench_fast_paths.py``)."""
REAL_STORY_WORDS, REAL_STORY_TRS = 8267, 2249

FULL_EXTRACTIONS = [
    # (first notebook that extracts it, model, kind, settings); later notebooks hit the cache
    ("assignment", "bert-base-uncased", TEXT, dict(context_tokens=100, mode="exact")),
    ("assignment", "openai/whisper-base", AUDIO, dict(window_trs=2, whisper_input=SHARED)),
    ("01", "gpt2", TEXT, dict(context_tokens=100, mode="strided")),
    ("01", "Qwen/Qwen2.5-0.5B", TEXT, dict(context_tokens=100, mode="strided")),
    ("02", "facebook/wav2vec2-base", AUDIO, dict(window_trs=2)),
    ("02", "microsoft/wavlm-base-plus", AUDIO, dict(window_trs=2)),
    ("02", "facebook/hubert-base-ls960", AUDIO, dict(window_trs=2)),
    ("03", "openai/whisper-base", AUDIO, dict(window_trs=2, part="decoder", whisper_input=SHARED)),
    ("03", "laion/clap-htsat-unfused", AUDIO, dict(window_trs=2)),
    ("03", "laion/clap-htsat-unfused", TEXT, dict(context_tokens=64, mode="exact")),
    *[("05", "gpt2", TEXT, dict(context_tokens=c, mode="strided")) for c in (10, 50, 200, 500, 800)],
    *[("05", "openai/whisper-base", AUDIO, dict(window_trs=w, whisper_input=SHARED)) for w in (1, 4, 8)],
    ("09", "openai/whisper-base", AUDIO, dict(window_trs=2, part="frames")),
]
FULL_RIDGE = {"assignment": 2.1, "01": 51, "02": 42, "03": 36, "04": 4, "05": 25, "06": 1, "07": 1, "08": 2.4, "09": 4}
"""Ridge evaluations of all subjects each notebook makes (one per layer or sweep point; 01: 13 + 13 + 25 layers;
02: 3 x 13 layers + 3 acoustic baselines; 03: 7 + 7 Whisper encoder and decoder + 5 CLAP-audio + 13 CLAP-text
layers, 2 single sets, 2
fusions counted as one each; 05: 12 text + 5 pooling + 8 audio points; 06: the low-level baseline (its 13 BERT and
7 Whisper layers are the fits 01 and 03 made, read from the encoding result cache; the laptop profile fits the 6
BERT layers 01 skipped); assignment: 2 plus 2
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
        "04_multi_subject": {"N_SHIFTS": 200},
        "05_window_pooling_sweeps": {"CONTEXTS": [10, 100, 800], "AUDIO_WINDOWS": [2]},
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
               "(2 kept)"],
}
LAPTOP_RIDGE = {"assignment": 2.1, "01": 27, "02": 10, "03": 36, "04": 4, "05": 13, "06": 7, "07": 1, "08": 2.4, "09": 4}


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
    "bert-base-uncased text context_tokens=100, mode=exact": 100.4,
    "openai/whisper-base audio window_trs=2, whisper_input=shared_padding": 88.4,
    "gpt2 text context_tokens=100, mode=strided": 6.7,
    "Qwen/Qwen2.5-0.5B text context_tokens=100, mode=strided": 20.2,
    "facebook/wav2vec2-base audio window_trs=2": 256.6,
    "microsoft/wavlm-base-plus audio window_trs=2": 271.0,
    "facebook/hubert-base-ls960 audio window_trs=2": 293.3,
    "openai/whisper-base audio window_trs=2, part=decoder, whisper_input=shared_padding": 141.2,
    "laion/clap-htsat-unfused audio window_trs=2": 110.2,
    "openai/whisper-base audio window_trs=2, part=frames": 39.4,
    "laion/clap-htsat-unfused text context_tokens=64, mode=exact": 60.1,
    "gpt2 text context_tokens=10, mode=strided": 8.4,
    "gpt2 text context_tokens=50, mode=strided": 6.4,
    "gpt2 text context_tokens=200, mode=strided": 7.3,
    "gpt2 text context_tokens=500, mode=strided": 7.3,
    "gpt2 text context_tokens=800, mode=strided": 7.3,
    "openai/whisper-base audio window_trs=1, whisper_input=shared_padding": 47.9,
    "openai/whisper-base audio window_trs=4, whisper_input=shared_padding": 127.8,
    "openai/whisper-base audio window_trs=8, whisper_input=shared_padding": 249.7,
    # the quick run's shorter contexts
    "bert-base-uncased text context_tokens=32, mode=exact": 32.9,
    "laion/clap-htsat-unfused text context_tokens=32, mode=exact": 38.5,
    "gpt2 text context_tokens=8, mode=strided": 7.3,
    "gpt2 text context_tokens=32, mode=strided": 6.2,
    "Qwen/Qwen2.5-0.5B text context_tokens=32, mode=strided": 20.7,
}
"""Milliseconds per word (text) or per TR (audio) of each setting at the real checkpoint's size, measured by
``python benchmarks/bench_real_models.py --quick`` on the kit's 2-core development CPU on 2026-12-05 with the
machine otherwise idle (load average 0-1.9): the mean of two runs where a setting ran twice (they differed by up to
40 % for HuBERT: 8 TRs per setting). Whisper's figures (``whisper_input="shared_padding"``, the default) include the
passes over the padding at each level the demo's windows meet (9-32 per window length, 0.6 s each; a real recording
may meet a few more). Contexts of 500 and 800 tokens take the 200-token figure (strided windows make the cost per
word nearly flat). The quick run's shorter contexts were timed the same way with ``benchmarks``' timing functions.
Before the shared padding, Whisper read every window padded to 30 s: 587-654 ms per TR for every window length,
691 ms with the decoder (the ``--levers`` rows)."""
RIDGE_S = 8.0
"""Seconds of one ridge evaluation of 25 subjects x 2,249 TRs (768 features, in-fold PCA 128), same machine and day."""
RIDGE_QUICK_S = 1.2
"""The same for the quick run's 5 subjects x 400 TRs."""
NETWORK_MIN = {"full": {"03": 1.3, "07": 3.4, "08": 10.2, "09": 1.0},
               "quick": {"07": 0.2, "08": 1.3, "09": 0.6}}
"""Minutes of what is neither a feature extraction nor a plain ridge, measured on the full-size demo (the real
story's size: 25 subjects x 2,249 TRs x 360 ROIs) through the runner: 03's banded ridge (90 s, counted beyond the one
evaluation in the ridge counts), 07's networks and deep decoders (384 s for the notebook less 179 s of extraction),
08's nine fine-tuning runs of the real MiniLM (630 s for the notebook less its ridge), 09's time-resolved network;
quick: the whole notebook's time of 07's decoders, 08 and 09 on the demo. The laptop profile runs them as ``full``."""
QUICK_TRS, QUICK_WORDS = 400, round(REAL_STORY_WORDS * 400 / REAL_STORY_TRS)
QUICK_EXTRACTIONS = [
    ("assignment", "bert-base-uncased", TEXT, dict(context_tokens=32, mode="exact")),
    ("assignment", "openai/whisper-base", AUDIO, dict(window_trs=2, whisper_input=SHARED)),
    ("01", "gpt2", TEXT, dict(context_tokens=32, mode="strided")),
    ("01", "Qwen/Qwen2.5-0.5B", TEXT, dict(context_tokens=32, mode="strided")),
    *[("02", model, AUDIO, dict(window_trs=2))
      for model in ("facebook/wav2vec2-base", "microsoft/wavlm-base-plus", "facebook/hubert-base-ls960")],
    ("03", "openai/whisper-base", AUDIO, dict(window_trs=2, part="decoder", whisper_input=SHARED)),
    ("03", "laion/clap-htsat-unfused", AUDIO, dict(window_trs=2)),
    ("03", "laion/clap-htsat-unfused", TEXT, dict(context_tokens=32, mode="exact")),
    ("05", "gpt2", TEXT, dict(context_tokens=8, mode="strided")),
    ("05", "openai/whisper-base", AUDIO, dict(window_trs=1, whisper_input=SHARED)),
    ("09", "openai/whisper-base", AUDIO, dict(window_trs=2, part="frames")),
]
"""``--quick`` (first 400 TRs, 5 subjects, 32-token contexts, every other layer in 01 and 02, windows of 1 and 2 TRs
in 05): the extractions in the order the notebooks meet them."""
QUICK_RIDGE = {"assignment": 2.1, "01": 27, "02": 24, "03": 36, "04": 4, "05": 13, "06": 7, "07": 1, "08": 2.4, "09": 4}


def estimate(profile, per_unit_ms=None, ridge_s=None):
    """Estimated minutes per notebook on the real story, DataFrame (extraction_min, ridge_min, network_min,
    total_min); ``profile="quick"`` estimates ``make run`` with ``--quick``."""
    import pandas as pd

    per_unit_ms = per_unit_ms or PER_UNIT_MS
    quick = profile == "quick"
    ridge_s = ridge_s or (RIDGE_QUICK_S if quick else RIDGE_S)
    words, trs = (QUICK_WORDS, QUICK_TRS) if quick else (REAL_STORY_WORDS, REAL_STORY_TRS)
    extraction = dict.fromkeys(NOTEBOOKS, 0.0)
    for notebook, model, kind, settings in (QUICK_EXTRACTIONS if quick else extractions(profile)):
        extraction[notebook] += per_unit_ms[setting_label(model, kind, settings)] * (words if kind == TEXT else trs) / 6e4
    ridge = QUICK_RIDGE if quick else ridge_evaluations(profile)
    network = NETWORK_MIN["quick" if quick else "full"]
    table = pd.DataFrame({"extraction_min": extraction, "ridge_min": {n: ridge[n] * ridge_s / 60 for n in NOTEBOOKS},
                          "network_min": {n: network.get(n, 0.0) for n in NOTEBOOKS}})
    table["total_min"] = table.sum(axis=1)
    table.loc["total"] = table.sum()
    return table.round(1)


def describe(profile):
    """Lines the runner prints before it starts: the estimate and what the profile leaves out."""
    table = estimate(profile)
    what = ("`--quick` (first 400 TRs, 5 subjects)" if profile == "quick" else f"Profile '{profile}'")
    lines = [f"{what}: on the real story (8,267 words, 2,249 TRs) with the real checkpoints this run "
             f"takes about {table.loc['total', 'total_min']:.0f} min on a 2-core laptop CPU (feature extraction "
             f"{table.loc['total', 'extraction_min']:.0f} min, ridge {table.loc['total', 'ridge_min']:.0f} min, "
             f"networks and fine-tuning {table.loc['total', 'network_min']:.0f} min; the demo's stand-ins are far "
             "cheaper). Per notebook (min):",
             table.to_string()]
    if LEFT_OUT.get(profile):
        lines += ["Left out by this profile (`make run PROFILE=full` runs everything):",
                  *[f"  - {item}" for item in LEFT_OUT[profile]]]
    return "\n".join(lines)


def parameters(profile, notebook_stem):
    """Papermill parameters a profile sets for one notebook (``notebook_stem`` e.g. ``"01_text_models"``)."""
    _check(profile)
    return dict(PROFILES[profile].get(notebook_stem, {}))


def _check(profile):
    if profile not in PROFILES and profile != "quick":
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")


def real_run_minutes(notebook, profile="full"):
    """Whole minutes (at least 1) one notebook takes on the real story, as its first cell states.

    Parameters
    ----------
    notebook : str
        ``"assignment"`` or the notebook's number, e.g. ``"05"``.
    profile : {"full", "laptop", "quick"}

    Returns
    -------
    int
    """
    return max(1, int(round(float(estimate(profile).loc[notebook, "total_min"]))))
