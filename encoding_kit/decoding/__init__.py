"""Decoding: linear identification and deep decoders with a leak-free hyperparameter search."""

PUBLIC = {  # name: the module that defines it
    "evaluate_decoding": "linear",
    "identification_accuracy": "linear",
    "evaluate_deep_decoding": "evaluation",
    "plot_decoder_comparison": "evaluation",
    "DeepDecodingResult": "evaluation",
    "DeepSearch": "search",
    "tune_decoder": "search",
    "DeepDecoder": "deep_models",
    "identification_permutation_test": "identification",
}
"""The public API of this stage (imported from its module on first use)."""
__all__ = sorted(PUBLIC)


def __getattr__(name):
    """Import on first use, so that importing one module of the stage does not import them all."""
    if name not in PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{PUBLIC[name]}", __name__), name)
