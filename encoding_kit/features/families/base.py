"""The protocol every model family implements, and the table that finds a model's family from its config.

A family is one :class:`Family` value: how to load a checkpoint, its offline
stand-ins, its real-size model for timing, its number of layers and, for
audio, the hidden states of a batch of windows. The table is keyed by
``config.model_type`` (and, for text models, the suffix of
``config.architectures``), as himalaya keeps its solvers in one dictionary:
the extractors (:mod:`..audio`, :mod:`..audio_frames`, :mod:`..text`) ask it
for the family and never test a family's name themselves.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

SIZES = {"tiny": dict(hidden=64, layers=4, heads=4), "small": dict(hidden=768, layers=12, heads=12)}
"""Sizes of the random-weight stand-ins: ``"tiny"`` for tests and the offline demo, ``"small"`` (GPT-2-small sized)
for timing benchmarks."""
MODALITIES = ("text", "audio", "text+audio")


class UnknownFamily(ValueError):
    """No family of the kit reads this model type."""


@dataclass(frozen=True)
class Family:
    """One model family: what the kit needs to load it offline or online and to read its hidden states.

    Attributes
    ----------
    name : str
        ``"causal-lm"``, ``"wav2vec2-like"``, ...
    modality : {"text", "audio", "text+audio"}
        Which extractors read it (``"text+audio"``: both, e.g. CLAP).
    model_types : tuple of str
        The ``config.model_type`` values it reads.
    load : callable (name, config, kwargs) -> (model, processor)
        A checkpoint from the hub or the local cache (``kwargs`` go to every ``from_pretrained``).
    standin : callable (name, model_type, size) -> LoadedModel
        The offline stand-in built here (random weights; the text encoder's tiny one is MiniLM).
    n_layers : callable (config) -> int
        Hidden-state layers the extractors read (0 = embeddings, so ``n_layers + 1`` states).
    name_patterns : tuple of (regex, model_type)
        Offline only, when no config can be read: the model type a name stands for (first match wins,
        families in the table's order).
    architecture_suffixes : tuple of str
        ``config.architectures`` endings that mean this family when the model type is not listed.
    real_standin : callable (name, model_type) -> LoadedModel, optional
        A stand-in with real pretrained weights shipped by a package (raises ImportError / OSError /
        ValueError when it is missing).
    real_size : callable (model_type, config values) -> (model, processor), optional
        A random-weight model of a real checkpoint's size, for timing (:mod:`..real_configs`).
    window_states : callable (loaded, batch, sr, window_samples, options, device) -> sequence, optional
        Audio: hidden states of a batch of windows, one ``(n_windows, n_frames, dim)`` tensor per layer,
        the window's frames first (the model's input ends where the window ends; see ``input_seconds``).
    frame_poolings : tuple of str
        Audio: the ``frame_pooling`` values it supports.
    frames_in_time : bool
        Audio: its frames are a sequence over time (sub-TR frame sequences need it).
    input_seconds : callable (loaded, window_s, options, window_trs) -> float, optional
        Audio: seconds of audio the model reads for a window of ``window_s`` (default: the window).
    input_options : tuple of str
        Audio: values of ``whisper_input`` it reads (only Whisper has any).
    lower_states : tuple of str
        Audio: the ``whisper_input`` values for which
        ``window_states`` takes ``top=k`` and returns states ``0..k`` (k below the last) without running the
        layers above (Whisper's shared padding).
    prepare : callable (model) -> None, optional
        Run once before extraction (e.g. WavLM's attention layout under bf16).
    text_branch : callable (loaded) -> (model, tokenizer), optional
        Text: the network and tokenizer the text extractor reads (default the model and its processor).
    """

    name: str
    modality: str
    model_types: tuple
    load: Callable
    standin: Callable
    n_layers: Callable
    name_patterns: tuple = ()
    architecture_suffixes: tuple = ()
    real_standin: Callable | None = None
    real_size: Callable | None = None
    window_states: Callable | None = None
    frame_poolings: tuple = ("mean", "tr")
    frames_in_time: bool = True
    input_seconds: Callable | None = None
    input_options: tuple = ()
    lower_states: tuple = ()
    prepare: Callable | None = None
    text_branch: Callable | None = None

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise ValueError(f"family {self.name!r}: modality must be one of {MODALITIES}, got {self.modality!r}")
        if "audio" in self.modality and self.window_states is None:
            raise ValueError(f"family {self.name!r} is an audio family but has no window_states")

    @property
    def reads_text(self):
        return "text" in self.modality

    @property
    def reads_audio(self):
        return "audio" in self.modality

    def text_inputs(self, loaded):
        """(network, tokenizer) the text extractor reads."""
        return self.text_branch(loaded) if self.text_branch else (loaded.model, loaded.processor)


class Registry:
    """The families, in lookup order, and the model types each reads."""

    def __init__(self):
        self.families = {}
        self.by_type = {}

    def register(self, family):
        """Add a family (its model types must be new to the table); returns it."""
        if family.name in self.families:
            raise ValueError(f"a family named {family.name!r} is already registered")
        taken = {t: self.by_type[t].name for t in family.model_types if t in self.by_type}
        if taken:
            raise ValueError(f"family {family.name!r}: model types already read by another family: {taken}")
        self.families[family.name] = family
        self.by_type.update(dict.fromkeys(family.model_types, family))
        return family

    def unregister(self, name):
        """Remove a family (tests register toy families and remove them again)."""
        family = self.families.pop(name)
        for t in family.model_types:
            self.by_type.pop(t, None)

    def known(self):
        """The families and their model types, in words (for error messages)."""
        return "; ".join(f"{f.name} ({', '.join(f.model_types)})" for f in self.families.values())

    def for_config(self, config, name=None):
        """The family of a model from its config: ``model_type`` first, then ``architectures``.

        Raises
        ------
        UnknownFamily
            One sentence naming the model, its model type and the known families.
        """
        model_type = getattr(config, "model_type", None)
        if model_type in self.by_type:
            return self.by_type[model_type]
        for architecture in getattr(config, "architectures", None) or ():
            for family in self.families.values():
                if any(architecture.endswith(s) for s in family.architecture_suffixes):
                    return family
        raise UnknownFamily(
            f"model {name or getattr(config, '_name_or_path', '') or '?'!r} has model_type {model_type!r} "
            f"(architectures {getattr(config, 'architectures', None)}), which no family of the kit reads; known "
            f"families: {self.known()}. A new family is one module in encoding_kit/features/families/ and one "
            "line in its registry (docs/architecture.md)")

    def for_type(self, model_type, name=None):
        """The family of a model type (see :meth:`for_config`)."""
        if model_type in self.by_type:
            return self.by_type[model_type]
        raise UnknownFamily(f"model {name or model_type!r} has model_type {model_type!r}, which no family of the kit "
                            f"reads; known families: {self.known()}")

    def guess_model_type(self, name):
        """Offline, without a config: the model type a name stands for (``None`` when no pattern matches)."""
        low = str(name).lower()
        for family in self.families.values():
            for pattern, model_type in family.name_patterns:
                if re.search(pattern, low):
                    return model_type
        return None
