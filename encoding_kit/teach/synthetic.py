"""A synthetic class for the rubric's tests: the assignment's own exercise cells on a tiny stand-in story.

Each submission is one notebook: a prelude (a 120-TR story of random words and responses; ``utils``'s
slow calls, feature extraction and the full encoding model, replaced by random arrays of the same
shapes), then the assignment's marked cells as they are in ``assignment.py`` (the solution), or as
otter-grader strips them (the student's scaffold), or with one classic mistake planted by a text
substitution (:data:`MISTAKES`), then cells that save the tables and figures the other rubric items
read. It imports only numpy, pandas, scikit-learn and two light kit modules: about 2 s a notebook.
"""

from __future__ import annotations

from pathlib import Path

from .markers import solution_cell

ROOT = Path(__file__).resolve().parents[2]
ORDER = ("time_base", "audio_features", "cross_validation", "subjects", "layer_choice")
PRELUDE = '''\
import types
import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler
from encoding_kit.encoding.cv import GappedKFold, make_delays
from encoding_kit.run.runner import results_dir
from encoding_kit.teach.checks import check

rng = np.random.default_rng(0)
n_trs, n_subjects, TR = 120, 4, 1.5
onsets = np.sort(rng.uniform(0, n_trs * TR, 300))
story = types.SimpleNamespace(n_trs=n_trs, words=pd.DataFrame({"start": onsets}),
                              fmri={f"sub-{i}": rng.standard_normal((n_trs, 360)) for i in range(n_subjects)})
fake = lambda n: rng.standard_normal((n_trs, n))
utils = types.SimpleNamespace(
    TR=TR, GappedKFold=GappedKFold, make_delays=make_delays, check=check,
    audio_layers=lambda story, model, layers, **kw: {layer: fake(24) for layer in layers},
    text_layers=lambda story, model, layers, **kw: {layer: fake(24) for layer in layers},
    evaluate_encoding=lambda X, fmri, **kw: types.SimpleNamespace(r=0.05 + 0.02 * rng.standard_normal((len(fmri), 360))))
TEXT_MODEL, AUDIO_MODEL, WHISPER_INPUT, CONTEXT_TOKENS, PCA = "text", "audio", "padded", 32, 16
subject = "sub-0"
out = results_dir("assignment")
results = {"audio": utils.evaluate_encoding(None, story.fmri), "text": utils.evaluate_encoding(None, story.fmri)}'''
TABLES = '''\
import pandas as pd
from encoding_kit.run.runner import results_dir
for folder, modality in {modalities!r}.items():
    rows = [{{"model": f"{{modality}}-{{m}}", "layer": layer, "mean_r": 0.01 * (m + layer)}} for m in range(3) for layer in (1, 2, 3)]
    pd.DataFrame(rows).to_csv(results_dir(folder) / "layer_scores.csv", index=False)'''
SWEEP_AND_FIGURES = '''\
from PIL import Image
sweep = results_dir("05_window_pooling_sweeps")
pd.DataFrame({{"window_trs": [1, 2, 4], "mean_r": [0.02, 0.03, 0.025]}}).to_csv(sweep / "window_sweep.csv", index=False)
maps = results_dir("06_brain_maps")
for name in ("roi_preference", "brain_map"):
    Image.new("RGB", (64, 48), "teal").save(maps / f"{{name}}.png")
summary = pd.DataFrame({{"scope": ["all"], "mean_r": [0.03], "std_r": [0.01]}})
summary.to_csv(results_dir("04_multi_subject") / "summary.csv", index=False)'''
OPTIONAL = '''\
pd.DataFrame({"model": ["fusion"], "mean_r": [0.04]}).to_csv(results_dir("optional_fusion") / "fusion.csv", index=False)
pd.DataFrame({"model": ["mlp"], "mean_r": [0.02]}).to_csv(results_dir("optional_nonlinear") / "nonlinear.csv", index=False)'''
MODALITIES = {"01_text_models": "text", "02_audio_models": "audio", "03_multimodal_models": "multimodal"}
MISTAKES = {
    "hidden_time_base": ("time_base", "np.floor(onsets / utils.TR).astype(int)",
                         "np.floor((onsets + 0.75) / utils.TR).astype(int).clip(max=story.n_trs - 1)"),
    "hidden_audio_window_end": ("time_base", "[window_ends - 2 * utils.TR, window_ends]",
                                "[window_ends - 1.5 * utils.TR, window_ends + 0.5 * utils.TR]"),
    "hidden_scaler_in_fold": ("cross_validation", "StandardScaler().fit(Xd[train])", "StandardScaler().fit(Xd)"),
    "hidden_all_folds": ("cross_validation", "r_cv = np.mean(fold_r, axis=0)", "r_cv = fold_r[-1]"),
    "hidden_gap": ("cross_validation", "gap=4).split(Y))\nfold_r", "gap=0).split(Y))\nfold_r"),
    "hidden_held_out_layer": ("layer_choice", "layer_r[reported_on, layers.index(best_layer)]",
                              "layer_r[chosen_on, layers.index(best_layer)]"),
}
"""{the rubric item a mistake must lose: (exercise, solution text, the mistake's text)}."""


def exercise_cells(source=None):
    """{exercise: (solution cell, student cell)} of the assignment; otter-grader strips the student's."""
    import jupytext
    from otter.assign.solutions import replace_solutions

    source = Path(source or ROOT / "assignment.py")
    cells = {}
    for cell in jupytext.read(source).cells:
        if cell.cell_type == "code" and "# BEGIN EXERCISE" in cell.source:
            (ex,), otter_source = solution_cell(cell.source, str(source))
            lines = replace_solutions(otter_source.splitlines(), "python")
            cells[ex.name] = (cell.source, "\n".join(lines))
    return cells


def plant(cell, old, new):
    """``cell`` with ``old`` replaced by ``new`` once (``old`` must be there: a mistake always lands)."""
    if cell.count(old) != 1:
        raise ValueError(f"the solution cell no longer holds {old!r} once: update MISTAKES")
    return cell.replace(old, new)


def submission_cells(done=ORDER, mistake=None, modalities=MODALITIES, extras=True, optional=True):
    """The code cells of one submission: exercises in ``done`` solved, the others as handed out."""
    cells, solved = exercise_cells(), [PRELUDE]
    for name in ORDER:
        solution, student = cells[name]
        if mistake and MISTAKES[mistake][0] == name:
            solution = plant(solution, *MISTAKES[mistake][1:])
        solved.append(solution if name in done else student)
    solved.insert(1 + sum(n in done for n in ORDER), TABLES.format(modalities=modalities))  # before the first open one
    if extras:
        solved.insert(2 + sum(n in done for n in ORDER), SWEEP_AND_FIGURES.format())
    if optional:
        solved.append(OPTIONAL)
    return solved


def synthetic_class(root):
    """solution, empty (the release untouched), partial (3 of 5 exercises, 2 modalities, no sweep), one per mistake."""
    from ..grading.synthetic import notebook

    root = Path(root)
    notebook(root / "solution" / "assignment.ipynb", *submission_cells())
    notebook(root / "empty" / "assignment.ipynb", *submission_cells(done=(), modalities={}, extras=False,
                                                                    optional=False))
    notebook(root / "partial" / "assignment.ipynb",
             *submission_cells(done=ORDER[:3], modalities=dict(list(MODALITIES.items())[:2]), extras=False))
    for item in MISTAKES:
        notebook(root / item.replace("hidden_", "mistake_") / "assignment.ipynb", *submission_cells(mistake=item))
    return root
