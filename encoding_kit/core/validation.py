"""Checks of the parameters that reach the public functions.

Each check raises one ``ValueError`` (``TypeError`` for a wrong type) whose
message names the argument, what was expected and what was found, and
returns the value in its canonical form. A bad value here would otherwise
run silently: a negative ``gap`` or ``trim`` puts test TRs next to (or into)
the training set, a negative alpha gives ``log(alpha) = NaN``, which wins
the alpha search, and ``int(1.5)`` quietly turns a delay of 1.5 TRs into 1.
"""

from __future__ import annotations

import numbers

import numpy as np


def _is_int(value):
    """Integers, and floats with no fractional part (5.0); not bools, not 1.5."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (numbers.Integral, np.integer)):
        return True
    return isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer()


def check_int(value, name, minimum=0):
    """``value`` as an int ``>= minimum``; fractions (2.5), bools and strings are refused."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an integer >= {minimum}, found {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, found {value}")
    return int(value)


def check_alphas(alphas, name="alphas"):
    """Ridge penalties as a float array of shape (n_alphas,): non-empty, finite and > 0."""
    values = np.asarray(alphas, dtype=float) if not isinstance(alphas, str) else None
    if values is None or values.ndim != 1 or values.size == 0:
        found = repr(alphas) if values is None else f"shape {values.shape}"
        raise ValueError(f"{name} must be a non-empty 1-D sequence of penalties > 0, e.g. "
                         f"np.logspace(-1, 8, 19); found {found}")
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        raise ValueError(f"{name} must all be finite and > 0 (log(alpha) is used to pick among them), "
                         f"found {values[bad].tolist()}")
    return values


def check_delays(delays, name="delays", allow_negative=False):
    """FIR delays as a list of ints (>= 0 unless ``allow_negative``), at least one."""
    try:
        values = list(delays)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of integer TRs, e.g. (1, 2, 3, 4), found {delays!r}") from None
    if not values:
        raise ValueError(f"{name} is empty; give at least one delay in TRs, e.g. (1, 2, 3, 4)")
    bad = [d for d in values if not _is_int(d)]
    if bad:
        raise TypeError(f"{name} must be whole numbers of TRs, found {bad} in {values}")
    if not allow_negative and min(values) < 0:
        raise ValueError(f"{name} must be >= 0 TRs (the response follows the stimulus), found {values}")
    return [int(d) for d in values]


def check_trim(trim, name="trim"):
    """``(start, end)`` TRs dropped at the edges, two ints >= 0."""
    try:
        start, end = trim
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (start, end) of TRs >= 0, found {trim!r}") from None
    return check_int(start, f"{name}[0]"), check_int(end, f"{name}[1]")


def check_cv(n_folds=None, gap=None, inner_folds=None):
    """Validate the cross-validation settings that are given (``None`` is skipped).

    Returns
    -------
    tuple (n_folds, gap, inner_folds) with ints in place of given values.
    """
    return (None if n_folds is None else check_int(n_folds, "n_folds", 2),
            None if gap is None else check_int(gap, "gap", 0),
            None if inner_folds is None else check_int(inner_folds, "inner_folds", 2))


def check_audio_length(wav, sr, n_trs, tr, onset_offset=0.0, allow_short_audio=False, max_missing_trs=2,
                       stacklevel=3, allow="allow_short_audio=True"):
    """Compare the audio with the scan it must cover, once for every audio consumer.

    Audio missing at the end becomes zeros in the features. A few TRs short
    (the last words' echo, a trimmed file) gives a warning with the seconds
    missing; more than ``max_missing_trs`` TRs is refused unless
    ``allow_short_audio=True`` (then a warning), because whole TRs of
    silence would be scored as if they were stimulus.

    Parameters
    ----------
    wav : array of shape (n_samples,)
    sr : int
    n_trs : int
    tr, onset_offset : float
        Time base; the scan needs audio up to ``onset_offset + n_trs * tr`` s.
    allow : str
        What the caller writes to accept short audio, named in the refusal (the model extractors take
        ``run=ExtractionRun(allow_short_audio=True)``).

    Returns
    -------
    float
        Seconds missing (0 when the audio is long enough).
    """
    import warnings

    have = len(wav) / sr
    need = onset_offset + n_trs * tr
    missing = need - have
    if missing <= 1.0 / sr:
        return 0.0
    message = (f"audio is {have:.2f} s but {n_trs} TRs of {tr} s need {need:.2f} s: the last {missing:.2f} s "
               f"({missing / tr:.1f} TRs) are zero-padded")
    if missing > max_missing_trs * tr and not allow_short_audio:
        raise ValueError(f"{message}. Is this the story's audio? Pass {allow} to use it anyway, "
                         "or crop the scan (max_trs).")
    warnings.warn(message, stacklevel=stacklevel)
    return float(missing)
