"""The offline demo: a course-format dataset with planted ground truth (eSpeak speech, planted drivers)."""

PUBLIC = {  # name: the module that defines it
    "make_demo_dataset": "generate",
    "truth_fold_ceiling": "generate",
    "planted_verdict": "planted",
    "planted_check": "planted",
    "phoneme_recovery": "planted_phonemes",
}
"""The public API of this stage (imported from its module on first use)."""
__all__ = sorted(PUBLIC)


def __getattr__(name):
    """Import on first use, so that importing one module of the stage does not import them all."""
    if name not in PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{PUBLIC[name]}", __name__), name)
