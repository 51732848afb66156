"""How a feature extraction runs, as one value: :class:`ExtractionRun`.

The extractors (:func:`~encoding_kit.features.text.extract_text_features`,
:func:`~encoding_kit.features.audio.extract_audio_features`,
:func:`~encoding_kit.features.whisper_decoder.whisper_decoder_features`,
:func:`~encoding_kit.features.audio_frames.extract_frame_sequences`) take two kinds of options:

* what the features ARE (model, layers, context, window, pooling, mode, Whisper input, time base): named
  parameters of each extractor, the ones a student tunes and the feature cache key records;
* how the extraction RUNS (batch size, device, stand-ins, the cache, the progress bar, short audio): one
  frozen :class:`ExtractionRun` passed as ``run=``, the same for every extractor of a notebook, as
  transformers passes one ``GenerationConfig`` and scikit-learn one ``cv`` splitter.

None of the run's fields enters a cache key except through what it changes in the computed features: the
device decides the precision (:func:`~encoding_kit.core.runtime.precision`), which the keys record.

The keywords that moved (``batch_size=8``, ``cache=False``, ...) are still accepted for one term with a
:class:`MovedKeywordWarning` that shows the ``run=ExtractionRun(...)`` to write instead
(:func:`accepts_moved_keywords`), so last term's notebooks keep running.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import warnings
from pathlib import Path

import numpy as np

DEVICE_PATTERN = re.compile(r"^[a-z][a-z_]*(:\d+)?$")


class MovedKeywordWarning(FutureWarning):
    """A keyword of an extractor that moved into :class:`ExtractionRun` (shown by default, as scikit-learn's
    deprecations are: a ``DeprecationWarning`` raised inside the kit is hidden outside ``__main__``)."""


@dataclasses.dataclass(frozen=True, repr=False)
class ExtractionRun:
    """How a feature extraction runs (not what it computes); one value passed as ``run=`` to every extractor.

    Parameters
    ----------
    batch_size : int, optional
        Windows per forward pass; ``None`` = the extractor's default (16 text windows, 8 audio windows). A
        quantized model always runs one window at a time (see :mod:`.quantize`). Lower it when memory runs out.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ...; ``None`` = cuda, then mps, then cpu
        (:func:`~encoding_kit.core.runtime.torch_device`). Its precision is part of the cache key.
    allow_standin : bool
        A model given by name that cannot be loaded gets its offline stand-in (random weights, with a banner).
    cache : bool
        Read and write the feature cache (``False``: always compute, never store).
    cache_dir : str or Path, optional
        Root of the feature cache; default ``$KIT_FEATURE_DIR``, else ``features/``.
    progress : bool
        Show a progress bar.
    allow_short_audio : bool
        Audio extractors: accept audio more than 2 TRs shorter than the scan (zero-filled, with a warning;
        :func:`~encoding_kit.core.validation.check_audio_length`). Text extractors read no audio and ignore it.
    store_all_layers : bool
        With the cache on, run every layer and store them all, so that a later request for another layer of the
        same setting (another notebook's layer sweep) is a cache hit. ``False``: run only the layers up to the
        highest one asked for where the model allows it (text models, :mod:`.early_exit`; Whisper's shared
        padding) and store those; the features are the same, and cheaper for a sweep that reads one layer at
        settings no other notebook reads (05's contexts and windows). With the cache off the layers above the
        ones asked for are always skipped.

    Examples
    --------
    >>> from encoding_kit.features.extraction_run import ExtractionRun
    >>> run = ExtractionRun(batch_size=4, cache=False)
    >>> run
    ExtractionRun(batch_size=4, cache=False)
    >>> run.replace(device="cpu")
    ExtractionRun(batch_size=4, device='cpu', cache=False)
    >>> ExtractionRun(batch_size=0)
    Traceback (most recent call last):
    ...
    ValueError: ExtractionRun: batch_size must be an integer >= 1 or None, found 0.
    """

    batch_size: int | None = None
    device: str | None = None
    allow_standin: bool = False
    cache: bool = True
    cache_dir: Path | None = None
    progress: bool = True
    allow_short_audio: bool = False
    store_all_layers: bool = True

    def __post_init__(self):
        set_field = functools.partial(object.__setattr__, self)
        set_field("batch_size", _check_batch_size(self.batch_size))
        set_field("device", _check_device(self.device))
        for name in ("allow_standin", "cache", "progress", "allow_short_audio", "store_all_layers"):
            set_field(name, _check_bool(getattr(self, name), name))
        set_field("cache_dir", _check_cache_dir(self.cache_dir))

    def __repr__(self):
        """Only the fields that differ from the defaults, as scikit-learn prints an estimator."""
        changed = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                   if getattr(self, f.name) != f.default]
        return f"ExtractionRun({', '.join(changed)})"

    def replace(self, **changes):
        """A copy with ``changes`` (checked like the constructor's), e.g. ``run.replace(cache=False)``."""
        return dataclasses.replace(self, **changes)

    def batch(self, default):
        """The batch size to use: ``batch_size``, or the extractor's ``default`` when it is ``None``."""
        return default if self.batch_size is None else self.batch_size


FIELDS = tuple(f.name for f in dataclasses.fields(ExtractionRun))


def _fail(error, name, expected, found):
    raise error(f"ExtractionRun: {name} must be {expected}, found {found!r}.")


def _check_batch_size(value):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        _fail(TypeError, "batch_size", "an integer >= 1 or None", value)
    if value < 1:
        _fail(ValueError, "batch_size", "an integer >= 1 or None", int(value))
    return int(value)


def _check_device(value):
    if value is None:
        return None
    if type(value).__name__ == "device" and type(value).__module__.startswith("torch"):
        return str(value)
    if not isinstance(value, str) or not DEVICE_PATTERN.match(value):
        _fail(ValueError if isinstance(value, str) else TypeError, "device",
              "None or a torch device name such as 'cpu', 'cuda', 'cuda:1' or 'mps'", value)
    return value


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        _fail(TypeError, name, "True or False", value)
    return bool(value)


def _check_cache_dir(value):
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        _fail(TypeError, "cache_dir", "None or a folder (str or Path)", value)
    return Path(value)


def resolve_run(run, function):
    """``run`` checked, ``ExtractionRun()`` when ``None`` (a TypeError naming ``function`` for anything else)."""
    if run is None:
        return ExtractionRun()
    if not isinstance(run, ExtractionRun):
        raise TypeError(f"{function}: run must be an ExtractionRun (e.g. run=ExtractionRun(batch_size=4)), found "
                        f"{run!r} ({type(run).__name__}).")
    return run


def accepts_moved_keywords(*moved):
    """Let an extractor still take its keywords ``moved`` into :class:`ExtractionRun`, for one term.

    An old call (``extract_audio_features(..., batch_size=4, cache=False)``) runs exactly as
    ``run=ExtractionRun(batch_size=4, cache=False)`` would, with one :class:`MovedKeywordWarning` naming that
    form; a moved keyword together with ``run=`` is a TypeError (which should win is not clear). The signature
    (``inspect.signature``, the docs) shows only ``run``.
    """
    unknown = set(moved) - set(FIELDS)
    if unknown:
        raise ValueError(f"accepts_moved_keywords: {sorted(unknown)} are not fields of ExtractionRun {FIELDS}")

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            old = {name: kwargs.pop(name) for name in moved if name in kwargs}
            if old:
                kwargs["run"] = _moved_run(function.__name__, kwargs.get("run"), old)
            return function(*args, **kwargs)

        return wrapper

    return decorate


def _moved_run(function, run, old):
    """The run that the moved keywords ``old`` of a call to ``function`` stand for, with its warning."""
    written = ", ".join(f"{k}={v!r}" for k, v in old.items())
    if run is not None:
        raise TypeError(f"{function}() got run= and {written}; these keywords are fields of run now: pass "
                        f"run={resolve_run(run, function).replace(**old)!r} alone.")
    new = ExtractionRun(**old)
    warnings.warn(f"{function}({written}): these keywords moved into one settings object; write "
                  f"{function}(..., run={new!r}) (utils.ExtractionRun); the old keywords will stop working in a "
                  "later release.", MovedKeywordWarning, stacklevel=3)
    return new
