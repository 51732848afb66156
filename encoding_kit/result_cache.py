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
interrupted run leaves no half-written result. The folder is the feature
cache's (``features/`` or ``$KIT_FEATURE_DIR``), prefix ``encoding-``.

Only deterministic fitters are cached: :class:`~encoding_kit.ridge.RidgeFitter`
and :class:`~encoding_kit.fusion.BandedRidgeFitter` (fixed random state)
expose ``cache_params()``; the neural-network fitters do not, and always fit.
"""

from __future__ import annotations

import os
import shutil

import numpy as np

from .features.cache import cache_key, cache_root, hash_array
from .results import EncodingResult

CACHE_VERSION = 2
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


def load_cached_result(folder):
    """The cached :class:`EncodingResult` in ``folder``, or ``None``."""
    if folder is None or not (folder / "result.npz").exists():
        return None
    return EncodingResult.load(folder, "result")


def save_cached_result(folder, result):
    """Store ``result`` in ``folder`` atomically (write a temporary folder, then rename)."""
    if folder is None:
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    result.save(tmp, "result", tidy=False)
    try:
        os.replace(tmp, folder)
    except OSError:  # another process stored the same result first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)


def settings_hash(values):
    """Hash of an optional array setting (``None`` stays ``None``)."""
    return None if values is None else hash_array(np.asarray(values))
