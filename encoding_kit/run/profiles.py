"""Run profiles: what ``make run`` computes on the real data, and what it costs.

``full`` runs every notebook with its defaults. ``laptop`` is the lighter run
for the night before a deadline, still covering what the course asks (three or
more models per modality, each with a layer profile). It runs every other
layer in 01 and 02, one audio model in 02 (Whisper and CLAP are the other
two, in 03), three text contexts and one audio window in 05, 200 circular
shifts in 04, and prints what it leaves out.

The cost of a profile is the sum of its feature extractions (each counted in
the first notebook that asks for it: later ones hit the feature cache), its
ridge evaluations and its networks, from the per-unit figures that
``benchmarks/bench_real_models.py`` measured (:data:`PER_UNIT_MS`) in each
precision (:mod:`encoding_kit.core.runtime`): bf16 autocast on a CPU with
native bf16, float32 on one without (most laptops). The runner prints the
estimate of the machine it runs on.
"""

from __future__ import annotations

from .cpu_speed import extraction_scale as cpu_scale

NOTEBOOKS = ("assignment", "01", "02", "03", "04", "05", "06", "07", "08", "09")
TEXT, AUDIO = "text", "audio"
SHARED = "shared_padding"
"""What Whisper's encoder reads in every profile: its padded input, the padding's states shared between windows
(:mod:`encoding_kit.features.whisper_padding`; fidelity to ``"padded"`` measured by
``benchmarks/bench_fast_paths.py``)."""
REAL_STORY_WORDS, REAL_STORY_TRS = 8267, 2249
BF16, FLOAT32 = "bf16-autocast", "float32"
PRECISION_WORDS = {BF16: "in bf16, on a CPU with native bf16", FLOAT32: "in float32, on a CPU without native bf16"}

FULL_EXTRACTIONS = [
    # (first notebook that extracts it in the kit's order, model, kind, settings); later notebooks hit the cache
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
    # 05 reads one layer per setting (its TEXT_LAYER, AUDIO_LAYER) and skips the layers above (.features.early_exit)
    *[("05", "gpt2", TEXT, dict(context_tokens=c, mode="strided", layers=(4,))) for c in (10, 50, 200, 500, 800)],
    *[("05", "openai/whisper-base", AUDIO, dict(window_trs=w, whisper_input=SHARED, layers=(2,))) for w in (1, 4, 8)],
    ("09", "openai/whisper-base", AUDIO, dict(window_trs=2, part="frames")),
]
FULL_RIDGE = {"assignment": 2.1, "01": 51, "02": 42, "03": 36, "04": 4, "05": 25, "06": 1, "07": 1, "08": 2.4, "09": 4}
"""Ridge evaluations of all subjects each notebook makes (one per layer or sweep point; 01: 13 + 13 + 25 layers;
02: 3 x 13 layers + 3 acoustic baselines; 03: 7 + 7 Whisper encoder and decoder + 5 CLAP-audio + 13 CLAP-text
layers, 2 single sets, 2
fusions counted as one each; 05: 12 text + 5 pooling + 8 audio points; 06: the low-level baseline (its 13 BERT and
7 Whisper layers are the fits 01 and 03 made, read from the encoding result cache; the laptop profile fits the 6
BERT layers 01 skipped); assignment: 2 plus 2
one-subject fits; 07: one ridge of 3 subjects, its networks not counted; 08: the pretrained model's scores and the
ridge selections inside the training TRs (the tuning runs, each scored on its own fold, are counted whole in
:data:`NETWORK_MIN`); 09: two ridges of the frames
and 7 narrow phoneme-class ridges counted as 2, its Whisper layer sweeps re-used from 03's cache, its network not
counted)."""

