"""The notebooks' one import surface (tests and the kit itself import from the package modules).

Time base (defined in ``encoding_kit/data/timebase.py``): t = 0 is the audio onset
and the start of the first TR; TR k covers [k * 1.5, (k + 1) * 1.5) s; a word
belongs to the TR containing its onset; the audio window of TR k ends at
(k + 1) * 1.5 s and reaches back ``window_trs`` TRs (zeros before t = 0).
``onset_offset`` shifts t = 0 when a dataset's scan starts later than its audio.
"""
import importlib
from typing import TYPE_CHECKING

from encoding_kit.analysis.attention_tables import attention_peak_events, attention_peaks, attention_profile_table
from encoding_kit.analysis.brainmaps import plot_brain
from encoding_kit.analysis.layer_alignment import (
    answer_text,
    bootstrap_peak_layer,
    group_mask,
    layer_scores,
    middle_layer_test,
)
from encoding_kit.analysis.layers import best_layer_of, best_layers_held_out, split_subjects, summarize_layers
from encoding_kit.analysis.peak_boundaries import boundary_alignment_test, boundary_answer
from encoding_kit.analysis.phoneme_analysis import (
    class_unique_variance,
    dominant_class_counts,
    dominant_class_map,
    planted_recovery,
    selectivity_table,
    top_quartile_table,
)
from encoding_kit.analysis.plots import plot_layer_curves, plot_sweep
from encoding_kit.analysis.roi_analysis import (
    difference_map,
    group_summary,
    plot_group_summary,
    plot_preference,
    preference_map,
    preferred_layer_map,
    story_ceiling,
    top_rois,
)
from encoding_kit.analysis.speech_interpretation import (
    attention_centre_text,
    compare_time_resolved,
    enrichment_table,
    frame_sequences,
    model_comparison_text,
    plot_attention_profile,
)
from encoding_kit.analysis.stats import (
    fdr_bh,
    group_significance,
    noise_ceiling,
    normalized_r,
    prediction_significance,
)
from encoding_kit.core.quiet import silence_known_warnings
from encoding_kit.data.course_files import load_align, load_audio, load_fmri
from encoding_kit.data.rois import roi_index, roi_names, roi_table
from encoding_kit.data.story import Story, load_story
from encoding_kit.data.timebase import POOL_METHODS, TR, audio_windows, pool_to_trs
from encoding_kit.decoding.evaluation import evaluate_deep_decoding, plot_decoder_comparison
from encoding_kit.decoding.linear import evaluate_decoding
from encoding_kit.decoding.search import DeepSearch
from encoding_kit.demo.generate import truth_fold_ceiling
from encoding_kit.demo.planted import planted_check, planted_verdict, text_reach, text_reach_text, verdict_text
from encoding_kit.demo.planted_phonemes import phoneme_recovery, phoneme_recovery_text, phoneme_rois
from encoding_kit.encoding.cv import GappedKFold, make_delays
from encoding_kit.encoding.estimators import Delayer, GappedRidgeCV
from encoding_kit.encoding.evaluate import evaluate_encoding
from encoding_kit.encoding.fold_loop import make_encoding_pipeline
from encoding_kit.encoding.fusion import evaluate_fusion, variance_partitioning
from encoding_kit.encoding.nonlinear import LagAttentionFitter, MLPFitter, lag_attention_table
from encoding_kit.encoding.results import EncodingResult
from encoding_kit.features.audio import extract_audio_features
from encoding_kit.features.baseline import audio_features, baseline_features
from encoding_kit.features.extraction_run import ExtractionRun
from encoding_kit.features.models import is_causal, load_model, models_run
from encoding_kit.features.phonemes import phone_table, phoneme_class_features
from encoding_kit.features.quantize import quantize_dynamic
from encoding_kit.features.text import extract_text_features, text_features_to_trs, usable_contexts
from encoding_kit.features.whisper_decoder import whisper_decoder_features
from encoding_kit.run.profiles import run_time_line
from encoding_kit.run.runner import results_dir
from encoding_kit.run.sweeps import audio_layers, decoder_layers, layer_sweep, sweep_point, text_layers
from encoding_kit.teach.checks import check

