"""ROI tables and maps for interpreting encoding results.

Top-k ROIs with names and groups, ROI-group summaries with across-subject
error bars, "preference" maps (which model / space / layer predicts each ROI
best) and difference maps between two models with significance masking.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.rois import GROUPS, roi_table
from ..encoding.evaluate import DEFAULT_TRIM
from .stats import fdr_bh, noise_ceiling, quiet_nan_warnings


def top_rois(values, k=10, ascending=False):
    """The k ROIs with the highest (or lowest) values, with names and groups.

    Parameters
    ----------
    values : array of shape (360,)

    Returns
    -------
    DataFrame with columns rank, index, name, group, value

    Examples
    --------
    >>> import numpy as np, utils
    >>> values = np.zeros(360)
    >>> values[utils.roi_index("L_A1")] = 0.3
    >>> print(utils.top_rois(values, k=1)[["rank", "name", "group"]].to_string(index=False))
    rank name          group
       1 L_A1 early_auditory
    """
    values = np.asarray(values, dtype=float)
    table = roi_table().assign(value=values)
    table = table.dropna(subset=["value"]).sort_values("value", ascending=ascending).head(k)
    return table.assign(rank=range(1, len(table) + 1))[["rank", "index", "name", "group", "value"]]


def group_summary(r):
    """Mean r per ROI group: mean and std across subjects of each subject's group mean.

    Parameters
    ----------
    r : array of shape (n_subjects, 360)

    Returns
    -------
    DataFrame with columns group, n_rois, mean_r, std_r, sem_r

    Examples
    --------
    >>> import numpy as np, utils
    >>> r = np.full((4, 360), 0.01)
    >>> table = utils.group_summary(r)
    >>> list(table.columns)
    ['group', 'n_rois', 'mean_r', 'std_r', 'sem_r']
    >>> int(table.n_rois.sum())
    360
    """
    r = np.atleast_2d(r)
    groups = roi_table()["group"].to_numpy()
    rows = []
    with quiet_nan_warnings():
        for group in GROUPS:
            per_subject = np.nanmean(r[:, groups == group], axis=1)
            std = np.nanstd(per_subject, ddof=1) if len(per_subject) > 1 else 0.0
            rows.append({"group": group, "n_rois": int((groups == group).sum()), "mean_r": np.nanmean(per_subject),
                         "std_r": std, "sem_r": std / np.sqrt(len(per_subject))})
    return pd.DataFrame(rows)


def plot_group_summary(summaries, out=None, title="Mean r per ROI group"):
    """Bar chart of group means with across-subject std error bars.

    Parameters
    ----------
    summaries : dict {label: DataFrame from :func:`group_summary`}
    out : str or Path, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.5))
    width = 0.8 / len(summaries)
    for j, (label, table) in enumerate(summaries.items()):
        x = np.arange(len(table)) + j * width
        ax.bar(x, table["mean_r"], width, yerr=table["std_r"], capsize=2, label=label)
    ax.set_xticks(np.arange(len(GROUPS)) + 0.4 - width / 2, [g.replace("_", "\n") for g in GROUPS], fontsize=8)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("held-out r (mean +- std over subjects)")
    return finish_figure(fig, ax, title, out)


def finish_figure(fig, ax, title, out=None):
    """Title, legend, tight layout, and a PNG when ``out`` is given; returns the figure."""
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    if out:
        fig.savefig(out, dpi=120)
    return fig


def preference_map(scores):
    """Which candidate predicts each ROI best.

    Parameters
    ----------
    scores : dict {label: array (n_subjects, 360) or (360,)}
        Held-out r of each model / feature space / layer.

    Returns
    -------
    best : array of shape (360,)
        Index into ``list(scores)`` of the best candidate (subject-mean r);
        NaN where every candidate is NaN.
    labels : list of str
    """
    labels = list(scores)
    stacked = np.stack([np.nanmean(np.atleast_2d(v), axis=0) for v in scores.values()])
    best = np.full(stacked.shape[1], np.nan)
    ok = np.isfinite(stacked).any(0)
    best[ok] = np.nanargmax(stacked[:, ok], axis=0)
    return best, labels


