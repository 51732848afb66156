"""``check(name, ...)``: the public checks a student runs on their own objects, in a notebook cell.

Each check tests shapes, the time base, causality and NaN on the objects passed, prints one line per
test (``PASS`` / ``FAIL`` with what was expected and found) and, given ``out`` (the notebook's results
folder), records what it saw in ``out/checks/<name>.json`` (the verdict) and ``<name>.npz`` (arrays only,
never pickled objects), which the TAs' hidden tests read when the notebook is graded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

PROJECTION = 8  # columns of the fixed random projection of a feature matrix the records keep (small files)


class CheckFailed(AssertionError):
    """A public check found a problem (the message names the object, what was expected and found)."""


def _finite(name, value):
    value = np.asarray(value, dtype=float)
    if not np.isfinite(value).all():
        raise CheckFailed(f"{name} has {int((~np.isfinite(value)).sum())} NaN or infinite values")
    return value


def _shape(name, value, rows=None, ndim=2):
    value = np.asarray(value)
    if value.ndim != ndim or (rows is not None and value.shape[0] != rows):
        want = f"({rows if rows is not None else 'n'}, ...)" if ndim == 2 else f"({rows if rows is not None else 'n'},)"
        raise CheckFailed(f"{name} has shape {value.shape}, expected {want}")
    return value


def _audio_features(X_audio, n_trs):
    _shape("X_audio", X_audio, n_trs)
    _finite("X_audio", X_audio)
    return {}, {"shape": list(np.shape(X_audio))}


def _time_base(word_onsets, word_trs, audio_spans, n_trs, tr=1.5):
    onsets = _finite("word_onsets", _shape("word_onsets", word_onsets, ndim=1))
    trs = _shape("word_trs", word_trs, len(onsets), ndim=1)
    if not np.issubdtype(trs.dtype, np.integer) or trs.min(initial=0) < 0 or trs.max(initial=0) >= n_trs:
        raise CheckFailed(f"word_trs must be integer TR indices in [0, {n_trs}), found {trs.dtype} in "
                          f"[{trs.min(initial=0)}, {trs.max(initial=0)}]")
    spans = _finite("audio_spans", _shape("audio_spans", audio_spans, n_trs))
    if spans.shape[1] != 2 or not (spans[:, 1] > spans[:, 0]).all():
        raise CheckFailed(f"audio_spans must be (n_trs, 2) [start, end) seconds with end > start, found {spans.shape}")
    starts = tr * (np.arange(n_trs) + 1)
    if (spans[:, 0] >= starts).any():  # causality: a window may not start after its TR has ended
        raise CheckFailed("an audio window starts after the end of its TR (it cannot explain that TR)")
    return {"word_onsets": onsets, "word_trs": trs.astype(np.int64), "audio_spans": spans, "tr": float(tr)}, {}


def _cross_validation(X, folds, fold_r, r_cv, fitted_means):
    X = _finite("X", _shape("X", X))
    n_trs = X.shape[0]
    roles = np.zeros((len(folds), n_trs), np.int8)
    for i, (train, test) in enumerate(folds):
        train, test = np.asarray(train), np.asarray(test)
        if np.intersect1d(train, test).size:
            raise CheckFailed(f"fold {i}: {np.intersect1d(train, test).size} TRs are both in train and test")
        roles[i, train], roles[i, test] = 1, 2
    fold_r = _finite("fold_r", np.atleast_2d(fold_r))
    r_cv = _finite("r_cv", np.ravel(r_cv))
    if fold_r.shape[1] != r_cv.shape[0]:
        raise CheckFailed(f"fold_r has {fold_r.shape[1]} targets per fold, r_cv {r_cv.shape[0]}")
    means = _finite("fitted_means", np.atleast_2d(fitted_means))
    if means.shape[1] != X.shape[1]:
        raise CheckFailed(f"fitted_means have {means.shape[1]} features, X has {X.shape[1]}")
    project = np.random.default_rng(0).standard_normal((X.shape[1], PROJECTION)) / np.sqrt(X.shape[1])
    return {"roles": roles, "fold_r": fold_r, "r_cv": r_cv, "means_proj": means @ project, "X_proj": X @ project}, {}


def _layer_choice(layer_r, layers, chosen_on, reported_on, best_layer, reported_r):
    layer_r = _finite("layer_r", _shape("layer_r", layer_r))
    if layer_r.shape[1] != len(layers):
        raise CheckFailed(f"layer_r has {layer_r.shape[1]} columns, expected one per layer ({len(layers)})")
    if best_layer not in list(layers):
        raise CheckFailed(f"best_layer {best_layer} is not one of the layers {list(layers)}")
    _finite("reported_r", reported_r)
    return {"layer_r": layer_r, "layers": np.asarray(layers), "chosen_on": np.asarray(chosen_on, np.int64),
            "reported_on": np.asarray(reported_on, np.int64), "best_layer": np.asarray(best_layer),
            "reported_r": np.asarray(float(reported_r))}, {}


def _subjects(subject_r, mean_r, std_r):
    subject_r = _finite("subject_r", _shape("subject_r", subject_r, ndim=1))
    if len(subject_r) < 2:
        raise CheckFailed(f"subject_r has {len(subject_r)} subject(s): evaluate every subject")
    for label, got, want in (("mean_r", mean_r, subject_r.mean()), ("std_r", std_r, subject_r.std(ddof=1))):
        if not np.isclose(got, want, atol=1e-6) and not (label == "std_r" and np.isclose(got, subject_r.std())):
            raise CheckFailed(f"{label} = {got:.4f} is not the {label[:-2]} over subject_r ({want:.4f})")
    return {"subject_r": subject_r}, {"n_subjects": len(subject_r)}


CHECKS = {"audio_features": _audio_features, "time_base": _time_base, "cross_validation": _cross_validation,
          "layer_choice": _layer_choice, "subjects": _subjects}


def check(name, out=None, **objects):
    """Run the public check ``name`` on the student's ``objects``; print and return whether it passed.

    Parameters
    ----------
    name : str
        One of ``CHECKS``: ``"audio_features"`` (X_audio (n_trs, n_features), n_trs), ``"time_base"``
        (word_onsets, word_trs (n_words,), audio_spans (n_trs, 2) s, n_trs), ``"cross_validation"`` (X, folds,
        fold_r (n_folds, n_targets), r_cv (n_targets,), fitted_means (n_folds, n_features)), ``"layer_choice"``
        (layer_r (n_subjects, n_layers), layers, chosen_on, reported_on, best_layer, reported_r), ``"subjects"``
        (subject_r (n_subjects,), mean_r, std_r).
    out : path, optional
        The notebook's results folder: the outcome and the arrays are recorded under ``out/checks/``.

    Returns
    -------
    bool
    """
    if name not in CHECKS:
        raise ValueError(f"check {name!r} is unknown; expected one of {', '.join(CHECKS)}")
    try:
        arrays, facts = CHECKS[name](**objects)
        passed, message = True, "shape, time base, causality and NaN as expected"
    except CheckFailed as exc:
        arrays, facts, passed, message = {}, {}, False, str(exc)
    except TypeError as exc:  # a missing or extra object: say which
        arrays, facts, passed, message = {}, {}, False, f"wrong objects passed: {exc}"
    print(f"{'PASS' if passed else 'FAIL'} check({name!r}): {message}")
    if out is not None:
        _record(Path(out) / "checks", name, passed, message, arrays, facts)
    return passed


def _record(folder, name, passed, message, arrays, facts):
    from ..core.storage import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    if arrays:
        atomic_write(folder / f"{name}.npz", lambda tmp: np.savez(tmp, **arrays))
    text = json.dumps({"check": name, "passed": passed, "message": message, **facts})
    atomic_write(folder / f"{name}.json", lambda tmp: Path(tmp).write_text(text))
