"""Running the notebooks: the runner, run profiles, results folders and the sweeps a notebook cell calls."""

from ..core.lazy import lazy_attribute

PUBLIC = {  # name: the module that defines it
    "results_dir": "runner",
    "ensure_data": "runner",
    "layer_sweep": "sweeps",
    "text_layers": "sweeps",
    "audio_layers": "sweeps",
}
"""The public API of this stage (imported from its module on first use)."""
__all__ = sorted(PUBLIC)


__getattr__ = lazy_attribute(__name__, PUBLIC)
