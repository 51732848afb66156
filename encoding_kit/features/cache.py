"""Feature cache: one ``.npy`` per layer under ``features/<kind>-<hash>/``.

The key is a hash of everything that changes the result: the model name and
revision (or a hash of a loaded model's weights), the layers, every
extraction parameter, the precision (float32, or bf16 autocast on cuda) and a
hash of the words or the audio. A changed parameter gives a new key, so stale
features are never returned. Files are written to a temporary name and
renamed, so an interrupted run never leaves a half-written layer behind.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..data import PROJECT_ROOT, atomic_write

CACHE_ENV = "KIT_FEATURE_DIR"


def cache_root(path=None):
    """Cache folder: argument, then ``$KIT_FEATURE_DIR``, then ``features/``."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(CACHE_ENV) or PROJECT_ROOT / "features")


def hash_array(values):
    """Short stable hash of an array or a list of strings."""
    h = hashlib.sha1()
    if isinstance(values, np.ndarray):
        h.update(str((values.dtype.str, values.shape)).encode())
        h.update(np.ascontiguousarray(values).tobytes())
    else:
        h.update(json.dumps(list(map(str, values))).encode())
    return h.hexdigest()[:16]


def cache_key(kind, params):
    """Folder name for a parameter set: ``<kind>-<sha1 of sorted JSON params>``."""
    text = json.dumps(params, sort_keys=True, default=str)
    return f"{kind}-{hashlib.sha1(text.encode()).hexdigest()[:16]}"


class FeatureCache:
    """Load or store per-layer feature arrays under one key.

    Parameters
    ----------
    kind : str
        ``"text"``, ``"audio"``, ...; the folder prefix.
    params : dict
        Everything that changes the result (JSON-serialisable).
    root : str or Path, optional
    enabled : bool
        ``False`` turns the cache off (always recompute, never write).
    """

    def __init__(self, kind, params, root=None, enabled=True):
        self.folder = cache_root(root) / cache_key(kind, params)
        self.params = params
        self.enabled = enabled

    def _file(self, layer):
        return self.folder / f"layer_{int(layer):03d}.npy"

    def load(self, layers):
        """{layer: array} if every requested layer is cached, else ``None``."""
        if not self.enabled or not all(self._file(layer).exists() for layer in layers):
            return None
        return {layer: np.load(self._file(layer)) for layer in layers}

    def missing(self, layers):
        """Requested layers that are not cached yet."""
        return [layer for layer in layers if not (self.enabled and self._file(layer).exists())]

    def save(self, features):
        """Write {layer: array} atomically; records the parameters beside them."""
        if not self.enabled:
            return
        meta = self.folder / "params.json"
        if not meta.exists():
            text = json.dumps(self.params, indent=1, sort_keys=True, default=str)
            atomic_write(meta, lambda tmp: tmp.write_text(text))
        for layer, values in features.items():
            atomic_write(self._file(layer), lambda tmp, values=values: np.save(tmp, np.asarray(values)))
