"""The offline demo: a course-format dataset with planted ground truth (eSpeak speech, planted drivers)."""

from ..core.lazy import lazy_attribute

PUBLIC = {  # name: the module that defines it
    "make_demo_dataset": "generate",
    "truth_fold_ceiling": "generate",
    "planted_verdict": "planted",
    "planted_check": "planted",
    "phoneme_recovery": "planted_phonemes",
}
"""The public API of this stage (imported from its module on first use)."""
__all__ = sorted(PUBLIC)


__getattr__ = lazy_attribute(__name__, PUBLIC)