def preferred_layer_map(layer_scores, min_r=None):
    """Preferred layer index per ROI (the layer gradient), optionally where the best r >= min_r.

    Parameters
    ----------
    layer_scores : dict {layer: array (n_subjects, 360) or (360,)}
    min_r : float, optional
        ROIs whose best subject-mean r is below this are NaN.

    Returns
    -------
    array of shape (360,)
        Layer number (the dict key) of the best layer.
    """
    best, labels = preference_map(layer_scores)
    layers = np.array(labels, dtype=float)
    out = np.where(np.isfinite(best), layers[np.nan_to_num(best).astype(int)], np.nan)
    if min_r is not None:
        peak = np.nanmax(np.stack([np.nanmean(np.atleast_2d(v), 0) for v in layer_scores.values()]), axis=0)
        out[~(peak >= min_r)] = np.nan
    return out


def difference_map(r_a, r_b, alpha=0.05):
    """Subject-mean r difference between two models, with a paired group test.

    Parameters
    ----------
    r_a, r_b : arrays of shape (n_subjects, 360)

    Returns
    -------
    dict with ``difference`` (360,), ``p``, ``q`` (BH-FDR) and ``significant``
    (two-sided paired t-test on Fisher z differences, q < alpha)
    """
    from scipy import stats

    diff_z = np.arctanh(np.clip(r_a, -0.999999, 0.999999)) - np.arctanh(np.clip(r_b, -0.999999, 0.999999))
    with quiet_nan_warnings():
        p = np.asarray(stats.ttest_1samp(diff_z, 0.0, axis=0, nan_policy="omit").pvalue, float)
        diff = np.nanmean(r_a, 0) - np.nanmean(r_b, 0)
    q = fdr_bh(p)
    return {"difference": diff, "p": p, "q": q, "significant": np.nan_to_num(q, nan=1.0) < alpha}


def plot_preference(best, labels, title=None, out=None, **kwargs):
    """Categorical brain map of :func:`preference_map` with a legend.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from .brainmaps import plot_brain

    colors = [tuple(c) for c in __import__("matplotlib").colormaps["tab10"].colors[:len(labels)]]
    fig = plot_brain(np.asarray(best, float), title=title, cmap=ListedColormap(colors), vmin=-0.5,
                     vmax=len(labels) - 0.5, **kwargs)
    fig.axes[-1].remove()  # categorical: a legend instead of a colour bar
    fig.legend(handles=[Patch(color=c, label=lab) for c, lab in zip(colors, labels)], loc="lower center",
               ncol=min(len(labels), 5), fontsize=9, frameon=False)
    if out:
        fig.savefig(out, dpi=100, bbox_inches="tight")
    return fig


def story_ceiling(story, trim=DEFAULT_TRIM, n_folds=5):
    """Noise ceiling of every subject and ROI, scored on the kit's outer folds, (n_subjects, 360).

    The one definition of the kit (:func:`encoding_kit.analysis.stats.noise_ceiling`):
    the estimated r of each subject's data with the stimulus-driven signal
    shared by all subjects, i.e. the held-out r of a perfect model, so that
    normalised r (``r / ceiling``) is 1 for a perfect model. It is estimated
    in each of the ``n_folds`` held-out blocks of :func:`evaluate_encoding`
    (trimmed TRs) and averaged in Fisher z, as the model's r is.

    Examples
    --------
    >>> import numpy as np, utils
    >>> story = utils.load_story()
    >>> ceiling = utils.story_ceiling(story, n_folds=3)
    >>> ceiling.shape
    (3, 360)
    >>> bool(np.isnan(ceiling).any())        # NaN where no shared signal is measurable
    True
    """
    n = story.n_trs
    blocks = np.array_split(np.arange(trim[0], n - trim[1]), n_folds)
    return noise_ceiling(story.fmri, blocks=blocks)