PROFILES = {
    "full": {},
    "laptop": {
        "01_text_models": {"LAYER_STEP": 2},
        "02_audio_models": {"MODELS": ["facebook/wav2vec2-base"], "LAYER_STEP": 2},
        "04_multi_subject": {"N_SHIFTS": 200},
        "05_window_pooling_sweeps": {"CONTEXTS": [10, 100, 800], "AUDIO_WINDOWS": [2]},
        "08_brain_tuned_models": {"SEEDS": [0, 1], "FOLDS": [0, 2], "COMPRESSIONS": []},
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
               "08: the headline comparison on 2 seeds x 2 outer folds (of 3 x 5), no other compressions; the "
               "mask-rate sweep and the leak check on those folds"],
    "quick": ["02: WavLM-base-plus and HuBERT-base (wav2vec2-base checks the audio sweep, every other layer); the "
              "notebook's `if QUICK:` cell sets it, so the demo's `--quick` runs the same models",
              "01: every fourth layer of Qwen (deeper than a base-size model; every other layer of GPT-2 and BERT)",
              "07: the networks and decoders of 2 subjects (of 3); each deep decoder tries 2 settings (of 4) and trains "
              "at most 10 epochs (of 30)",
              "08: the headline comparison on 2 seeds x 2 outer folds (of 3 x 5), no other compressions, mask rates "
              "0.3 and 0.9 (of 0.3, 0.6, 0.9)"],
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
    BF16: {
        "bert-base-uncased text context_tokens=100, mode=exact": 18.4,
        "openai/whisper-base audio window_trs=2, whisper_input=shared_padding": 19.7,
        "gpt2 text context_tokens=100, mode=strided": 1.4,
        "Qwen/Qwen2.5-0.5B text context_tokens=100, mode=strided": 3.3,
        "facebook/wav2vec2-base audio window_trs=2": 79.2,
        "microsoft/wavlm-base-plus audio window_trs=2": 99.0,
        "facebook/hubert-base-ls960 audio window_trs=2": 69.3,
        "openai/whisper-base audio window_trs=2, part=decoder, whisper_input=shared_padding": 38.8,
        "laion/clap-htsat-unfused audio window_trs=2": 40.4,
        "laion/clap-htsat-unfused text context_tokens=64, mode=exact": 13.9,
        "gpt2 text context_tokens=10, mode=strided, layers=(4,)": 1.1,
        "gpt2 text context_tokens=50, mode=strided, layers=(4,)": 0.2,
        "gpt2 text context_tokens=200, mode=strided, layers=(4,)": 0.3,
        "gpt2 text context_tokens=500, mode=strided, layers=(4,)": 0.3,
        "gpt2 text context_tokens=800, mode=strided, layers=(4,)": 0.3,
        "openai/whisper-base audio window_trs=1, whisper_input=shared_padding, layers=(2,)": 6.1,
        "openai/whisper-base audio window_trs=4, whisper_input=shared_padding, layers=(2,)": 11.2,
        "openai/whisper-base audio window_trs=8, whisper_input=shared_padding, layers=(2,)": 20.7,
        "openai/whisper-base audio window_trs=2, part=frames": 10.9,
        "bert-base-uncased text context_tokens=32, mode=exact": 7.7,
        "gpt2 text context_tokens=32, mode=strided": 0.6,
        "Qwen/Qwen2.5-0.5B text context_tokens=32, mode=strided": 4.1,
        "laion/clap-htsat-unfused text context_tokens=32, mode=exact": 6.5,
        "gpt2 text context_tokens=8, mode=strided, layers=(4,)": 2.4,
    },
    FLOAT32: {
        "bert-base-uncased text context_tokens=100, mode=exact": 56.0,
        "openai/whisper-base audio window_trs=2, whisper_input=shared_padding": 49.7,
        "gpt2 text context_tokens=100, mode=strided": 3.6,
        "Qwen/Qwen2.5-0.5B text context_tokens=100, mode=strided": 11.7,
        "facebook/wav2vec2-base audio window_trs=2": 141.7,
        "microsoft/wavlm-base-plus audio window_trs=2": 159.0,
        "facebook/hubert-base-ls960 audio window_trs=2": 140.1,
        "openai/whisper-base audio window_trs=2, part=decoder, whisper_input=shared_padding": 87.6,
        "laion/clap-htsat-unfused audio window_trs=2": 111.5,
        "laion/clap-htsat-unfused text context_tokens=64, mode=exact": 35.0,
        "gpt2 text context_tokens=10, mode=strided, layers=(4,)": 1.7,
        "gpt2 text context_tokens=50, mode=strided, layers=(4,)": 1.2,
        "gpt2 text context_tokens=200, mode=strided, layers=(4,)": 1.2,
        "gpt2 text context_tokens=500, mode=strided, layers=(4,)": 1.2,
        "gpt2 text context_tokens=800, mode=strided, layers=(4,)": 1.2,
        "openai/whisper-base audio window_trs=1, whisper_input=shared_padding, layers=(2,)": 11.6,
        "openai/whisper-base audio window_trs=4, whisper_input=shared_padding, layers=(2,)": 30.7,
        "openai/whisper-base audio window_trs=8, whisper_input=shared_padding, layers=(2,)": 53.7,
        "openai/whisper-base audio window_trs=2, part=frames": 24.1,
        "bert-base-uncased text context_tokens=32, mode=exact": 20.8,
        "gpt2 text context_tokens=32, mode=strided": 3.8,
        "Qwen/Qwen2.5-0.5B text context_tokens=32, mode=strided": 15.6,
        "laion/clap-htsat-unfused text context_tokens=32, mode=exact": 18.6,
        "gpt2 text context_tokens=8, mode=strided, layers=(4,)": 3.3,
    },
}
"""Milliseconds per word (text) or per TR (audio) of each setting at the real checkpoint's size, in each precision,
measured by ``python benchmarks/bench_real_models.py --quick --with-quick-run`` on the kit's 2-core development CPU
(Intel Xeon with AMX, a KVM guest) on 2026-12-05 between 23:36 and 23:55 UTC: the mean of three float32 runs
(``ENCODING_KIT_PRECISION=float32``) and three bf16 runs, alternated, load average 1-1.9 (8 TRs per audio setting: the
three runs of a setting differed by up to 1.5x). WavLM in bf16: three runs at 00:50 UTC, after its attention's
input was stored time-first (``features/wavlm_layout.py``; before, bf16 took 2.2x float32's time); in float32 the
mean of seven runs. The same float32 code measured 1.7-2.1x slower at 17:00 UTC that day for every setting but CLAP audio
(130 min for the full run, against 85 min here): the host's load does not show in the guest's load average, so the
benchmark prints the speed of float32 matrix products with its figures (302-372 GFLOP/s in these runs). Whisper's figures include the passes
over the shared padding at each level the demo's windows meet (9-32 per window length). Contexts of 500 and 800
tokens take the 200-token figure (strided windows make the cost per word nearly flat). Before the shared padding,
Whisper read every window padded to 30 s: 587-654 ms per TR in float32 at 17:00 UTC (the ``--levers`` rows).

05's settings (``layers=(4,)`` / ``(2,)``) read one layer and skip the layers above it (.features.early_exit, features
equal to the whole pass): their figures are the whole-model figures above times the ratio
``python benchmarks/bench_real_models.py --quick --early-exit`` measured in float32 on a 2-core AMD EPYC without AMX
(2026-12-07 09:45 UTC, load average 2-3 with the test suite beside it; each setting timed skipped then whole): GPT-2
layer 4, 0.292 (10 tokens), 0.344 (50), 0.282 (200; 500 and 800 take it), 0.714 (8, the quick run's, on 24-48-word
slices); Whisper-base layer 2, 0.399 / 0.451 / 0.405 (windows of 1 / 4 / 8 TRs). The bf16 figures are scaled by the
same float32 ratios (not timed in bf16)."""
RIDGE_S = 4.4
"""Seconds of a 2-core machine per ridge evaluation of 25 subjects x 2,249 TRs (768 features, in-fold PCA 128):
half the CPU seconds of one evaluation on one BLAS thread, since the runner runs two notebooks at once, each kernel
on one thread (``--jobs 2``, the default on 2 cores), so an evaluation holds one of the two cores.
``benchmarks/bench_ridge_engine.py`` with ``OMP_NUM_THREADS=1`` on a 2-core AMD EPYC (float32 numpy, no AMX; shared
with other jobs, load average 3.5-7, so counted in CPU time), 2026-12-07 11:44-12:03 UTC, best of 3, runs of the
engine before and after alternated: 8.86 CPU s (9.12 s before the inner CV was scored in chunks of targets,
``ridge.SCORING_CHUNK``; same 45,000 alphas, r equal; the runs of one engine spread by 10 % with the load). Earlier:
9.89 s (08:40 UTC, load 7-9; 11.06 s before the inner splits shared ``X'X`` and ``X'Y``; the old 5.8 s was the dev
CPU's wall time on 2 threads). Numpy, so the same in both precisions."""
RIDGE_QUICK_S = 0.32
"""The same for the quick run's 5 subjects x 400 TRs: 0.64 CPU s on one thread (best of 5, same machine, session and
load; 0.69 s before the chunked scoring, within the load's spread; 0.73 s at 08:40 UTC; its inner splits are wider
than their rows, the kernel form, which the shared products do not change). The old 1.4 s was wall time on 2 BLAS
threads, which on such small products mostly wait for each other (on this loaded machine one evaluation with the
default threads took 11-25 CPU s), which the runner avoids."""
NETWORK_MIN = {"full": {"03": 1.0, "07": 2.6, "08": 18.7, "09": 1.0},
               "laptop": {"08": 6.8},
               "quick": {"07": 0.1, "08": 1.2, "09": 0.6}}
