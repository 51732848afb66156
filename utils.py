"""The kit's one import surface for notebooks and tests.

Time base (defined in ``encoding_kit/data/timebase.py``): t = 0 is the audio onset
and the start of the first TR; TR k covers [k * 1.5, (k + 1) * 1.5) s; a word
belongs to the TR containing its onset; the audio window of TR k ends at
(k + 1) * 1.5 s and reaches back ``window_trs`` TRs (zeros before t = 0).
``onset_offset`` shifts t = 0 when a dataset's scan starts later than its audio.
"""

from encoding_kit.analysis.attention_tables import (  # noqa: F401, E402
    attention_peak_events,
    attention_peaks,
    attention_profile_table,
    peak_frame_intervals,
)
from encoding_kit.analysis.brainmaps import plot_brain  # noqa: F401, E402
from encoding_kit.analysis.layer_alignment import (  # noqa: F401, E402
    answer_text,
    bootstrap_peak_layer,
    group_mask,
    layer_scores,
    middle_layer_test,
)
from encoding_kit.analysis.layers import (  # noqa: F401, E402
    best_layer_of,
    best_layers_held_out,
    split_subjects,
    summarize_layers,
)
from encoding_kit.analysis.phoneme_analysis import (  # noqa: F401, E402
    class_unique_variance,
    dominant_class_counts,
    dominant_class_map,
    planted_recovery,
    selectivity_table,
    top_quartile_table,
)
from encoding_kit.analysis.plots import plot_layer_curves, plot_sweep  # noqa: F401, E402
from encoding_kit.analysis.roi_analysis import (  # noqa: F401, E402
    difference_map,
    group_summary,
    plot_group_summary,
    plot_preference,
    preference_map,
    preferred_layer_map,
    story_ceiling,  # noqa: F401, E402
    top_rois,
)
from encoding_kit.analysis.speech_interpretation import (  # noqa: F401, E402
    compare_time_resolved,
    enrichment_table,
    frame_sequences,
    plot_attention_profile,
)
from encoding_kit.analysis.stats import (  # noqa: F401, E402
    fdr_bh,
    fisher_mean,
    group_significance,
    noise_ceiling,
    normalized_r,
)
from encoding_kit.brain_tuning import (  # noqa: F401, E402
    BrainCompressor,
    BrainTuningStudy,
    TuningConfig,
    group_table,
    leak_table,
    mask_rate_rows,
    paired_test,
    planted_effect,
    planted_text,
    study_table,
    subject_table,
)
from encoding_kit.core.quiet import silence_known_warnings  # noqa: E402
from encoding_kit.data.course_files import (  # noqa: F401
    DataFileError,
    data_dir,
    data_source,
    load_align,
    load_audio,
    load_fmri,
)
from encoding_kit.data.rois import roi_index, roi_names, roi_table  # noqa: F401
from encoding_kit.data.story import Story, load_story  # noqa: F401, E402
from encoding_kit.data.timebase import (  # noqa: F401
    POOL_METHODS,
    POOLINGS,
    TR,
    audio_windows,
    lanczos_resample,
    pool_to_trs,
    word_trs,
)
from encoding_kit.decoding.deep_models import ARCHITECTURES, DeepDecoder, decoder_windows  # noqa: F401, E402
from encoding_kit.decoding.evaluation import (  # noqa: F401, E402
    DeepDecodingResult,
    evaluate_deep_decoding,
    plot_decoder_comparison,
)
from encoding_kit.decoding.linear import evaluate_decoding, identification_permutation_test  # noqa: F401, E402
from encoding_kit.decoding.search import tune_decoder  # noqa: F401, E402
from encoding_kit.demo.generate import (  # noqa: F401
    hrf_convolved_drivers,
    load_truth,
    make_demo_dataset,
    topic_columns,
    truth_fold_ceiling,
)
from encoding_kit.demo.planted import planted_check, planted_verdict, verdict_text  # noqa: F401, E402
from encoding_kit.demo.planted_phonemes import phoneme_recovery, phoneme_recovery_text, phoneme_rois  # noqa: F401, E402
from encoding_kit.encoding.cv import gapped_splits, inner_splits, make_delays  # noqa: F401, E402
from encoding_kit.encoding.evaluate import evaluate_encoding, prediction_significance  # noqa: F401, E402
from encoding_kit.encoding.fusion import evaluate_fusion, variance_partitioning  # noqa: F401, E402
from encoding_kit.encoding.nonlinear import LagAttentionFitter, MLPFitter, lag_attention_table  # noqa: F401, E402
from encoding_kit.encoding.results import EncodingResult  # noqa: F401, E402
from encoding_kit.encoding.ridge import DEFAULT_ALPHAS, RidgeFitter  # noqa: F401, E402
from encoding_kit.encoding.time_resolved import TimeResolvedFitter  # noqa: F401, E402
from encoding_kit.features.audio import extract_audio_features  # noqa: F401, E402
from encoding_kit.features.audio_frames import extract_frame_sequences, frame_times  # noqa: F401, E402
from encoding_kit.features.baseline import audio_features, baseline_features, word_features  # noqa: F401, E402
from encoding_kit.features.models import (  # noqa: F401, E402
    ModelUnavailable,
    is_causal,  # noqa: F401, E402
    load_model,
    max_positions,  # noqa: F401, E402
    minilm,
    standin,
)
from encoding_kit.features.phonemes import phone_table, phoneme_class_features, word_phonemes  # noqa: F401, E402
from encoding_kit.features.quantize import quantize_dynamic  # noqa: F401, E402
from encoding_kit.features.real_configs import REAL_CONFIGS, real_size_model  # noqa: F401, E402
from encoding_kit.features.text import (  # noqa: F401, E402
    extract_text_features,
    text_features_to_trs,
    tokenize_story,
    usable_contexts,
)
from encoding_kit.features.transcript import load_transcript, restore_punctuation  # noqa: F401, E402
from encoding_kit.features.whisper_decoder import TOKEN_POOLINGS, whisper_decoder_features  # noqa: F401, E402
from encoding_kit.features.whisper_input import WHISPER_INPUTS  # noqa: F401, E402
from encoding_kit.run.runner import ensure_data, results_dir  # noqa: F401, E402
from encoding_kit.run.sweeps import (  # noqa: F401, E402
    audio_layers,
    decoder_layers,
    layer_sweep,
    sweep_point,
    text_layers,
)

silence_known_warnings()  # the known-harmless messages, silenced in one place (encoding_kit/core/quiet.py)
