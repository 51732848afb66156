"""Effects, intervals and verdicts of a repeated brain-tuning study, computed from its runs.

Input: the tidy rows of :meth:`.study.BrainTuningStudy.runs` (and
``baseline_runs``): one row per run (seed x outer fold), subject and ROI scope,
with each subject's mean r over the scope's ROIs.

The effect of a model against a comparison (a control or the pretrained
model) is the mean, over folds, seeds and subjects, of the paired difference
in mean r (same fold, same seed, same subject; the pretrained model has no
seed and pairs with every seed). Its 95 % interval comes from a bootstrap
over the two sources of variation, crossed (Owen 2007, "pigeonhole"
bootstrap; Field & Welsh 2007 for the nested part): each replicate draws
outer folds with replacement, seeds with replacement inside each drawn fold
(runs on one fold share its held-out block, so they are not independent of
each other), and subjects with replacement, independently of the runs; the
replicate's effect is the mean difference over the drawn cells, and the
interval is the replicates' 2.5 and 97.5 percentiles.

Why this is valid for one story, and what it does not cover: the folds are
blocks of the same story and the subjects heard that same story, so the
interval covers the spread of the effect over tuning runs, over parts of
this story and over listeners of this story. It does not cover a new story
(no story-to-story variation is sampled), and with few folds (2 in QUICK, 5
in full) a bootstrap over folds is narrower than the truth: read a verdict
near the boundary with care.

Verdict: ``"helped"`` when the whole interval is above 0, ``"worse"`` when
it is below 0, else ``"no difference"``. A method helped only if it helped
against both controls.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .controls import CONTROLS

BASELINE = "pretrained"
ALL = "all ROIs"
VERDICTS = ("helped", "no difference", "worse")
SEED_003 = {"pretrained": 0.197, "BrainLM-compressed": 0.194, "top explainable variance": 0.171,
            "top ridge-predicted": 0.171}
"""Seed 003's literature result (the BrainAligner study, BERT-large, voxel-mean r): the pretrained model scored best."""


def comparison_label(model, against):
    """The runs' label of a comparison: a control of ``model`` (``"<model> <control>"``) or a model's own label."""
    return f"{model} {against}" if against in CONTROLS else against


def paired_differences(runs, model, against, scope=ALL, measure="mean_r"):
    """Differences ``model - against`` of each run and subject, array (n_folds, n_seeds, n_subjects).

    Parameters
    ----------
    runs : DataFrame
        Rows of :meth:`.study.BrainTuningStudy.runs` and ``baseline_runs``.
    model, against : str
        ``model`` labels; ``against`` may name a control (``"text_only"``, ``"shuffled_brain"``).
    scope : str
    measure : {"mean_r", "median_r"}
    """
    other = comparison_label(model, against)
    mine = runs[(runs["model"] == model) & (runs["scope"] == scope)]
    theirs = runs[(runs["model"] == other) & (runs["scope"] == scope)]
    for label, part in ((model, mine), (other, theirs)):
        if part.empty:
            raise ValueError(f"runs has no rows of model {label!r} in scope {scope!r}; models there: "
                             f"{sorted(runs['model'].unique())}")
    keys = ["fold", "subject"] if (theirs["seed"] == -1).all() else ["fold", "seed", "subject"]
    missing = set(map(tuple, mine[keys].to_numpy())) - set(map(tuple, theirs[keys].to_numpy()))
    if missing:
        raise ValueError(f"{other!r} was not run on the same folds, seeds and subjects as {model!r} "
                         f"(e.g. {sorted(missing)[0]} is missing): a comparison needs the same runs")
    merged = mine.merge(theirs[keys + [measure]], on=keys, suffixes=("", "_against"))
    merged["diff"] = merged[measure] - merged[f"{measure}_against"]
    cube = merged.pivot_table(index=["fold", "seed"], columns="subject", values="diff", sort=True)
    folds = sorted(merged["fold"].unique())
    seeds = sorted(merged["seed"].unique())
    values = cube.reindex(pd.MultiIndex.from_product([folds, seeds], names=["fold", "seed"])).to_numpy()
    return values.reshape(len(folds), len(seeds), -1)


