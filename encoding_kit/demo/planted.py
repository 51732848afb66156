"""Demo only: compare what a notebook found with the planted ground truth."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .generate import topic_columns


def planted_check(r, truth, label):
    """Mean r in ROIs planted with acoustic, language or no signal (demo only).

    Returns
    -------
    DataFrame with one row: label, acoustic_rois, language_rois, noise_rois
    """
    weights, names = truth["weights"], list(truth["driver_names"])
    acoustic = weights[:, names.index("acoustic_energy")] > 0.5
    language = np.abs(weights[:, topic_columns(names)]).sum(1) > 0
    noise = ~truth["driven"]
    mean = np.nanmean(np.atleast_2d(r), axis=0)
    return pd.DataFrame([{"features": label, "acoustic_rois": np.nanmean(mean[acoustic]),
                          "language_rois": np.nanmean(mean[language & ~acoustic]),
                          "noise_rois": np.nanmean(mean[noise])}])


def planted_verdict(scores, truth, text="text", noise_tolerance=0.02):
    """Check the planted structure of the demo against held-out scores, with numbers.

    Parameters
    ----------
    scores : dict {feature set: array (n_subjects, 360) or (360,)}
        Held-out r of each feature set; ``text`` names the text one, every
        other set counts as acoustic (audio models, low-level features).
    truth : dict
        The demo's ground truth (``Story.truth``).
    text : str
    noise_tolerance : float
        Largest absolute mean r accepted in noise-only ROIs.

    Returns
    -------
    DataFrame
        One row per planted ROI class (acoustic, language, noise-only): the
        number of ROIs, mean r of every feature set, the best set, what the
        truth expects and ``as_planted`` (bool).
    """
    weights, names = truth["weights"], list(truth["driver_names"])
    acoustic = weights[:, names.index("acoustic_energy")] > 0.5
    classes = {"acoustic ROIs": (acoustic, "an acoustic set"),
               "language ROIs": ((np.abs(weights[:, topic_columns(names)]).sum(1) > 0) & ~acoustic, text),
               "noise-only ROIs": (~truth["driven"], f"none (|r| < {noise_tolerance})")}
    means = {k: np.nanmean(np.atleast_2d(v), axis=0) for k, v in scores.items()}
    rows = []
    for label, (mask, expected) in classes.items():
        row = {"roi_class": label, "n_rois": int(mask.sum()), **{k: float(np.nanmean(m[mask])) for k, m in means.items()}}
        values = {k: row[k] for k in means}
        row["best"] = max(values, key=values.get)
        if label.startswith("noise"):
            row["as_planted"] = bool(max(abs(v) for v in values.values()) < noise_tolerance)
        else:
            row["as_planted"] = (row["best"] == text) == (expected == text)
        rows.append({**row, "expected": expected})
    return pd.DataFrame(rows)


def verdict_text(verdict):
    """One sentence per row of :func:`planted_verdict`, with the numbers."""
    lines = []
    for _, row in verdict.iterrows():
        sets = [c for c in verdict.columns if c not in ("roi_class", "n_rois", "best", "as_planted", "expected")]
        numbers = ", ".join(f"{k} {row[k]:+.3f}" for k in sorted(sets, key=lambda k: -row[k]))
        status = "as planted" if row["as_planted"] else "NOT as planted"
        lines.append(f"{row['roi_class']} ({row['n_rois']}): mean r {numbers}; expected best: {row['expected']} "
                     f"-> {status}")
    return "\n".join(lines)


def roi_classes(truth):
    """The planted ROI classes of :func:`planted_check`: {"acoustic", "language", "noise"} -> bool array (360,)."""
    weights, names = truth["weights"], list(truth["driver_names"])
    acoustic = weights[:, names.index("acoustic_energy")] > 0.5
    language = (np.abs(weights[:, topic_columns(names)]).sum(1) > 0) & ~acoustic
    return {"acoustic": acoustic, "language": language, "noise": ~truth["driven"]}


WORD_DRIVERS = ("word_rate", "word_length")
"""Planted drivers computed from the words alone (with the ``topic_*`` counts): what text features can carry."""


def word_driver_fit(truth, n_trs=None):
    """How closely each ROI's planted response follows the words alone, r per ROI (360,).

    The planted signal of each ROI (``truth["signal"]``, first ``n_trs``
    TRs) against its least-squares fit from the HRF-convolved drivers that
    are functions of the words only (word rate, word length and the topic
    counts; not the sound energy, not the phoneme seconds). A ROI driven by
    the sound energy still gets a high r when, in this speech, the sound
    comes and goes with the words.

    Returns
    -------
    float array of shape (360,)
        NaN for ROIs without planted signal.
    """
    from .generate import hrf_convolved_drivers

    names = list(truth["driver_names"])
    n_trs = len(truth["signal"]) if n_trs is None else int(n_trs)
    columns = [names.index(n) for n in WORD_DRIVERS] + topic_columns(names)
    drivers = hrf_convolved_drivers(np.asarray(truth["drivers"])[:n_trs], truth["hrf"])[:, columns]
    design = np.column_stack([np.ones(n_trs), drivers])
    signal = np.asarray(truth["signal"], float)[:n_trs]
    fit = design @ np.linalg.lstsq(design, signal, rcond=None)[0]
    with np.errstate(all="ignore"):
        r = np.array([np.corrcoef(fit[:, i], signal[:, i])[0, 1] for i in range(signal.shape[1])])
    r[~truth["driven"]] = np.nan
    return r


def text_reach(scores, ceilings, truth, n_trs=None, noise_tolerance=0.02):
    """Where text features reach on the demo, against each ROI class's ceiling and what the words alone carry.

    Parameters
    ----------
    scores : dict {label: array (n_subjects, 360)}
        Held-out r of each text feature set (the reporting subjects).
    ceilings : dict {label: array (n_subjects, 360)}
        The noise-free ceiling on the same subjects and folds
        (:func:`encoding_kit.demo.generate.truth_fold_ceiling`).
    truth : dict
    n_trs : int, optional
        TRs of the story used (``story.n_trs``).
    noise_tolerance : float
        The language ROIs count as predicted when their mean r is at least this much above the noise-only ROIs'.

    Returns
    -------
    DataFrame
        One row per label: ``acoustic_r``, ``language_r``, ``noise_r``
        (mean r), ``acoustic_ceiling``, ``language_ceiling``,
        ``acoustic_share``, ``language_share`` (r / ceiling),
        ``acoustic_words_r``, ``language_words_r`` (:func:`word_driver_fit`, ROI mean),
        ``predicts_language`` (bool).
    """
    classes = roi_classes(truth)
    words_r = word_driver_fit(truth, n_trs)
    rows = []
    for label, r in scores.items():
        with warnings.catch_warnings():  # ROIs without planted signal have no ceiling (all NaN): left NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(np.atleast_2d(r), axis=0)
            ceiling = np.nanmean(np.atleast_2d(ceilings[label]), axis=0)
        row = {"features": label, **{f"{c}_r": float(np.nanmean(mean[m])) for c, m in classes.items()}}
        for c in ("acoustic", "language"):
            row[f"{c}_ceiling"] = float(np.nanmean(ceiling[classes[c]]))
            row[f"{c}_share"] = row[f"{c}_r"] / row[f"{c}_ceiling"]
            row[f"{c}_words_r"] = float(np.nanmean(words_r[classes[c]]))
        row["predicts_language"] = bool(row["language_r"] - row["noise_r"] >= noise_tolerance)
        rows.append(row)
    return pd.DataFrame(rows)


def text_reach_text(table, noise_tolerance=0.02):
    """Sentences with the numbers of :func:`text_reach`: does each text set predict the language ROIs, and why the
    acoustic ROIs can score higher."""
    lines = []
    for _, row in table.iterrows():
        answer = "yes" if row["predicts_language"] else "no"
        lines.append(f"{row['features']}: language ROIs r {row['language_r']:.3f} against {row['noise_r']:+.3f} in "
                     f"the noise-only ROIs -> predicts the planted language ROIs (by >= {noise_tolerance}): {answer}; "
                     f"acoustic ROIs r {row['acoustic_r']:.3f}, {row['acoustic_share']:.0%} of their ceiling "
                     f"{row['acoustic_ceiling']:.2f}, language ROIs {row['language_share']:.0%} of theirs "
                     f"({row['language_ceiling']:.2f}).")
    first = table.iloc[0]
    higher = (table["acoustic_r"] > table["language_r"]).sum()
    lines.append(
        f"Acoustic ROIs above language ROIs for {higher} of {len(table)} text sets. Why text reaches the acoustic "
        f"ROIs at all: their planted response is mostly the sound energy, and in this speech the sound comes with "
        f"the words: the word drivers alone (word rate, word length, topic counts) follow it with r "
        f"{first['acoustic_words_r']:.2f} (the language ROIs' response: r {first['language_words_r']:.2f}). Their "
        f"ceiling is {first['acoustic_ceiling'] / first['language_ceiling']:.1f}x the language ROIs', so the same "
        f"share of the ceiling is a larger r; compare the shares, not the raw r.")
    return "\n".join(lines)