"""Minutes of what is neither a feature extraction nor a plain ridge, measured on the full-size demo (the real
story's size: 25 subjects x 2,249 TRs x 360 ROIs) through the runner: 03's banded ridge (90 s, counted beyond the one
evaluation in the ridge counts; 1.0 min since its samples of space weights share one set of products:
90 s x 87.8 / 119.3 CPU s, the ratio ``bench_ridge_engine.py --banded 10`` measured, engines alternated, 2026-12-07
11:44-12:03 UTC, load 3.5-7), 07's networks and deep decoders (384 s for the notebook less 179 s of extraction),
09's time-resolved network; quick: the whole notebook's time of 07's decoders and 09 on the demo. The laptop profile
runs them as ``full``. Measured in float32 in the slower hours of 2026-12-05 (before 18:00 UTC) and used for both
precisions: training runs without autocast, and the feature extractions inside these figures are not re-timed in
bf16.

08 (brain tuning with controls and repeated runs, cheap tuning runs: 16-token tuning windows, half the training
windows per epoch; 2026-12-07 05:55-06:19 UTC, on a 2-core CPU shared with other jobs at a load average of 6-11, so
counted in CPU time, not wall time): quick, the runner's CPU time (its kernel included) for the cold notebook,
86 s (wall 280 s at a load of 8.4-8.9), less its ridge; laptop, the same for ``--profile laptop`` (31 distinct
tuning runs: 2 seeds x 2 folds, no other compressions), 533.5 s (wall 20.6 min at a load of 6.3-10.6), less its
ridge; full, the whole notebook's wall time from empty caches on an idle machine (2-core AMD EPYC, load average 0.9
before, 2026-12-07 07:07-07:31 UTC, commit 5e001b5, ``run --only 08 --no-trims --jobs 1``: its 143 distinct tuning
runs), 23.9 min (CPU time 39.1 min on its 2 threads), less its ridge; under a load of about 3 (the test suite beside
it) the same notebook took 37.2 min. ``benchmarks/bench_brain_tuning.py`` measured the same
levers in its own process at a load of 7-9: one warm run 22.6 s of CPU against 38.8 s before them.

Since then (2026-12-07 08:30-09:12 UTC, a load of 5-9, not re-measured whole): each tuned model's features are read
with its top layer computed at the read positions only (``brain_tuning/frozen.py::AtRows``; the bench, alternated in
one process: 2.2 s of CPU against 4.1 s, the features identical), and the ceiling compression makes one pass over
the pairwise ISCs instead of four (4.2 s of CPU per fold against 17.6 s). Scaled from those ratios, not re-timed:
full, the idle run's 367 s of tuned extraction x (1 - 2.2 / 4.1) and its 6 ceiling fits (about 3.3 s each at idle,
from the bench's ratio of a fit to a ridge score) x (1 - 4.2 / 17.6), 3.1 min less: 20.6; laptop, 8.7 x 20.6 / 23.7;
quick, the cold quick notebook through the runner at a load of about 5, 74.8 s of CPU against 81.4 s before at the
same load (71.7 and 65.6 s less ridge), 1.4 x 65.6 / 71.7. The lead may re-measure them idle.

Since then (2026-12-07 11:46-12:06 UTC): the pretrained model's extraction records the story windows' frozen states
(``FrozenStates.recording``: the first tuned extraction no longer recomputes the lower layers, 17.5 s of CPU once per
study, measured on one cold full-size run: 32.9 s against 15.4 s), ``brainaligner`` training computes the top layer
after its keys and values at the masked tokens only, and every top layer its queries at the read rows only. Measured
through the runner, before (commit 77baceb) and after (commit c8de2b7) run side by side at the same time, from empty
caches, float32, one thread per kernel, on the shared 2-core AMD EPYC at a load of 4-6.5: the demo's trimmed 08 (the
laptop profile's 31 distinct runs, ``run --only 08``), 444.0 s of kernel CPU against 405.4 s (ridge 72.1 and 71.4 s:
371.9 and 334.0 s less ridge, x 0.898); ``--quick --only 08`` at a load of 2-4, 74.9 s against 69.6 s (68.8 and
63.1 s less ridge, x 0.917). Scaled, not re-timed: laptop, 7.6 x 0.898; quick, 1.3 x 0.917; full, its 143 runs at
the trimmed run's saving per run ((37.9 - 17.5) / 31 = 0.66 s) and the recording once: 20.6 - (17.5 + 143 x 0.66) / 60.

Full 07 re-priced (2026-12-07 14:10-14:56 UTC, a 2-core AMD EPYC shared with other jobs at a load average of 3-8,
so in CPU time, one thread; full-size demo, 3 subjects x 2,249 TRs, the notebook's settings with ``N_TRIALS=2``)
for two changes with equal results: the lag-attention network's attention and read-out in one autograd step
(``encoding.nonlinear``; 136.9 -> 107.1 CPU s, the same epochs, held-out r within 3e-8) with the MLP's rows
gathered once per fit (18.0 -> 14.5 s, the same numbers), and the deep decoders' ridge rows read from
``evaluate_decoding``'s stored predictions instead of fitted again (``decoding.linear.RidgeDecoderStore``; 309.3 ->
207.0 s, the same table). The networks' CPU time fell to 0.708 of itself (328.6 / 464.2 s); the networks were 276.4
of the 344.3 s the full demo run's 07 spent beyond extraction (run log of ``bench_demo_run.py``, 2026-12-07 13:00
UTC), so the old figure x (344.3 - 276.4 x 0.292) / 344.3: 3.4 x 0.766 = 2.6.

Quick 07 re-priced for its lighter quick cell (2 subjects, deep decoders at most 10 epochs, and no decoder worker
processes: a search below ``decoding.evaluation.WORKER_MIN_EPOCHS``; 2026-12-07 11:09-12:00 UTC, cold ``run --quick --jobs 2``
through ``benchmarks/bench_demo_run.py`` at 77baceb and at 0ce5d30, float32, a load average of 4-6 from other jobs,
so in CPU time): the old figure x the notebook's kernel CPU after / before, 0.2 x 24.9 / 52.2 s = 0.1 (its ridge, a
few seconds, scaled with the rest).
A profile not named here uses ``full``'s."""
QUICK_TRS, QUICK_WORDS = 400, round(REAL_STORY_WORDS * 400 / REAL_STORY_TRS)
QUICK_EXTRACTIONS = [
    ("assignment", "bert-base-uncased", TEXT, dict(context_tokens=32, mode="exact")),
    ("assignment", "openai/whisper-base", AUDIO, dict(window_trs=2, whisper_input=SHARED)),
    ("01", "gpt2", TEXT, dict(context_tokens=32, mode="strided")),
    ("01", "Qwen/Qwen2.5-0.5B", TEXT, dict(context_tokens=32, mode="strided")),
    ("02", "facebook/wav2vec2-base", AUDIO, dict(window_trs=2)),
    ("03", "openai/whisper-base", AUDIO, dict(window_trs=2, part="decoder", whisper_input=SHARED)),
    ("03", "laion/clap-htsat-unfused", AUDIO, dict(window_trs=2)),
    ("03", "laion/clap-htsat-unfused", TEXT, dict(context_tokens=32, mode="exact")),
    ("05", "gpt2", TEXT, dict(context_tokens=8, mode="strided", layers=(4,))),
    ("05", "openai/whisper-base", AUDIO, dict(window_trs=1, whisper_input=SHARED, layers=(2,))),
    ("09", "openai/whisper-base", AUDIO, dict(window_trs=2, part="frames")),
]
"""``--quick`` (first 400 TRs, 5 subjects, 32-token contexts, every other layer in 01 and 02, one audio model in 02,
windows of 1 and 2 TRs in 05): the extractions in the order the notebooks meet them."""
QUICK_RIDGE = {"assignment": 2.1, "01": 21, "02": 10, "03": 36, "04": 4, "05": 13, "06": 7, "07": 1, "08": 2.4, "09": 4}
"""Ridge evaluations of ``--quick`` as :data:`FULL_RIDGE` counts them; 01: 7 + 7 + 7 layers (every other of GPT-2's
and BERT's 13 hidden states, every fourth of Qwen's 25, the last always)."""


