"""Model families, found from a model's config: one module per family, one line each in the table below.

Adding a family (docs/architecture.md shows the recipe): write a module with a
:class:`Family` value ``FAMILY`` (how to load it, its stand-in, its layers and,
for audio, its window states), add one line to :data:`REGISTRY` below, and test
it. The extractors never name a family.
"""

from __future__ import annotations

from . import causal_lm, clap, text_encoder, wav2vec2_like, whisper
from .base import SIZES, Family, Registry, UnknownFamily  # noqa: F401 - the protocol, re-exported

REGISTRY = Registry()
"""Families in lookup order (the order also decides which name pattern wins offline)."""
REGISTRY.register(clap.FAMILY)
REGISTRY.register(whisper.FAMILY)
REGISTRY.register(wav2vec2_like.FAMILY)
REGISTRY.register(text_encoder.FAMILY)
REGISTRY.register(causal_lm.FAMILY)

register = REGISTRY.register
unregister = REGISTRY.unregister
family_for_config = REGISTRY.for_config
guess_model_type = REGISTRY.guess_model_type


def family_of(model):
    """The family of a LoadedModel (from its model type, else its config), a config, or a model type.

    Raises
    ------
    UnknownFamily
    """
    if isinstance(model, str):
        return REGISTRY.for_type(model)
    if hasattr(model, "model_type"):  # a config
        return REGISTRY.for_config(model)
    if model.family in REGISTRY.by_type:
        return REGISTRY.by_type[model.family]
    return REGISTRY.for_config(model.model.config, model.name)
