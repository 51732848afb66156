"""Decoding: linear identification and deep decoders with a leak-free hyperparameter search."""

from ..core.lazy import lazy_attribute

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


__getattr__ = lazy_attribute(__name__, PUBLIC)