def machine_precision():
    """The precision models run in on this machine's CPU: ``"bf16-autocast"`` or ``"float32"``.

    Every notebook's first cell asks (:func:`run_time_line`); torch is imported only when the CPU must be probed
    (not under ``ENCODING_KIT_PRECISION=float32``), which spares a kernel that runs no model about 1.5 s.
    """
    from ..core.runtime import precision

    return precision("cpu")


def stored_by_a_decoder_pass(entry, entries):
    """Whether ``entry``'s features are stored by a Whisper decoder extraction among ``entries``.

    The decoder's pass runs the encoder on the same windows and stores the encoder's features of every layer
    (:func:`~encoding_kit.features.whisper_decoder.whisper_decoder_features`): an encoder extraction of the same
    model, window and input costs nothing when the decoder's notebook runs first, as the runner runs 03
    (:data:`~encoding_kit.run.schedule.START_ORDER`).

    Parameters
    ----------
    entry : tuple (notebook, model, kind, settings)
    entries : list of such tuples
    """
    _, model, kind, settings = entry
    if kind != AUDIO or "part" in settings or "layers" in settings:
        return False
    same = ("window_trs", "whisper_input")
    return any(m == model and s.get("part") == "decoder" and all(s.get(k) == settings.get(k) for k in same)
               for _, m, k, s in entries if k == AUDIO)