if TYPE_CHECKING:  # imported on first use (__getattr__ below): brain_tuning imports torch, ~1.6 s of every kernel
    from encoding_kit.brain_tuning import (
        BrainTuningStudy,
        TuningConfig,
        group_table,
        leak_contrast,
        leak_table,
        literature_sentence,
        mask_rate_rows,
        model_table,
        paired_test,
        planted_effect,
        planted_sentence,
        planted_text,
        study_table,
        subject_means,
        subject_table,
        tuning_verdict,
        tuning_verdict_text,
    )


# What the notebooks, the README and students' own cells use; everything else is imported from its module.
__all__ = [
    "BrainTuningStudy",
    "DeepSearch",
    "Delayer",
    "EncodingResult",
    "ExtractionRun",
    "GappedKFold",
    "make_delays",
    "GappedRidgeCV",
    "LagAttentionFitter",
    "MLPFitter",
    "POOL_METHODS",
    "Story",
    "TR",
    "TuningConfig",
    "answer_text",
    "attention_centre_text",
    "attention_peak_events",
    "attention_peaks",
    "attention_profile_table",
    "audio_features",
    "audio_layers",
    "audio_windows",
    "baseline_features",
    "best_layer_of",
    "best_layers_held_out",
    "bootstrap_peak_layer",
    "boundary_alignment_test",
    "boundary_answer",
    "check",
    "class_unique_variance",
    "compare_time_resolved",
    "decoder_layers",
    "difference_map",
    "dominant_class_counts",
    "dominant_class_map",
    "enrichment_table",
    "evaluate_decoding",
    "evaluate_deep_decoding",
    "evaluate_encoding",
    "evaluate_fusion",
    "extract_audio_features",
    "extract_text_features",
    "fdr_bh",
    "frame_sequences",
    "group_mask",
    "group_significance",
    "group_summary",
    "group_table",
    "is_causal",
    "lag_attention_table",
    "layer_scores",
    "layer_sweep",
    "leak_table",
    "leak_contrast",
    "literature_sentence",
    "load_align",
    "load_audio",
    "load_fmri",
    "load_model",
    "load_story",
    "make_encoding_pipeline",
    "mask_rate_rows",
    "model_table",
    "middle_layer_test",
    "model_comparison_text",
    "models_run",
    "noise_ceiling",
    "normalized_r",
    "paired_test",
    "phone_table",
    "phoneme_class_features",
    "phoneme_recovery",
    "phoneme_recovery_text",
    "phoneme_rois",
    "planted_check",
    "planted_effect",
    "planted_sentence",
    "planted_recovery",
    "planted_text",
    "planted_verdict",
    "plot_attention_profile",
    "plot_brain",
    "plot_decoder_comparison",
    "plot_group_summary",
    "plot_layer_curves",
    "plot_preference",
    "plot_sweep",
    "pool_to_trs",
    "prediction_significance",
    "preference_map",
    "preferred_layer_map",
    "quantize_dynamic",
    "results_dir",
    "roi_index",
    "roi_names",
    "roi_table",
    "run_time_line",
    "selectivity_table",
    "split_subjects",
    "story_ceiling",
    "study_table",
    "subject_table",
    "subject_means",
    "summarize_layers",
    "sweep_point",
    "text_features_to_trs",
    "text_layers",
    "text_reach",
    "text_reach_text",
    "top_quartile_table",
    "top_rois",
    "truth_fold_ceiling",
    "usable_contexts",
    "variance_partitioning",
    "verdict_text",
    "whisper_decoder_features",
    "tuning_verdict",
    "tuning_verdict_text",
]

silence_known_warnings()  # the known-harmless messages, silenced in one place (encoding_kit/core/quiet.py)


def __getattr__(name):
    """A name of ``__all__`` not bound above (the brain-tuning names), imported on first use (PEP 562)."""
    if name in __all__:
        return getattr(importlib.import_module("encoding_kit.brain_tuning"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})  # tab completion lists the names imported on first use too
