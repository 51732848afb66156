"""Building blocks of the notebooks: a story, layer sweeps, curves and checks.

Each notebook cell calls one of these, so the notebooks stay a few lines per
cell and share one implementation (no copy-pasted pipelines).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import data as _data
from .demo import topic_columns
from .encoding import DEFAULT_TRIM, evaluate_encoding
from .features.audio import extract_audio_features
from .features.models import load_model
from .features.text import extract_text_features, text_features_to_trs
from .features.whisper_decoder import whisper_decoder_features
from .roi_analysis import finish_figure
from .stats import noise_ceiling, quiet_nan_warnings
from .timebase import TR


@dataclass
class Story:
    """Everything a notebook needs about the dataset.

    Attributes
    ----------
    fmri : dict {subject: array (n_trs, 360)}
    words : DataFrame (``load_align``)
    wav : array (n_samples,)
    sr : int
    source : str
        ``"course"`` or ``"demo"``.
    truth : dict or None
        Demo ground truth.
    """

    fmri: dict
    words: pd.DataFrame
    wav: np.ndarray
    sr: int
    source: str
    truth: dict | None

    @property
    def n_trs(self):
        return next(iter(self.fmri.values())).shape[0]

    def describe(self):
        """One line per fact, for the top of a notebook."""
        return (f"data: {self.source} | {len(self.fmri)} subjects x {self.n_trs} TRs x 360 ROIs | "
                f"{len(self.words)} words ({int((~self.words['aligned']).sum())} unaligned, times interpolated) | "
                f"audio {len(self.wav) / self.sr:.2f} s at {self.sr} Hz (scan {self.n_trs * TR:.1f} s)")


def load_story(data_dir=None, subjects=None, max_trs=None):
    """Load fMRI, words and audio from the data folder (course files or demo).

    Parameters
    ----------
    data_dir : str or Path, optional
    subjects : int or list, optional
        Keep the first ``subjects`` subjects (an int) or these ids.
    max_trs : int, optional
        Keep only the first ``max_trs`` TRs: the scan, the words starting
        before its end and the audio up to it (for quick checks; every
        notebook says when it is used).

    Returns
    -------
    Story
    """
    from .demo import load_truth

    source = _data.data_source(data_dir)
    fmri = _data.load_fmri(data_dir=data_dir)
    fmri = _data.select_subjects(fmri, subjects)
    wav, sr = _data.load_audio(data_dir=data_dir)
    words = _data.load_align(data_dir=data_dir)
    _data.check_alignment_fits_scan(words, next(iter(fmri.values())).shape[0], _data.data_dir(data_dir) / _data.ALIGN_FILE)
    truth = load_truth(data_dir) if source == "demo" else None
    n_trs = next(iter(fmri.values())).shape[0]
    if max_trs is not None and int(max_trs) < n_trs:
        n_trs = int(max_trs)
        fmri = {s: y[:n_trs] for s, y in fmri.items()}
        words = words[words["start"] < n_trs * TR].reset_index(drop=True)
        wav = wav[: int(round(n_trs * TR * sr))]
    return Story(fmri, words, wav, sr, source, truth)


def text_layers(story, model, layers=None, context_tokens=200, mode="exact", word_pooling="last",
                tr_pooling="mean", **kwargs):
    """TR-level features of a text model for each layer: {layer: (n_trs, dim)}.

    Strided mode is used automatically only when asked; a stand-in is used
    (with a banner) when the model is unavailable offline.
    """
    loaded = load_model(model, allow_standin=True) if isinstance(model, str) else model
    words = extract_text_features(story.words, loaded, layers=layers, context_tokens=context_tokens, mode=mode,
                                  word_pooling=word_pooling, **kwargs)
    return text_features_to_trs(words, story.words, story.n_trs, tr_pooling)


def audio_layers(story, model, layers=None, window_trs=2, frame_pooling="mean", whisper_input="padded", **kwargs):
    """TR-level features of an audio model for each layer: {layer: (n_trs, dim)}.

    ``whisper_input`` applies to Whisper models only and is ignored for the others, so a notebook parameter
    (``WHISPER_INPUT``, set by the laptop profile) can be passed whatever the model.
    """
    loaded = load_model(model, allow_standin=True) if isinstance(model, str) else model
    if loaded.family == "whisper":
        kwargs["whisper_input"] = whisper_input
    return extract_audio_features(story.wav, story.sr, story.n_trs, loaded, layers=layers, window_trs=window_trs,
                                  frame_pooling=frame_pooling, **kwargs)


def decoder_layers(story, model, layers=None, window_trs=2, token_pooling="tr", **kwargs):
    """TR-level features of Whisper's decoder for each layer: {layer: (n_trs, dim)}.

    The decoder reads each TR window's words while hearing its audio
    (:func:`encoding_kit.features.whisper_decoder.whisper_decoder_features`); with the cache on, the
    encoder features of the same pass are stored too, so :func:`audio_layers` with the same window is free after it.
    """
    loaded = load_model(model, allow_standin=True) if isinstance(model, str) else model
    return whisper_decoder_features(story.wav, story.sr, story.words, story.n_trs, loaded, layers=layers,
                                    window_trs=window_trs, token_pooling=token_pooling, **kwargs)


def layer_sweep(features, story, model_name, ceiling=None, pca=None, every=1, **kwargs):
    """Evaluate every layer; one tidy row per layer and subject.

    Parameters
    ----------
    features : dict {layer: array (n_trs, dim)}
    story : Story
    model_name : str
    ceiling : array (n_subjects, 360), optional
    pca : int, optional
        In-fold PCA (useful for wide layers on a laptop).
    every : int
        Evaluate every ``every``-th layer (and always the last), for quick runs.

    Returns
    -------
    table : DataFrame
        Columns model, layer, subject, mean_r (ROI mean), norm_r (ROI-mean of
        r / ceiling), and one column per ROI group.
    results : dict {layer: EncodingResult}
    """
    from .progress import tqdm

    rows, results = [], {}
    layers = list(features)
    chosen = [k for i, k in enumerate(layers) if i % every == 0 or k == layers[-1]]
    for layer in tqdm(chosen, desc=f"{model_name} layers", leave=False):
        X = features[layer]
        res = evaluate_encoding(X, story.fmri, pca=pca, progress=False, **kwargs)
        results[layer] = res
        per_subject = res.roi_mean_r()
        norm = np.nanmean(res.normalized(ceiling), axis=1) if ceiling is not None else np.full(len(per_subject), np.nan)
        for s, subject in enumerate(res.subjects):
            rows.append({"model": model_name, "layer": layer, "subject": subject, "mean_r": per_subject[s],
                         "norm_r": norm[s]})
    return pd.DataFrame(rows), results


def summarize_layers(table):
    """Mean +- std across subjects per model and layer (the runner's ``layer_scores.csv`` format)."""
    grouped = table.groupby(["model", "layer"])
    out = grouped["mean_r"].agg(mean_r="mean", std_r="std").join(grouped["norm_r"].agg(norm_r="mean"))
    return out.reset_index()


def split_subjects(subjects):
    """Split subjects into a layer-selection half and a reporting half.

    Alternate subjects in their given order: positions 0, 2, 4, ... select,
    positions 1, 3, 5, ... report (12 and 13 of the course's 25). Choosing
    the best layer on the same scores that are then reported biases them
    upward (the maximum of noisy estimates); choosing on one half and
    reporting the other half does not.

    Parameters
    ----------
    subjects : sequence, length n_subjects >= 2

    Returns
    -------
    selection, reporting : lists
    """
    subjects = list(subjects)
    if len(subjects) < 2:
        raise ValueError(f"choosing a layer on one half of the subjects and reporting it on the other needs at "
                         f"least 2 subjects; got {len(subjects)}")
    return subjects[0::2], subjects[1::2]


def best_layers_held_out(table, score="mean_r"):
    """Each model's best layer, chosen on the selection half of the subjects, scored on the reporting half.

    Parameters
    ----------
    table : DataFrame
        Rows of :func:`layer_sweep` (model, layer, subject, mean_r, norm_r).
    score : str
        Column the layer is chosen by (its mean over the selection half).

    Returns
    -------
    DataFrame
        One row per model: ``layer`` (chosen), ``mean_r``, ``std_r`` and
        ``norm_r`` (mean / std across the reporting half's subjects only),
        ``n_report``, and ``selection_score`` (the chosen layer's mean
        ``score`` over the selection half, not a result to report).
    """
    rows = []
    for model, part in table.groupby("model", sort=False):
        selection, reporting = split_subjects(pd.unique(part["subject"]))
        chosen = part[part["subject"].isin(selection)].groupby("layer")[score].mean()
        layer = chosen.idxmax()
        reported = part[(part["layer"] == layer) & part["subject"].isin(reporting)]
        rows.append({"model": model, "layer": layer, "mean_r": reported["mean_r"].mean(),
                     "std_r": reported["mean_r"].std(ddof=1) if len(reported) > 1 else 0.0,
                     "norm_r": reported["norm_r"].mean() if "norm_r" in reported else np.nan,
                     "n_report": len(reported), "selection_score": chosen[layer]})
    return pd.DataFrame(rows)


def best_layer_of(r_by_layer):
    """The best layer of ``{layer: r (n_subjects, n_rois)}``, chosen on the selection half of the subjects.

    Returns
    -------
    layer
        Highest mean (over the selection half) of each subject's ROI-mean r.
    reporting : int array
        Positions of the reporting half: report ``r_by_layer[layer][reporting]``.
    """
    n = next(iter(r_by_layer.values())).shape[0]
    selection, reporting = (np.array(half, dtype=int) for half in split_subjects(range(n)))
    with quiet_nan_warnings():
        score = {k: np.nanmean(np.nanmean(np.atleast_2d(r)[selection], axis=1)) for k, r in r_by_layer.items()}
    return max(score, key=lambda k: -np.inf if np.isnan(score[k]) else score[k]), reporting


def plot_layer_curves(summary, out=None, title="Held-out r by layer (mean +- std across subjects)",
                      side_by_side=False):
    """One curve per model: layer on x, ROI-mean r on y, std error bars.

    ``side_by_side=True``: one panel per model with its layer index on x and a shared y axis (e.g. Whisper's
    encoder and decoder); otherwise one panel, x the relative depth (layer / last layer).
    """
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(summary["model"]))
    if not side_by_side:
        fig, ax = plt.subplots(figsize=(7, 3.8))
        for model, part in summary.groupby("model"):
            depth = part["layer"] / max(part["layer"].max(), 1)
            ax.errorbar(depth, part["mean_r"], yerr=part["std_r"], marker="o", capsize=2, label=model)
        ax.set_xlabel("relative layer depth (layer / last layer)")
        ax.set_ylabel("mean r over 360 ROIs")
        return finish_figure(fig, ax, title, out)
    fig, axes = plt.subplots(1, len(models), figsize=(3.6 * len(models), 3.6), sharey=True, squeeze=False)
    for ax, model in zip(axes[0], models):
        part = summary[summary["model"] == model]
        ax.errorbar(part["layer"], part["mean_r"], yerr=part["std_r"], marker="o", capsize=2)
        ax.set_title(model, fontsize=10)
        ax.set_xlabel("layer")
    axes[0, 0].set_ylabel("mean r over 360 ROIs")
    fig.suptitle(title)
    fig.tight_layout()
    if out:
        fig.savefig(out, dpi=120)
    return fig