def estimate(profile, per_unit_ms=None, ridge_s=None, precision=None, extraction_scale=1.0, runner=False):
    """Estimated minutes per notebook on the real story.

    Parameters
    ----------
    profile : {"full", "laptop", "quick"}
        ``"quick"`` estimates ``make run`` with ``--quick``.
    per_unit_ms : dict, optional
        Default: :data:`PER_UNIT_MS` of ``precision``.
    ridge_s : float, optional
        Seconds of one ridge evaluation; default :data:`RIDGE_S` (:data:`RIDGE_QUICK_S` for ``"quick"``).
    precision : {"bf16-autocast", "float32"}, optional
        Default: this machine's (:func:`machine_precision`).
    extraction_scale : float
        Factor on the extraction times, for a CPU slower or faster than the one they were measured on
        (:func:`encoding_kit.run.cpu_speed.extraction_scale`); default 1, the figures as measured.
    runner : bool
        ``False`` (default): each notebook run by hand in the kit's order (the assignment, then 01, 02, ...), what
        a notebook's first cell prints (:func:`run_time_line`). ``True``: ``make run``, which runs 03 first
        (:data:`~encoding_kit.run.schedule.START_ORDER`), so the Whisper encoder extraction its decoder pass
        stores (:func:`stored_by_a_decoder_pass`) is not counted again where a notebook reads it (the
        assignment).

    Returns
    -------
    DataFrame
        Rows: the notebooks and ``"total"``; columns ``extraction_min``,
        ``ridge_min``, ``network_min``, ``total_min``.
    """
    import pandas as pd

    per_unit_ms = per_unit_ms or PER_UNIT_MS[precision or machine_precision()]
    quick = profile == "quick"
    ridge_s = ridge_s or (RIDGE_QUICK_S if quick else RIDGE_S)
    words, trs = (QUICK_WORDS, QUICK_TRS) if quick else (REAL_STORY_WORDS, REAL_STORY_TRS)
    extraction = dict.fromkeys(NOTEBOOKS, 0.0)
    entries = QUICK_EXTRACTIONS if quick else extractions(profile)
    for notebook, model, kind, settings in entries:
        if runner and stored_by_a_decoder_pass((notebook, model, kind, settings), entries):
            continue
        extraction[notebook] += (per_unit_ms[setting_label(model, kind, settings)] * (words if kind == TEXT else trs)
                                 * extraction_scale / 6e4)
    ridge = QUICK_RIDGE if quick else ridge_evaluations(profile)
    network = NETWORK_MIN["quick"] if quick else {**NETWORK_MIN["full"], **NETWORK_MIN.get(profile, {})}
    table = pd.DataFrame({"extraction_min": extraction, "ridge_min": {n: ridge[n] * ridge_s / 60 for n in NOTEBOOKS},
                          "network_min": {n: network.get(n, 0.0) for n in NOTEBOOKS}})
    table["total_min"] = table.sum(axis=1)
    table.loc["total"] = table.sum()
    return table.round(1)