def effect_interval(diff, level=0.95, n_boot=2000, random_state=0):
    """Mean of paired differences and its bootstrap interval over folds, seeds within folds and subjects.

    Parameters
    ----------
    diff : array of shape (n_folds, n_seeds, n_subjects)
    level : float
    n_boot : int
    random_state : int

    Returns
    -------
    mean, low, high : float
    """
    diff = np.asarray(diff, dtype=float)
    if diff.ndim != 3 or 0 in diff.shape or np.isnan(diff).all():
        raise ValueError(f"diff must be an array (n_folds, n_seeds, n_subjects) with values, got shape {diff.shape}")
    n_folds, n_seeds, n_subjects = diff.shape
    rng = np.random.default_rng(random_state)
    folds = rng.integers(0, n_folds, (n_boot, n_folds))
    seeds = rng.integers(0, n_seeds, (n_boot, n_folds, n_seeds))
    subjects = rng.integers(0, n_subjects, (n_boot, n_subjects))
    cells = diff[folds[:, :, None, None], seeds[:, :, :, None], subjects[:, None, None, :]]
    replicates = np.nanmean(cells.reshape(n_boot, -1), axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return float(np.nanmean(diff)), float(low), float(high)


def verdict_of(low, high):
    """``"helped"`` (interval above 0), ``"worse"`` (below 0) or ``"no difference"``."""
    return "helped" if low > 0 else "worse" if high < 0 else "no difference"


def tuning_verdict(runs, model, against=(*CONTROLS, BASELINE), scopes=None, measure="mean_r", level=0.95,
                   n_boot=2000, random_state=0):
    """A model against each control and the pretrained model: effect, interval and verdict per ROI scope.

    Parameters
    ----------
    runs : DataFrame
        Rows of :meth:`.study.BrainTuningStudy.runs` and ``baseline_runs``.
    model : str
        A ``model`` label of the runs (e.g. ``"direct/ceiling"``).
    against : sequence of str
        Controls of ``model`` and/or other models' labels.
    scopes : sequence of str, optional
        Default every scope of the runs.
    measure, level, n_boot, random_state : see :func:`effect_interval`

    Returns
    -------
    DataFrame
        Columns model, against, scope, n_folds, n_seeds, n_subjects, diff, ci_low, ci_high, verdict.
    """
    against = [against] if isinstance(against, str) else list(against)
    if not against:
        raise ValueError("against must name at least one control or model")
    models = set(runs["model"])
    for other in against:
        if other not in CONTROLS and other not in models:
            raise ValueError(f"against must name controls ({', '.join(CONTROLS)}) or models of the runs; {other!r} "
                             f"is neither (models: {sorted(models)})")
    scopes = list(runs["scope"].unique()) if scopes is None else list(scopes)
    rows = []
    for scope in scopes:
        for other in against:
            diff = paired_differences(runs, model, other, scope, measure)
            mean, low, high = effect_interval(diff, level, n_boot, random_state)
            rows.append({"model": model, "against": other, "scope": scope, "n_folds": diff.shape[0],
                         "n_seeds": diff.shape[1], "n_subjects": diff.shape[2], "diff": mean, "ci_low": low,
                         "ci_high": high, "verdict": verdict_of(low, high)})
    return pd.DataFrame(rows)


def brain_helped(verdicts, model, scope=ALL):
    """Whether ``model`` helped against both controls in ``scope`` (rows of :func:`tuning_verdict`)."""
    part = verdicts[(verdicts["model"] == model) & (verdicts["scope"] == scope)].set_index("against")["verdict"]
    return all(part.get(c) == "helped" for c in CONTROLS)


def tuning_verdict_text(verdicts, scope=ALL):
    """One sentence per model of :func:`tuning_verdict`'s rows in ``scope``, with the numbers."""
    names = {"text_only": "text-only tuning", "shuffled_brain": "shuffled brain", BASELINE: "the pretrained model"}
    lines = []
    for model, part in verdicts[verdicts["scope"] == scope].groupby("model", sort=False):
        first = part.iloc[0]
        parts = [f"{row.verdict} against {names.get(row.against, row.against)} ({row.diff:+.4f}, 95 % interval "
                 f"{row.ci_low:+.4f} to {row.ci_high:+.4f})" for row in part.itertuples()]
        helped = brain_helped(verdicts, model, scope)
        lines.append(f"{model}, {scope}, {first.n_folds} folds x {first.n_seeds} seeds x {first.n_subjects} subjects: "
                     + "; ".join(parts) + f". The brain data {'helped' if helped else 'did not help'} "
                     "(a method helps only if it beats both controls).")
    return "\n".join(lines)


def planted_sentence(verdicts, language="language ROIs", noise="noise-only ROIs"):
    """On the demo: did each model beat both controls in the planted language ROIs, and change nothing in the noise?"""
    if language not in set(verdicts["scope"]) or noise not in set(verdicts["scope"]):
        return "No planted truth (not the demo): no planted-ROI check."
    lines = []
    for model in verdicts["model"].unique():
        noise_rows = verdicts[(verdicts["model"] == model) & (verdicts["scope"] == noise)]
        quiet = (noise_rows["verdict"] == "no difference").all()
        moved = ", ".join(f"{r.verdict} against {r.against}" for r in noise_rows.itertuples()
                          if r.verdict != "no difference")
        lines.append(f"On the demo, {model} {'beat' if brain_helped(verdicts, model, language) else 'did not beat'} "
                     f"both controls in the planted {language} and "
                     + ("did nothing in the noise-only ROIs." if quiet else f"moved the noise-only ROIs ({moved})."))
    return "\n".join(lines)


def literature_sentence(verdicts, scope=ALL):
    """One sentence comparing the study's outcome with seed 003's (the pretrained model scored best)."""
    rows = verdicts[verdicts["scope"] == scope]
    models = list(rows["model"].unique())
    above = [m for m in models if (rows[(rows["model"] == m) & (rows["against"] == BASELINE)]["verdict"]
                                   == "helped").any()]
    helped = [m for m in models if brain_helped(verdicts, m, scope)]
    literature = ("seed 003, where the pretrained model scored best (voxel-mean r "
                  f"{SEED_003['pretrained']} against " + " / ".join(str(v) for k, v in SEED_003.items() if k != BASELINE)
                  + ")")
    if not above and not helped:
        return (f"As in {literature}, no tuned model here scored above the pretrained one ({scope}) and none beat both "
                "controls: the negative result is reproduced.")
    return (f"Unlike {literature}, here {', '.join(above) or 'no model'} scored above the pretrained model ({scope}) "
            f"and {', '.join(helped) or 'none'} beat both controls: the negative result is "
            + ("not reproduced." if helped else "reproduced only in that the brain data did not beat the controls."))


def model_table(runs, scope=ALL, baseline=BASELINE, level=0.95, n_boot=2000):
    """The seed's table: one row per model, mean and median r over ROIs, and the interval of its change.

    Mean over runs and subjects of each subject's mean r (``mean_r``) and median r
    (``median_r``) over the scope's ROIs; ``std_r``: across subjects of the run-mean;
    ``diff_vs_pretrained`` with its interval (:func:`effect_interval`).
    """
    part = runs[runs["scope"] == scope]
    rows = []
    for model, rows_of in part.groupby("model", sort=False):
        per_subject = rows_of.groupby("subject")["mean_r"].mean()
        row = {"model": model, "n_runs": rows_of[["fold", "seed"]].drop_duplicates().shape[0],
               "mean_r": rows_of["mean_r"].mean(), "std_r": per_subject.std(ddof=1),
               "median_r": rows_of["median_r"].mean()}
        if model != baseline:
            mean, low, high = effect_interval(paired_differences(runs, model, baseline, scope), level, n_boot)
            row.update(diff_vs_pretrained=mean, ci_low=low, ci_high=high, verdict=verdict_of(low, high))
        rows.append(row)
    return pd.DataFrame(rows)


def subject_means(runs, scope=ALL, measure="mean_r"):
    """Per subject and model, ``measure`` averaged over runs: DataFrame (subjects x models)."""
    part = runs[runs["scope"] == scope]
    return part.pivot_table(index="subject", columns="model", values=measure, sort=False)


def leak_contrast(runs, pairs):
    """Tuned on training TRs vs on ALL TRs, for a method and its controls: mean r per scope on the same blocks.

    Parameters
    ----------
    runs : DataFrame
    pairs : dict {honest label: leak label}

    Returns
    -------
    DataFrame with one row per honest model: its mean r, the leaky one's, and the difference, per scope
    """
    rows = []
    for honest, leaky in pairs.items():
        for scope in runs["scope"].unique():
            a = runs[(runs["model"] == honest) & (runs["scope"] == scope)]
            b = runs[(runs["model"] == leaky) & (runs["scope"] == scope)]
            common = a.merge(b, on=["fold", "seed", "subject"], suffixes=("", "_leak"))
            rows.append({"model": honest, "scope": scope, "training TRs only": common["mean_r"].mean(),
                         "ALL TRs (leak)": common["mean_r_leak"].mean(),
                         "leak - honest": (common["mean_r_leak"] - common["mean_r"]).mean()})
    return pd.DataFrame(rows)