def story_ceiling(story, trim=DEFAULT_TRIM, n_folds=5):
    """Noise ceiling of every subject and ROI, scored on the kit's outer folds, (n_subjects, 360).

    The one definition of the kit (:func:`encoding_kit.stats.noise_ceiling`):
    the estimated r of each subject's data with the stimulus-driven signal
    shared by all subjects, i.e. the held-out r of a perfect model, so that
    normalised r (``r / ceiling``) is 1 for a perfect model. It is estimated
    in each of the ``n_folds`` held-out blocks of :func:`evaluate_encoding`
    (trimmed TRs) and averaged in Fisher z, as the model's r is.
    """
    n = story.n_trs
    blocks = np.array_split(np.arange(trim[0], n - trim[1]), n_folds)
    return noise_ceiling(story.fmri, blocks=blocks)


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
        Largest |mean r| accepted in noise-only ROIs.

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


def sweep_point(X, story, pca=None, **labels):
    """Score one setting of a sweep: one row per subject with its ROI-mean r.

    Parameters
    ----------
    X : array of shape (n_trs, n_features)
    story : Story
    pca : int, optional
        In-fold PCA of wider features.
    **labels
        The setting (e.g. ``context_tokens=200``), repeated on every row.

    Returns
    -------
    DataFrame with the label columns, ``subject`` and ``mean_r``
    """
    res = evaluate_encoding(X, story.fmri, pca=pca, progress=False)
    return pd.DataFrame({**labels, "subject": res.subjects, "mean_r": res.roi_mean_r()})


def plot_sweep(table, x, hue=None, title="", out=None):
    """Mean +- std across subjects of each setting of a sweep (rows of :func:`sweep_point`).

    Writes the PNG to ``out`` and the table beside it as CSV; returns the figure.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, part in table.groupby(hue) if hue else [("", table)]:
        stats = part.groupby(x, sort=False)["mean_r"].agg(["mean", "std"]).reset_index()
        ax.errorbar(stats[x].astype(str), stats["mean"], yerr=stats["std"], marker="o", capsize=3, label=key)
    ax.set(xlabel=x, ylabel="mean r over ROIs (mean +- std)")
    if out is not None:
        table.to_csv(str(out).replace(".png", ".csv"), index=False)
    return finish_figure(fig, ax, title, out)