def describe(profile, precision=None):
    """Lines the runner prints before it starts: the estimate of its run (:func:`estimate` with ``runner=True``) on
    this machine and what the profile leaves out.

    On an x86 CPU without AVX-512 the float32 extraction is scaled (:mod:`encoding_kit.run.cpu_speed`) and the
    figure of the CPU it was measured on is given beside it.
    """
    precision = precision or machine_precision()
    table = estimate(profile, precision=precision, extraction_scale=cpu_scale(precision), runner=True)
    other = FLOAT32 if precision == BF16 else BF16
    other_total = estimate(profile, precision=other, extraction_scale=cpu_scale(other),
                           runner=True).loc["total", "total_min"]
    what = ("`--quick` (first 400 TRs, 5 subjects)" if profile == "quick" else f"Profile '{profile}'")
    lines = [f"{what}: on the real story (8,267 words, 2,249 TRs) with the real checkpoints this run "
             f"takes about {table.loc['total', 'total_min']:.0f} min on a 2-core CPU like this one "
             f"({PRECISION_WORDS[precision]}; feature extraction "
             f"{table.loc['total', 'extraction_min']:.0f} min, ridge {table.loc['total', 'ridge_min']:.0f} min, "
             f"networks and fine-tuning {table.loc['total', 'network_min']:.0f} min; about {other_total:.0f} min "
             f"{PRECISION_WORDS[other]}; the demo's stand-ins are far cheaper).{_avx2_sentence(profile, precision)} "
             "Per notebook (min):",
             table.to_string()]
    if LEFT_OUT.get(profile):
        lines += [("Left out by `--quick`, a check that every notebook runs (`make run` runs everything):"
                   if profile == "quick" else "Left out by this profile (`make run PROFILE=full` runs everything):"),
                  *[f"  - {item}" for item in LEFT_OUT[profile]]]
    return "\n".join(lines)


