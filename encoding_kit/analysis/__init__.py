"""Stage 4 and 5, statistics and brain maps: ceilings, tests, layer choice, ROI tables, figures, maps."""

from ..core.lazy import lazy_attribute

PUBLIC = {  # name: the module that defines it
    "noise_ceiling": "stats",
    "fdr_bh": "stats",
    "prediction_significance": "stats",
    "circular_shift_pvalues": "stats",
    "group_significance": "stats",
    "story_ceiling": "roi_analysis",
    "group_summary": "roi_analysis",
    "top_rois": "roi_analysis",
    "best_layers_held_out": "layers",
    "summarize_layers": "layers",
    "plot_layer_curves": "plots",
    "plot_brain": "brainmaps",
}
"""The public API of this stage (imported from its module on first use)."""
__all__ = sorted(PUBLIC)


__getattr__ = lazy_attribute(__name__, PUBLIC)
