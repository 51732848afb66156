"""Does a feature set recover the demo's planted phoneme-class drivers? (demo only)

The demo plants, in a few auditory ROIs that carry nothing else, the seconds
of one phoneme class per TR beyond what the amount of speech predicts
(:data:`encoding_kit.demo.generate.PHONEME_ROIS`). The acoustic envelope follows how
much speech there is, not which sounds; a speech model hears the sounds.
:func:`phoneme_recovery` scores feature sets in those ROIs with the layer of
each chosen on one half of the subjects and reported on the other half
(as :func:`encoding_kit.analysis.layers.best_layers_held_out` does), and
:func:`phoneme_recovery_text` states the comparison with its numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.layers import split_subjects
from ..analysis.stats import fisher_mean


def phoneme_rois(truth):
    """ROIs where the demo planted a phoneme-class driver.

    Parameters
    ----------
    truth : dict from :func:`encoding_kit.data.course_files.load_truth`

    Returns
    -------
    dict {roi index: phoneme class}
        Empty for a demo made before phoneme drivers were planted.
    """
    names = [str(n) for n in truth["driver_names"]]
    columns = {i: n[len("phoneme_"):] for i, n in enumerate(names) if n.startswith("phoneme_")}
    weights = np.asarray(truth["weights"])
    return {int(roi): columns[c] for c in columns for roi in np.flatnonzero(weights[:, c] != 0)}


def _layer_scores(layers, rois, acoustic, subjects):
    """Mean r over ``rois`` and ``acoustic`` ROIs per layer for the given subject positions (Fisher z mean)."""
    return {layer: (fisher_mean(np.atleast_2d(res.r)[subjects][:, rois].ravel()),
                    fisher_mean(np.atleast_2d(res.r)[subjects][:, acoustic].ravel()))
            for layer, res in layers.items()}


def phoneme_recovery(results, truth, baseline="envelope"):
    """Held-out r of each feature set in the planted phoneme ROIs, layer chosen on the other subjects.

    Parameters
    ----------
    results : dict {feature set: {layer: EncodingResult}}
        As :func:`encoding_kit.run.sweeps.layer_sweep` returns per set
        (a single-layer set such as the envelope has one entry).
    truth : dict
        The demo's ground truth.
    baseline : str
        The set the others are compared with (a key of ``results``).

    Returns
    -------
    DataFrame
        One row per set: ``features``, ``layer`` (chosen on the selection
        half by its mean r in the phoneme ROIs), ``phoneme_rois_r`` and
        ``acoustic_rois_r`` (Fisher-z mean r over those ROIs and the
        reporting half's subjects), ``minus_baseline`` (phoneme-ROI r minus
        the baseline's), ``n_rois``, ``n_report``.
    """
    planted = phoneme_rois(truth)
    if not planted:
        raise ValueError("this demo has no planted phoneme-class drivers (made by an older kit); regenerate it with "
                         "`python -m encoding_kit demo --overwrite`")
    if baseline not in results:
        raise ValueError(f"baseline must be one of the feature sets {list(results)}, got {baseline!r}")
    rois = sorted(planted)
    names = list(truth["driver_names"])
    acoustic = np.flatnonzero(np.asarray(truth["weights"])[:, names.index("acoustic_energy")] > 0.5)
    rows = []
    for name, layers in results.items():
        n_subjects = np.atleast_2d(next(iter(layers.values())).r).shape[0]
        selection, reporting = split_subjects(range(n_subjects))
        chosen = _layer_scores(layers, rois, acoustic, selection)
        layer = max(chosen, key=lambda k: chosen[k][0])
        phon, aco = _layer_scores({layer: layers[layer]}, rois, acoustic, reporting)[layer]
        rows.append({"features": name, "layer": layer, "phoneme_rois_r": phon, "acoustic_rois_r": aco,
                     "n_rois": len(rois), "n_report": len(reporting)})
    table = pd.DataFrame(rows)
    table["minus_baseline"] = table["phoneme_rois_r"] - table.loc[table["features"] == baseline, "phoneme_rois_r"].iloc[0]
    return table


def phoneme_recovery_text(table, model, baseline="envelope"):
    """One sentence with the numbers: does ``model`` beat ``baseline`` in the phoneme ROIs?"""
    rows = table.set_index("features")
    ours, base = rows.loc[model], rows.loc[baseline]
    verdict = "beats" if ours["phoneme_rois_r"] > base["phoneme_rois_r"] else "does NOT beat"
    return (f"In the {int(ours['n_rois'])} ROIs planted with phoneme-class drivers, {model} (layer {int(ours['layer'])}) "
            f"reaches mean r {ours['phoneme_rois_r']:.3f} and {baseline} {base['phoneme_rois_r']:.3f} "
            f"({ours['phoneme_rois_r'] - base['phoneme_rois_r']:+.3f}; {int(ours['n_report'])} reporting subjects, "
            f"layer chosen on the others): {model} {verdict} the {baseline} there. In the acoustic ROIs: "
            f"{ours['acoustic_rois_r']:.3f} vs {base['acoustic_rois_r']:.3f}.")