def _avx2_sentence(profile, precision):
    """`` This CPU has AVX2 and no AVX-512 ...`` when :func:`~encoding_kit.run.cpu_speed.extraction_scale` is not 1."""
    scale = cpu_scale(precision)
    if scale == 1:
        return ""
    measured = estimate(profile, precision=precision, runner=True).loc["total", "total_min"]
    return (f" This CPU has no AVX-512 (AVX2 at most): its float32 feature extraction is counted at {scale:.1f}x the "
            f"time measured on an AVX-512 CPU, where this run takes about {measured:.0f} min "
            "(encoding_kit/run/cpu_speed.py).")


def parameters(profile, notebook_stem, demo=False):
    """Papermill parameters a profile sets for one notebook (``notebook_stem`` e.g. ``"01_text_models"``).

    ``demo=True`` (the runner on the demo dataset, not with ``--quick`` nor ``--no-trims``) adds the trims of
    :data:`DEMO` where the profile sets nothing else.
    """
    _check(profile)
    extra = DEMO.get(notebook_stem, {}) if demo and profile != "quick" else {}
    return {**extra, **PROFILES.get(profile, {}).get(notebook_stem, {})}


DEMO = {
    "01_text_models": {"DEEP_LAYER_STEP": 2},
    "05_window_pooling_sweeps": {"CONTEXTS": [10, 100, 800], "AUDIO_WINDOWS": [1, 2, 4]},
    "07_nonlinear_and_decoding": {"N_TRIALS": 2},
    "08_brain_tuned_models": {"SEEDS": [0, 1], "FOLDS": [0, 2], "COMPRESSIONS": []},
}
"""The demo trims: parameters of a full run on the demo dataset only, each still answering the notebook's question.
01 evaluates every other layer of models deeper than a base-size checkpoint (the demo's SmolLM2-135M stand-in has
31 hidden states; the last layer is always evaluated); 05 sweeps three text contexts (of six), still from the
shortest to the longest, and the three shorter Whisper windows (1, 2 and 4 TRs of 1, 2, 4 and 8): the demo's Whisper
reads inputs cut to 12 s (:data:`~encoding_kit.features.offline_models.WHISPER_INPUT_S`), which an 8-TR window fills,
so it has no padding to share and cost 4.6x the 1-TR window, 45 % of the notebook's time in the run of 2026-12-07
20:13 UTC (``bench_demo_run.py --keep``: 161.7 s of 360.6 s); 07 gives optuna 2 trials (of 4) per deep decoder,
subject and fold to choose its hyperparameters (the search itself, the folds and the permutation test unchanged);
08 runs the headline comparison on 2 seeds x 2 outer folds, without the other compressions (the laptop profile's
design). The run on the course data, and the demo run with ``--no-trims``, compute every setting."""


