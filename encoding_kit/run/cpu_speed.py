"""How this CPU's float32 feature extraction compares with the CPU the estimate's float32 figures come from.

:data:`~encoding_kit.run.profiles.PER_UNIT_MS` in float32 was measured on an Intel Xeon with AVX-512 (and AMX, not
used in float32). Most laptops' x86 CPUs have AVX2 and no AVX-512: their float32 matrix products are about half as
wide per cycle, and the models took about twice as long on a 2-core AMD EPYC with AVX2 only
(:data:`AVX2_EXTRACTION_RATIO`). Only the extraction is scaled: the ridge (``RIDGE_S``) and 08's tuning (its
``NETWORK_MIN``) were measured on that AVX2 machine already. The CPU's features come from numpy's own dispatch table: no torch
import and no timing.
"""

from __future__ import annotations

import platform

AVX2_EXTRACTION_RATIO = 2.0
"""Feature extraction time in float32 on an AVX2-only x86 CPU over the estimate's AVX-512 CPU, per setting at the real
checkpoint's size: ``ENCODING_KIT_PRECISION=float32 python benchmarks/bench_real_models.py --quick --only bert-base
wav2vec2 whisper-base`` on an idle 2-core AMD EPYC with AVX2 (2026-12-07 12:10-12:12 UTC, load average 1.15 before,
1.62 after) against :data:`~encoding_kit.run.profiles.PER_UNIT_MS`: BERT exact 2.00, Whisper-base encoder 1.88,
decoder 1.84, frames 1.90, 05's windows of 1 / 4 / 8 TRs 2.16 / 1.60 / 1.82, wav2vec2 2.32, HuBERT 2.27 (mean 1.98).
The same benchmark's float32 matrix products ran at 166-181 GFLOP/s there against 302-372 on the AVX-512 CPU."""


def cpu_features():
    """The SIMD features numpy found on this CPU (``{"AVX2": True, "AVX512F": False, ...}``; empty if unknown)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__
        except ImportError:
            return {}
    return dict(__cpu_features__)


def extraction_scale(precision, machine=None, features=None):
    """Factor on the float32 extraction estimate for this CPU: :data:`AVX2_EXTRACTION_RATIO` on an x86 CPU without
    AVX-512, else 1.

    Parameters
    ----------
    precision : {"bf16-autocast", "float32"}
        bf16 autocast runs on CPUs with AMX, which all have AVX-512: 1.
    machine : str, optional
        Default ``platform.machine()``; CPUs other than x86 (e.g. Apple's) are not scaled: not measured.
    features : dict, optional
        Default :func:`cpu_features`.

    Returns
    -------
    float
    """
    machine = (machine or platform.machine()).lower()
    if precision != "float32" or machine not in ("x86_64", "amd64", "i686", "x86"):
        return 1.0
    features = cpu_features() if features is None else features
    if not features or features.get("AVX512F"):
        return 1.0
    return AVX2_EXTRACTION_RATIO
