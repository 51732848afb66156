"""Which model actually ran: the name asked for, or the offline stand-in that served it.

On the demo most names are served by stand-ins (``features/models.py``), and
several names by the same one: ``gpt2`` and ``Qwen/Qwen2.5-0.5B`` both run
as SmolLM2-135M. Feature caches are keyed by the model that ran
(:func:`model_key`), so such names share their features and their fits;
notebooks loop over :func:`~encoding_kit.features.models.models_run`, which merges them into one entry, and
label figures and tables with :func:`model_label`
(``"gpt2 + Qwen/Qwen2.5-0.5B (demo stand-in: SmolLM2-135M)"``), so the same
numbers are never drawn twice under two names.

The hashes a feature cache key holds (weights, processor, layers) are read from
the built model, so answering an extraction from the cache would build the
model first. For the stand-ins with real weights (:data:`DEFERRABLE`), which
are the same model on every load, :func:`identity` records them once per
*fingerprint* of what the stand-in is built from (its package files, the kit's
code that builds it, the library versions: see
:func:`encoding_kit.features.deferred.standin_fingerprint`), and a later process
reads them without building it (:class:`~encoding_kit.features.loaded.DeferredModel`).
"""

from __future__ import annotations

import json

from ..core.storage import atomic_write, cache_root

INT8_SUFFIX = "+int8"
"""Suffix of the source of a dynamically quantised copy (:mod:`.quantize`)."""
STANDIN_NAMES = {"smollm2": "SmolLM2-135M", "whisper-tiny.en": "Whisper tiny.en", "minilm": "all-MiniLM-L6-v2"}
"""Names of the stand-ins with real weights (a random-weight stand-in is called ``random-weight <family>``)."""
NAMED_SOURCES = ("pretrained", "given", "tuned")
"""Sources that run the model they name (a checkpoint, a model the caller loaded, or a brain-tuned copy whose name
carries its tuning key); every other source is a stand-in, one model whatever name it stands in for."""


def standin_name(loaded):
    """What ran in place of ``loaded.name``, in words, or ``None`` when the named model ran itself.

    Parameters
    ----------
    loaded : LoadedModel

    Returns
    -------
    str or None
        ``"SmolLM2-135M"``, ``"Whisper tiny.en"``, ``"all-MiniLM-L6-v2"``,
        ``"random-weight wav2vec2"``, with `` int8`` for a quantised copy.
    """
    source = str(loaded.source)
    base = source.removesuffix(INT8_SUFFIX)
    if base in NAMED_SOURCES:
        return None
    name = STANDIN_NAMES.get(base) or (f"random-weight {loaded.family}" if base == "random" else base)
    return f"{name} int8" if base != source else name


def model_label(names, ran_as=None):
    """How figures and tables name a model: the name(s) asked for and, for a stand-in, what ran.

    Parameters
    ----------
    names : str or list of str
        The names asked for that this one model served.
    ran_as : str, optional
        :func:`standin_name` of the model that ran.

    Returns
    -------
    str
        ``"gpt2"``; ``"gpt2 (demo stand-in: SmolLM2-135M)"``;
        ``"gpt2 + Qwen/Qwen2.5-0.5B (demo stand-in: SmolLM2-135M)"``.
    """
    names = [names] if isinstance(names, str) else list(names)
    text = " + ".join(names)
    return f"{text} (demo stand-in: {ran_as})" if ran_as else text


def model_key(loaded):
    """The model part of a cache key: the name asked for where that model ran, else the stand-in that ran.

    Two names served by one stand-in (on the demo ``gpt2`` and
    ``Qwen/Qwen2.5-0.5B`` both run as SmolLM2-135M) get one key, so their
    features, and the fits of those features, are computed once. The
    weights' hash, the source and the processor's hash stay in the key beside it.

    Returns
    -------
    str
        ``"gpt2"`` for a checkpoint; ``"stand-in:SmolLM2-135M"``, ``"stand-in:random-weight wav2vec2"``.
    """
    ran_as = standin_name(loaded)
    return loaded.name if ran_as is None else f"stand-in:{ran_as}"


DEFERRABLE = tuple(STANDIN_NAMES)
"""Sources whose identity may be read from a record: real weights and processors read from installed packages,
the same on every load (a random-weight stand-in's tokenizer is trained per process, so it is never deferred)."""
IDENTITY_FOLDER = "model-identity"
"""Folder of the identity records under the feature cache root."""


def _record_file(fingerprint, role):
    return cache_root() / IDENTITY_FOLDER / f"{fingerprint}-{role}.json"


def recorded_identity(fingerprint, role):
    """The values recorded for ``role`` of the stand-in built from ``fingerprint``, or ``None``."""
    try:
        return json.loads(_record_file(fingerprint, role).read_text())
    except (OSError, ValueError):  # none yet, or unreadable: computed from the model again
        return None


def identity(loaded, role, compute):
    """The hashes of ``loaded`` that a cache key of ``role`` holds, without building a deferred stand-in.

    Parameters
    ----------
    loaded : LoadedModel
    role : str
        ``"load"``, ``"text"``, ``"audio"``: which part of the model the values describe.
    compute : callable () -> dict
        Computes them from the model (builds a deferred one).

    Returns
    -------
    dict
        Read from the record when ``loaded`` is a stand-in with a ``fingerprint`` and one is recorded, else
        ``compute()``, then recorded (atomically) under the fingerprint for later processes.
    """
    fingerprint = getattr(loaded, "fingerprint", None)
    if fingerprint is None or loaded.source not in DEFERRABLE:
        return compute()
    known = recorded_identity(fingerprint, role)
    if known is not None:
        return known
    values = compute()
    text = json.dumps(values, sort_keys=True)
    try:
        atomic_write(_record_file(fingerprint, role), lambda tmp: tmp.write_text(text))
    except OSError:  # an unwritable cache: the next process computes them again
        pass
    return values
