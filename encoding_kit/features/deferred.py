"""What an offline stand-in is built from, as one hash: the key of its identity record (:mod:`.identity`).

A stand-in with real weights (:data:`.identity.DEFERRABLE`) is built from files of installed packages by the kit's
own code, with the installed libraries. The fingerprint hashes all of it: the name asked for and its model type,
the stat (path, size, modification time) of every file of the packages the stand-ins read, the source of the kit's
``features`` stage and of ``core/storage.py`` (which defines the hashes), and the versions of the libraries that
build and run the model. Any change (a new package version, an edited converter) gives a new fingerprint, so the
model is built again and its identity recorded anew; a changed checkpoint is never served features of the old.
"""

from __future__ import annotations

import functools
import hashlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .offline_models import standin_folders

LIBRARIES = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "gguf", "huggingface-hub")
"""The libraries whose version enters the fingerprint."""
KIT = Path(__file__).resolve().parents[1]


def _folder_files(label, folder):
    if folder is None:
        return [f"{label}: not installed"]
    folder = Path(folder)
    return [label, *(f"{f.relative_to(folder)}:{f.stat().st_size}:{f.stat().st_mtime_ns}"
                     for f in sorted(folder.rglob("*")) if f.is_file() and "__pycache__" not in f.parts)]


def _library(name):
    try:
        return f"{name}=={version(name)}"
    except PackageNotFoundError:
        return f"{name}: not installed"


def _environment_hash():
    h = hashlib.sha1()
    for label, folder in standin_folders().items():  # found as the stand-ins find them, at every call
        h.update("\n".join(_folder_files(label, folder)).encode())
    h.update(_code_and_libraries())
    return h.hexdigest()


@functools.cache
def _code_and_libraries():
    h = hashlib.sha1()
    for source in [*sorted((KIT / "features").rglob("*.py")), KIT / "core" / "storage.py"]:
        h.update(str(source.relative_to(KIT)).encode())
        h.update(source.read_bytes())
    h.update("\n".join(map(_library, LIBRARIES)).encode())
    return h.digest()


def standin_fingerprint(name, model_type):
    """A 16-hex-digit hash of what the offline stand-in for ``name`` (of ``model_type``) is built from."""
    return hashlib.sha1(f"{name}\n{model_type}\n{_environment_hash()}".encode()).hexdigest()[:16]
