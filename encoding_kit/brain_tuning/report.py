"""Tables and maps of a brain-tuning study: the study's table, subjects, ROI groups, tests, planted truth, leak.

Every function takes ``results``: a dict {label: EncodingResult} scored on the
same folds, with the pretrained model under ``baseline`` (default
``"pretrained"``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as _st

from ..analysis.stats import quiet_nan_warnings

BASELINE = "pretrained"


def study_table(results, ceiling=None, baseline=BASELINE):
    """The BrainAligner study's table: one row per model, mean and median r over ROIs.

    Returns
    -------
    DataFrame with columns model, mean_r, std_r (across subjects), median_r
    (over subjects and ROIs), mean_norm_r (with a ceiling) and
    diff_vs_pretrained (mean_r minus the baseline's)
    """
    rows = []
    for label, result in results.items():
        row = result.summary(ceiling).iloc[0]  # scope "all"
        rows.append({"model": label, "mean_r": row["mean_r"], "std_r": row["std_r"], "median_r": row["median_r"],
                     **({"mean_norm_r": row["mean_norm_r"]} if ceiling is not None else {})})
    table = pd.DataFrame(rows)
    table["diff_vs_pretrained"] = table["mean_r"] - table.loc[table["model"] == baseline, "mean_r"].iloc[0]
    return table


def subject_table(results):
    """Mean and median r over ROIs for every subject and model, tidy DataFrame (model, subject, mean_r, median_r)."""
    rows = []
    with quiet_nan_warnings():
        for label, result in results.items():
            for s, subject in enumerate(result.subjects):
                rows.append({"model": label, "subject": subject, "mean_r": np.nanmean(result.r[s]),
                             "median_r": np.nanmedian(result.r[s])})
    return pd.DataFrame(rows)


def group_table(results, ceiling=None):
    """ROI-group view: mean r (and normalised r) per group and model, tidy DataFrame."""
    frames = [result.summary(ceiling).assign(model=label) for label, result in results.items()]
    return pd.concat(frames, ignore_index=True)


def paired_test(results, baseline=BASELINE):
    """Each tuned model against the baseline across subjects (paired, on each subject's ROI-mean r).

    Returns
    -------
    DataFrame with columns model, n_subjects, mean_diff, n_better, t, p_t
    (two-sided paired t-test), p_wilcoxon (signed-rank; NaN under 6 subjects)
    """
    base = np.asarray(_roi_means(results[baseline]))
    rows = []
    for label, result in results.items():
        if label == baseline:
            continue
        diff = np.asarray(_roi_means(result)) - base
        with quiet_nan_warnings():
            t, p = _st.ttest_1samp(diff, 0.0) if len(diff) > 1 else (np.nan, np.nan)
            p_w = _st.wilcoxon(diff).pvalue if len(diff) >= 6 and np.any(diff != 0) else np.nan
        rows.append({"model": label, "n_subjects": len(diff), "mean_diff": diff.mean(),
                     "n_better": int((diff > 0).sum()), "t": float(t), "p_t": float(p), "p_wilcoxon": float(p_w)})
    return pd.DataFrame(rows)


def _roi_means(result):
    with quiet_nan_warnings():
        return np.nanmean(result.r, axis=1)


def planted_classes(truth):
    """Language-driven and noise-only ROIs of the demo, bool arrays (360,) (as :func:`planted_check` defines them)."""
    weights, names = truth["weights"], list(truth["driver_names"])
    acoustic = weights[:, names.index("acoustic_energy")] > 0.5
    return {"language ROIs": (np.abs(weights[:, 3:]).sum(1) > 0) & ~acoustic, "noise-only ROIs": ~truth["driven"]}


def planted_effect(results, truth, baseline=BASELINE, min_effect=0.005):
    """Did tuning change r in the demo's planted language ROIs, and not in its noise-only ROIs?

    For each tuned model and ROI class: each subject's mean r over the class,
    minus the baseline's; the mean difference, its standard error across
    subjects and a verdict: ``"better"`` / ``"worse"`` when the difference is
    beyond 2 standard errors and ``min_effect``, else ``"no change"``.

    Returns
    -------
    DataFrame with columns model, roi_class, n_rois, pretrained_r, tuned_r, diff, se, verdict
    """
    rows = []
    for label, result in results.items():
        if label == baseline:
            continue
        for roi_class, mask in planted_classes(truth).items():
            with quiet_nan_warnings():
                base = np.nanmean(results[baseline].r[:, mask], axis=1)
                tuned = np.nanmean(result.r[:, mask], axis=1)
            diff = tuned - base
            se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.nan
            beyond = abs(diff.mean()) > max(2 * np.nan_to_num(se), min_effect)
            verdict = ("better" if diff.mean() > 0 else "worse") if beyond else "no change"
            rows.append({"model": label, "roi_class": roi_class, "n_rois": int(mask.sum()),
                         "pretrained_r": base.mean(), "tuned_r": tuned.mean(), "diff": diff.mean(), "se": se,
                         "verdict": verdict})
    return pd.DataFrame(rows)


def planted_text(effect):
    """One sentence per row of :func:`planted_effect`, with the numbers."""
    return "\n".join(f"{row.model}, {row.roi_class} ({row.n_rois}): r {row.pretrained_r:.4f} -> {row.tuned_r:.4f} "
                     f"({row.diff:+.4f} +- {row.se:.4f} SE across subjects): {row.verdict}"
                     for row in effect.itertuples())


def leak_table(pretrained, honest, leaky, truth=None):
    """The leak check in one small table: held-out r of the pretrained model, tuned on training TRs, tuned on all.

    Parameters
    ----------
    pretrained, honest, leaky : EncodingResult
        Scored on the same held-out blocks.
    truth : dict, optional
        Demo ground truth: adds the language and noise-only ROI means.

    Returns
    -------
    DataFrame with one row per model: mean_r over all ROIs (and per planted
    class), and the difference from the pretrained model
    """
    rows = []
    for label, result in [("pretrained", pretrained), ("tuned on training TRs only", honest),
                          ("tuned on ALL TRs (leak)", leaky)]:
        with quiet_nan_warnings():
            row = {"tuning": label, "mean_r": float(np.nanmean(_roi_means(result)))}
            for roi_class, mask in (planted_classes(truth).items() if truth is not None else []):
                row[f"mean_r {roi_class}"] = float(np.nanmean(result.r[:, mask]))
        rows.append(row)
    table = pd.DataFrame(rows)
    table["diff_vs_pretrained"] = table["mean_r"] - table["mean_r"].iloc[0]
    return table


def mask_rate_rows(results_by_rate, baseline_result):
    """The mask-rate sweep: one row per rate and subject (mask_rate, subject, mean_r), the baseline's mean r beside.

    Parameters
    ----------
    results_by_rate : dict {mask_rate: EncodingResult}
    baseline_result : EncodingResult
    """
    base = _roi_means(baseline_result)
    frames = [pd.DataFrame({"mask_rate": rate, "subject": result.subjects, "mean_r": _roi_means(result),
                            "pretrained_mean_r": base}) for rate, result in results_by_rate.items()]
    return pd.concat(frames, ignore_index=True)
