"""Shared infrastructure of every stage: storage (atomic writes, hashes, caches), device and precision,
progress bars, quiet output, argument validation."""

from .lazy import lazy_attribute

PUBLIC = {  # name: the module that defines it
    "atomic_write": "storage",
    "cache_key": "storage",
    "cache_root": "storage",
    "hash_array": "storage",
    "set_aside": "storage",
    "FeatureCache": "storage",
    "torch_device": "runtime",
    "precision": "runtime",
    "run_precision": "runtime",
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


__getattr__ = lazy_attribute(__name__, PUBLIC)
