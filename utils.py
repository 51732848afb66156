"""The kit's one import surface for notebooks and tests.

Time base (defined in ``encoding_kit/timebase.py``): t = 0 is the audio onset
and the start of the first TR; TR k covers [k * 1.5, (k + 1) * 1.5) s; a word
belongs to the TR containing its onset; the audio window of TR k ends at
(k + 1) * 1.5 s and reaches back ``window_trs`` TRs (zeros before t = 0).
``onset_offset`` shifts t = 0 when a dataset's scan starts later than its audio.
"""

from encoding_kit.attention_tables import (  # noqa: F401, E402
    attention_peak_events,
    attention_peaks,
    attention_profile_table,
    peak_frame_intervals,
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
from encoding_kit.brainmaps import plot_brain  # noqa: F401, E402
from encoding_kit.cv import gapped_splits, inner_splits, make_delays  # noqa: F401, E402
from encoding_kit.data import (  # noqa: F401
    DataFileError,
    data_dir,
    data_source,
    load_align,
    load_audio,
    load_fmri,
)
from encoding_kit.decoding import evaluate_decoding, identification_permutation_test  # noqa: F401, E402
from encoding_kit.deep_decoders import ARCHITECTURES, DeepDecoder, decoder_windows  # noqa: F401, E402
from encoding_kit.deep_evaluation import (  # noqa: F401, E402
    DeepDecodingResult,
    evaluate_deep_decoding,
    plot_decoder_comparison,
)
from encoding_kit.deep_search import tune_decoder  # noqa: F401, E402
from encoding_kit.demo import (  # noqa: F401
    hrf_convolved_drivers,
    load_truth,
    make_demo_dataset,
    topic_columns,
    truth_fold_ceiling,  # noqa: F401, E402
)
from encoding_kit.encoding import evaluate_encoding, prediction_significance  # noqa: F401, E402
from encoding_kit.experiments import (  # noqa: F401, E402
    Story,
    audio_layers,
    best_layer_of,
    best_layers_held_out,
    decoder_layers,
    layer_sweep,
    load_story,
    planted_check,
    planted_verdict,
    plot_layer_curves,
    plot_sweep,
    split_subjects,
    story_ceiling,
    summarize_layers,
    sweep_point,
    text_layers,
    verdict_text,
)
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
from encoding_kit.fusion import evaluate_fusion, variance_partitioning  # noqa: F401, E402
from encoding_kit.layer_alignment import (  # noqa: F401, E402
    answer_text,
    bootstrap_peak_layer,
    group_mask,
    layer_scores,
    middle_layer_test,
)
from encoding_kit.nonlinear import LagAttentionFitter, MLPFitter, lag_attention_table  # noqa: F401, E402
from encoding_kit.phoneme_analysis import (  # noqa: F401, E402
    class_unique_variance,
    dominant_class_counts,
    dominant_class_map,
    planted_recovery,
    selectivity_table,
    top_quartile_table,
)
from encoding_kit.planted_phonemes import phoneme_recovery, phoneme_recovery_text, phoneme_rois  # noqa: F401, E402
from encoding_kit.quiet import silence_known_warnings  # noqa: E402
from encoding_kit.results import EncodingResult  # noqa: F401, E402
from encoding_kit.ridge import DEFAULT_ALPHAS, RidgeFitter  # noqa: F401, E402
from encoding_kit.roi_analysis import (  # noqa: F401, E402
    difference_map,
    group_summary,
    plot_group_summary,
    plot_preference,
    preference_map,
    preferred_layer_map,
    top_rois,
)
from encoding_kit.rois import roi_index, roi_names, roi_table  # noqa: F401
from encoding_kit.runner import ensure_data, results_dir  # noqa: F401, E402
from encoding_kit.speech_interpretation import (  # noqa: F401, E402
    compare_time_resolved,
    enrichment_table,
    frame_sequences,
    plot_attention_profile,
)
from encoding_kit.stats import (  # noqa: F401, E402
    fdr_bh,
    fisher_mean,
    group_significance,
    noise_ceiling,
    normalized_r,
)
from encoding_kit.time_resolved import TimeResolvedFitter  # noqa: F401, E402
from encoding_kit.timebase import (  # noqa: F401
    POOL_METHODS,
    POOLINGS,
    TR,
    audio_windows,
    lanczos_resample,
    pool_to_trs,
    word_trs,
)

silence_known_warnings()  # the known-harmless messages, silenced in one place (encoding_kit/quiet.py)
