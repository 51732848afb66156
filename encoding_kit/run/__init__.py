"""Running the notebooks: the runner, run profiles, results folders and the sweeps a notebook cell calls."""

PUBLIC = {  # name: the module that defines it
    "results_dir": "runner",
    "ensure_data": "runner",
    "layer_sweep": "sweeps",
    "text_layers": "sweeps",
    "audio_layers": "sweeps",
}
"""The public API of this stage (imported from its module on first use)."""
__all__ = sorted(PUBLIC)


def __getattr__(name):
    """Import on first use, so that importing one module of the stage does not import them all."""
    if name not in PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{PUBLIC[name]}", __name__), name)
