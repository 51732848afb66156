"""Figures of layer sweeps and parameter sweeps (saved as PNG and returned for inline display)."""

from __future__ import annotations

from .roi_analysis import finish_figure


def plot_layer_curves(summary, out=None, title="Held-out r by layer (mean +- std across subjects)",
                      side_by_side=False):
    """One curve per model: layer on x, ROI-mean r on y, std error bars.

    ``side_by_side=True``: one panel per model with its layer index on x and a shared y axis (e.g. Whisper's
    encoder and decoder); otherwise one panel, x the relative depth (layer / last layer).

    Examples
    --------
    >>> import pandas as pd, utils
    >>> summary = pd.DataFrame({"model": "toy", "layer": [0, 1, 2], "mean_r": [0.02, 0.05, 0.04],
    ...                         "std_r": [0.01, 0.01, 0.02]})
    >>> figure = utils.plot_layer_curves(summary)
    >>> len(figure.axes) >= 1
    True
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
