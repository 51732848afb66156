"""Stage 3, encoding models: gapped cross-validation, delays, ridge, banded ridge, networks, results."""

PUBLIC = {  # name: the module that defines it
    "GappedKFold": "cv",
    "make_delays": "cv",
    "held_out_blocks": "cv",
    "DEFAULT_DELAYS": "cv",
    "DEFAULT_TRIM": "cv",
    "Delayer": "estimators",
    "GappedRidgeCV": "estimators",
    "FoldPCA": "estimators",
    "FeatureSpaceScaler": "estimators",
    "evaluate_encoding": "evaluate",
    "make_encoding_pipeline": "fold_loop",
    "fold_predictions": "fold_loop",
    "OuterFolds": "fold_loop",
    "evaluate_fusion": "fusion",
    "variance_partitioning": "fusion",
    "BandedRidgeFitter": "fusion",
    "MLPFitter": "nonlinear",
    "LagAttentionFitter": "nonlinear",
    "TimeResolvedFitter": "time_resolved",
    "EncodingResult": "results",
    "DEFAULT_ALPHAS": "ridge",
    "columnwise_r": "scores",
    "fisher_mean": "scores",
    "normalized_r": "scores",
}
"""The public API of this stage (imported from its module on first use)."""
__all__ = sorted(PUBLIC)


def __getattr__(name):
    """Import on first use, so that importing one module of the stage does not import them all."""
    if name not in PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{PUBLIC[name]}", __name__), name)
