"""Shared infrastructure of every stage: storage (atomic writes, hashes, caches), device and precision,
progress bars, quiet output, argument validation."""

PUBLIC = {  # name: the module that defines it
    "atomic_write": "storage",
    "cache_key": "storage",
    "cache_root": "storage",
    "hash_array": "storage",
    "set_aside": "storage",
    "FeatureCache": "storage",
    "torch_device": "runtime",
    "precision": "runtime",
    "autocast": "runtime",
    "float32_inputs": "runtime",
    "use_precision": "runtime",
    "ridge_backend": "runtime",
    "environment": "runtime",
    "tqdm": "progress",
    "silence_known_warnings": "quiet",
}
"""The public API of this stage (imported from its module on first use)."""
__all__ = sorted(PUBLIC)


def __getattr__(name):
    """Import on first use, so that importing one module of the stage does not import them all."""
    if name not in PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{PUBLIC[name]}", __name__), name)
