"""A loaded model as every extractor receives it, and the checks of its layers (no model loading here)."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .identity import model_label, standin_name


class ModelUnavailable(OSError):
    """A named model could not be loaded (no hub access and not in the local cache)."""


@dataclass
class LoadedModel:
    """A model ready for feature extraction.

    Attributes
    ----------
    model : torch.nn.Module
    processor : tokenizer or feature extractor
    name : str
        The name asked for.
    source : str
        ``"pretrained"``; a real offline model: ``"minilm"``, ``"whisper-tiny.en"``
        or ``"smollm2"``; or ``"random"`` (random-weight stand-in).
    family : str
        The model type of the architecture that runs (``config.model_type``: ``"gpt2"``, ``"llama"``,
        ``"wavlm"``, ...); :func:`encoding_kit.features.families.family_of` gives its family.
    """

    model: object
    processor: object
    name: str
    source: str
    family: str
    fingerprint: str | None = None
    """What the offline stand-in was built from (:func:`encoding_kit.features.deferred.standin_fingerprint`), under
    which its identity is recorded (:func:`.identity.identity`); ``None`` for every other model."""

    @property
    def is_standin(self):
        return self.source != "pretrained"

    @property
    def ran_as(self):
        """The model that actually ran, in words: ``None`` when it is the one named (see :func:`.identity.model_key`)."""
        return standin_name(self)

    @property
    def label(self):
        """The name asked for and, for a stand-in, what ran: ``"gpt2 (demo stand-in: SmolLM2-135M)"``."""
        return model_label(self.name, self.ran_as)


def check_layers(layers, n_layers, name):
    """The hidden-state layers asked for, checked: all of ``0..n_layers`` when ``layers`` is None (0 = embeddings)."""
    if layers is None:
        return list(range(n_layers + 1))
    values = [layers] if np.isscalar(layers) else list(layers)
    if not values:
        raise ValueError(f"layers is empty; give hidden-state layers of {name} (0..{n_layers}, 0 = embeddings) "
                         "or None for all")
    wrong = [x for x in values if isinstance(x, (bool, np.bool_)) or not isinstance(x, (numbers.Integral, float, np.floating))
             or not float(x).is_integer()]
    if wrong:
        raise TypeError(f"layers must be whole layer numbers 0..{n_layers} of {name} (0 = embeddings), "
                        f"found {wrong}")
    layers = [int(x) for x in values]
    bad = [x for x in layers if not 0 <= x <= n_layers]
    if bad:
        raise ValueError(f"layers {bad} out of range: {name} has hidden-state layers 0..{n_layers} (0 = embeddings)")
    return layers


class DeferredModel(LoadedModel):
    """An offline stand-in whose model is built the first time its ``model`` or ``processor`` is read.

    :func:`encoding_kit.features.models.load_model` returns one when the stand-in's identity (the hashes in
    the feature cache keys) is recorded under its ``fingerprint``, so an extraction that the cache answers never
    builds the model. ``build()`` returns the :class:`LoadedModel`; ``check(built)`` raises if it is not the
    model the record describes.
    """

    def __init__(self, name, source, family, fingerprint, build, check):
        self.name, self.source, self.family, self.fingerprint = name, source, family, fingerprint
        self._build, self._check, self._built = build, check, None

    def _materialize(self):
        if self._built is None:
            built = self._build()
            self._check(built)
            self._built = built
        return self._built

    @property
    def built(self):
        """Whether the model has been built."""
        return self._built is not None

    @property
    def model(self):
        return self._materialize().model

    @model.setter
    def model(self, value):
        self._materialize().model = value

    @property
    def processor(self):
        return self._materialize().processor

    @processor.setter
    def processor(self, value):
        self._materialize().processor = value

    def __repr__(self):
        return f"DeferredModel(name={self.name!r}, source={self.source!r}, family={self.family!r}, built={self.built})"
