"""Stage 3, encoding models: gapped cross-validation, delays, ridge, banded ridge, networks, results."""

from ..core.lazy import lazy_attribute

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


__getattr__ = lazy_attribute(__name__, PUBLIC)
