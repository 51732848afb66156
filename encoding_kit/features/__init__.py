"""Stage 2, stimulus features: text and audio models per layer, classic baselines, phonemes, and model loading.

The public API (what ``utils.py`` re-exports and the other stages use) is listed in ``__all__``; the model families
live in :mod:`.families`, one module each, found from a model's config.
"""

from .audio import extract_audio_features
from .audio_frames import extract_frame_sequences, frame_times
from .baseline import audio_features, baseline_features, word_features
from .causality import causality, is_causal
from .extraction_run import ExtractionRun, MovedKeywordWarning
from .families import Family, UnknownFamily, family_for_config, family_of, register
from .identity import model_key, model_label
from .loaded import LoadedModel, ModelUnavailable
from .models import load_model, models_run, standin
from .phonemes import phone_table, phoneme_class_features
from .quantize import quantize_dynamic
from .real_configs import real_size_model
from .text import extract_text_features, text_features_to_trs, tokenize_story, usable_contexts
from .whisper_decoder import whisper_decoder_features

__all__ = ["extract_audio_features", "extract_frame_sequences", "frame_times", "audio_features", "baseline_features",
           "word_features", "causality", "is_causal", "ExtractionRun", "MovedKeywordWarning",
           "Family", "UnknownFamily", "family_for_config", "family_of",
           "register", "model_key", "model_label", "LoadedModel", "ModelUnavailable", "load_model", "models_run",
           "standin", "phone_table", "phoneme_class_features", "quantize_dynamic", "real_size_model",
           "extract_text_features", "text_features_to_trs", "tokenize_story", "usable_contexts",
           "whisper_decoder_features"]