def demo_note(profile, stems):
    """The one line the runner prints on a trimmed demo run: each notebook's trims, from :data:`DEMO`.

    Parameters
    ----------
    profile : str
    stems : list of str
        The notebooks run (e.g. ``["01_text_models"]``); a trim the profile already sets is not listed.

    Returns
    -------
    str
    """
    trims = []
    for stem in stems:
        trimmed, plain = parameters(profile, stem, demo=True), parameters(profile, stem, demo=False)
        changed = {k: v for k, v in trimmed.items() if plain.get(k, MISSING) != v}
        if changed:
            trims.append(f"{stem.split('_')[0]} " + ", ".join(f"{k}={v}" for k, v in changed.items()))
    if not trims:
        return "Demo data: no trims apply to these notebooks; every setting runs."
    return ("Demo data, trimmed to keep the run short (`--no-trims` runs every setting, as the course data's run "
            "does): " + "; ".join(trims) + ".")


MISSING = object()


def _check(profile):
    if profile not in PROFILES and profile != "quick":
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")


def real_run_minutes(notebook, profile="full", precision=BF16, extraction_scale=1.0):
    """Whole minutes (at least 1) one notebook takes on the real story, as its first cell prints (:func:`run_time_line`).

    Parameters
    ----------
    notebook : str
        ``"assignment"`` or the notebook's number, e.g. ``"05"``.
    profile : {"full", "laptop", "quick"}
    precision : {"bf16-autocast", "float32"}
    extraction_scale : float
        As in :func:`estimate`.

    Returns
    -------
    int
    """
    table = estimate(profile, precision=precision, extraction_scale=extraction_scale)
    return max(1, int(round(float(table.loc[notebook, "total_min"]))))


def run_time_line(notebook, precision=None):
    """One line, printed by a notebook's first cell: how long it takes on the real story, from :func:`estimate`.

    Parameters
    ----------
    notebook : str
        ``"assignment"``, a notebook's number (``"05"``) or its name (``"05_window_pooling_sweeps"``).
    precision : {"bf16-autocast", "float32"}, optional
        The precision of the machine the line is for; default this machine's (:func:`machine_precision`).

    Returns
    -------
    str
    """
    key = str(notebook).split("_")[0] if str(notebook) != "assignment" else "assignment"
    if key not in NOTEBOOKS:
        raise ValueError(f"notebook must be 'assignment' or one of the numbers {NOTEBOOKS[1:]} (or a notebook's "
                         f"name starting with one), got {notebook!r}")
    here = precision or machine_precision()
    minutes = {(profile, p): real_run_minutes(key, profile, p) for profile in ("full", "quick") for p in (BF16, FLOAT32)}
    line = (f"Run time on the real story (real checkpoints, 2-core CPU), as encoding_kit/run/profiles.py estimates "
            f"it: about {minutes['full', BF16]} min in bf16, {minutes['full', FLOAT32]} min in float32 (`make run`); "
            f"{minutes['quick', BF16]} / {minutes['quick', FLOAT32]} min with `--quick`. This CPU runs "
            f"{'bf16' if here == BF16 else 'float32'}")
    scale = cpu_scale(here)
    if scale != 1:
        slow = [real_run_minutes(key, profile, here, extraction_scale=scale) for profile in ("full", "quick")]
        line += (f" with no AVX-512, where feature extraction takes about {scale:.1f}x as long: about {slow[0]} / "
                 f"{slow[1]} min")
    return line + "; the demo's stand-ins are faster."
