"""Cache of encoding results, keyed by the content of the inputs.

Notebooks evaluate the same feature set more than once (the brain-map notebook
re-scores the layers of the text and audio notebooks, the multi-subject
notebook the assignment's features, variance partitioning the single spaces of
the fusion table), and a TA re-executes all of them. An evaluation is a pure
function of the features, the data and the settings, so its result is stored
under a hash of exactly those: the bytes of ``X`` and of the stacked fMRI, the
subjects, every CV and ridge setting, the fitter's own parameters and
:data:`CACHE_VERSION`. Anything that changes gives a new key; stale results
are never returned. Files are written to a temporary folder and renamed, so an
interrupted run leaves no half-written result. The folder records the SHA-1 of
its files; an entry that cannot be read, does not match its checksums or has
inconsistent shapes is reported in one line, moved aside and recomputed. The folder is the feature
cache's (``features/`` or ``$KIT_FEATURE_DIR``), prefix ``encoding-``.

A fitter is cached when it exposes ``cache_params()``: the ridge fitters
(deterministic; banded ridge with a fixed random state) and the seeded
networks of :mod:`.nonlinear`, whose key also holds the device type and the
torch version. What a fitter learns besides the scores (the networks' stopping
epochs and attention weights) is listed in its ``cache_state_attrs``, stored
beside the result and restored on a hit, so a cached evaluation leaves the
fitter as fitting would.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil

import numpy as np

from ..core.storage import (
    cache_key,
    cache_root,
    cache_unwritable,
    file_sha1,
    hash_array,
    remove_stale_temps,
    set_aside,
    temp_tag,
)
from .results import EncodingResult

CACHE_VERSION = 4
"""Bump when the engine changes its numbers, so old cached results are not reused."""


def encoding_cache_folder(X, Y, subjects, settings, fitter, root=None):
    """Cache folder for one evaluation, or ``None`` when it cannot be cached.

    Parameters
    ----------
    X : float32 array of shape (n_trs, n_features)
    Y : float32 array of shape (n_trs, n_subjects * n_rois)
    subjects : list
    settings : dict
        CV, delay, PCA and output settings of the evaluation.
    fitter : object
        Cached only if it has ``cache_params()``.
    root : str or Path, optional

    Returns
    -------
    pathlib.Path or None
    """
    if not hasattr(fitter, "cache_params"):
        return None
    params = {"version": CACHE_VERSION, "X": hash_array(X), "Y": hash_array(Y), "subjects": list(map(str, subjects)),
              "fitter": type(fitter).__name__, **fitter.cache_params(), **settings}
    return cache_root(root) / cache_key("encoding", params)


def load_cached_result(folder, fitter=None):
    """The cached :class:`EncodingResult` in ``folder``, or ``None``.

    The fitter's learned state (its ``cache_state_attrs`` lists) is extended
    with what was stored, as the fit would have done.
    """
    if folder is None or not folder.exists():
        return None
    remove_stale_temps(folder.parent)
    state = folder / "fitter_state.npz"
    try:
        _verify_checksums(folder)
        result = EncodingResult.load(folder, "result")
        _check_shapes(result)
        stored = {}
        if fitter is not None and state.exists():
            with np.load(state, allow_pickle=False) as z:
                stored = {name: list(z[name]) for name in getattr(fitter, "cache_state_attrs", ())}
    except Exception as exc:  # unreadable, altered or inconsistent: recompute
        set_aside(folder, f"{type(exc).__name__}: {exc}")
        return None
    for name, values in stored.items():
        getattr(fitter, name).extend(values)
    return result


CHECKSUMS = "checksums.json"


def _verify_checksums(folder):
    """Raise ``ValueError`` naming the first file whose bytes differ from the recorded SHA-1."""
    record = folder / CHECKSUMS
    if not record.exists():
        if not (folder / "result.npz").exists():
            raise FileNotFoundError(f"{folder / 'result.npz'} is missing")
        return  # an entry from before checksums: its shapes are still checked
    for name, sha in json.loads(record.read_text()).items():
        if file_sha1(folder / name) != sha:
            raise ValueError(f"{name} does not match its recorded checksum")


def _check_shapes(result):
    """The arrays of a loaded result agree with each other."""
    shape = (len(result.subjects), len(result.roi_names))
    for name in ("r", "r2"):
        if getattr(result, name).shape != shape:
            raise ValueError(f"{name} has shape {getattr(result, name).shape}, expected {shape}")
    for name in ("r_folds", "alphas"):
        if getattr(result, name).shape[1:] != shape:
            raise ValueError(f"{name} has shape {getattr(result, name).shape}, expected (n_folds, *{shape})")


def fitter_state_mark(fitter):
    """Lengths of the fitter's learned-state lists before an evaluation."""
    return {name: len(getattr(fitter, name)) for name in getattr(fitter, "cache_state_attrs", ())}


def save_cached_result(folder, result, fitter=None, mark=None):
    """Store ``result`` (and what ``fitter`` learned since ``mark``) in ``folder`` atomically.

    Written to a temporary folder, then renamed.
    """
    if folder is None:
        return
    tmp = folder.with_name(f".{folder.name}.{temp_tag()}.tmp-{secrets.token_hex(4)}")  # unique per writer
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        result.save(tmp, "result", tidy=False)
        if fitter is not None and mark:
            np.savez(tmp / "fitter_state.npz", **{name: np.asarray(getattr(fitter, name)[start:])
                                                  for name, start in mark.items()})
        sums = {item.name: file_sha1(item) for item in sorted(tmp.iterdir()) if item.is_file()}
        (tmp / CHECKSUMS).write_text(json.dumps(sums, indent=1))
    except OSError as exc:  # read-only, missing or full cache folder: the result is returned uncached
        shutil.rmtree(tmp, ignore_errors=True)
        cache_unwritable(folder, exc)
        return
    try:
        os.replace(tmp, folder)
    except OSError:  # another process stored the same result first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)


def settings_hash(values):
    """Hash of an optional array setting (``None`` stays ``None``)."""
    return None if values is None else hash_array(np.asarray(values))
