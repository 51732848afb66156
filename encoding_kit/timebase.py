"""The kit's one time base: where words and audio land in TRs.

Convention (defined here once, used everywhere):

* ``t = 0`` is the onset of the story audio, which is also the start of the
  first TR. A dataset whose scan starts ``onset_offset`` seconds after the
  audio onset passes ``onset_offset``; every time is then shifted by it
  (``t_scan = t_audio - onset_offset``).
* TR ``k`` (0-based) covers the half-open interval ``[k * TR, (k + 1) * TR)``
  with ``TR = 1.5`` s.
* A word belongs to the TR that contains its onset:
  ``tr = floor((onset - onset_offset) / TR)``.
* The audio window for TR ``k`` ends at ``(k + 1) * TR`` (the end of TR ``k``)
  and reaches back ``window_trs`` TRs; samples before ``t = 0`` are zeros. It
  never reads past the end of TR ``k``.

The course's sample code assigns words from the start of the recording but
cuts audio windows counting back from the end of the file; on the real
3374.25 s file and a 2249 x 1.5 = 3373.5 s scan the two disagree by half a TR.
The kit derives both from the start.
"""

from __future__ import annotations

import warnings

import numpy as np

TR = 1.5
"""Repetition time of the course data, in seconds."""

POOL_METHODS = ("mean", "sum", "max", "last", "lanczos")


def word_trs(onsets, tr=TR, onset_offset=0.0):
    """Assign each word to the TR containing its onset.

    Parameters
    ----------
    onsets : array of shape (n_words,)
        Word onsets in seconds on the audio time base.
    tr : float
        Repetition time in seconds.
    onset_offset : float
        Audio time (s) at which the first TR starts.

    Returns
    -------
    trs : int array of shape (n_words,)
        0-based TR index; negative for words before the first TR.
    """
    onsets = np.asarray(onsets, dtype=float)
    # A tiny tolerance stops binary noise (27.669999999999998) from moving a
    # word that sits exactly on a TR boundary into the previous TR.
    return np.floor((onsets - onset_offset) / tr + 1e-9).astype(int)


def audio_window_bounds(n_trs, sr, tr=TR, window_trs=2, onset_offset=0.0):
    """Sample index bounds of the audio window of every TR.

    Returns
    -------
    start, stop : int arrays of shape (n_trs,)
        Window of TR ``k`` is ``wav[start[k]:stop[k]]``; ``start`` may be
        negative (zero padding before the audio onset).
    """
    if window_trs <= 0:
        raise ValueError(f"window_trs must be a positive number of TRs, got {window_trs}")
    ends = onset_offset + tr * (np.arange(n_trs) + 1)
    stop = np.round(ends * sr).astype(np.int64)
    length = int(round(window_trs * tr * sr))
    return stop - length, stop


def audio_windows(wav, sr, n_trs, tr=TR, window_trs=2, onset_offset=0.0):
    """Cut the audio window that ends at the end of each TR.

    Parameters
    ----------
    wav : array of shape (n_samples,)
        Mono waveform whose sample 0 is at audio time 0.
    sr : int
        Sample rate in Hz.
    n_trs : int
        Number of TRs to cut.
    tr : float
        Repetition time in seconds.
    window_trs : float
        Window length in TRs; the window of TR ``k`` is
        ``[(k + 1 - window_trs) * tr, (k + 1) * tr)``.
    onset_offset : float
        Audio time (s) at which the first TR starts.

    Returns
    -------
    windows : float32 array of shape (n_trs, round(window_trs * tr * sr))
        Zeros where the window reaches before the audio onset or past the end
        of the file (the latter with a warning).
    """
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"wav must be mono with shape (n_samples,), got shape {wav.shape}")
    start, stop = audio_window_bounds(n_trs, sr, tr, window_trs, onset_offset)
    needed = int(stop[-1]) if n_trs else 0
    if needed > wav.shape[0]:
        warnings.warn(
            f"audio has {wav.shape[0]} samples ({wav.shape[0] / sr:.2f} s) but {n_trs} TRs "
            f"need {needed} ({needed / sr:.2f} s); the missing end is zero-padded",
            stacklevel=2,
        )
    pad_before = max(0, -int(start.min())) if n_trs else 0
    padded = np.concatenate(
        [np.zeros(pad_before, np.float32), wav, np.zeros(max(0, needed - wav.shape[0]), np.float32)]
    )
    length = int(stop[0] - start[0]) if n_trs else 0
    idx = (start + pad_before)[:, None] + np.arange(length)[None, :]
    return padded[idx]


def pool_to_trs(values, trs, n_trs, method="mean", times=None, tr=TR, onset_offset=0.0):
    """Pool word-level values into TRs.

    Parameters
    ----------
    values : array of shape (n_words,) or (n_words, n_features)
        One row per word.
    trs : int array of shape (n_words,)
        TR of each word (see :func:`word_trs`). Words outside
        ``[0, n_trs)`` are ignored.
    n_trs : int
        Number of TRs in the output.
    method : {"mean", "sum", "max", "last", "lanczos"}
        How the words of one TR are combined. ``"lanczos"`` interpolates the
        word-level series to the TR grid with a 3-lobe Lanczos kernel (Huth et
        al., 2016) and needs ``times`` (word onsets, s).
    times : array of shape (n_words,), optional
        Word onsets in seconds; required for ``"lanczos"``.
    tr, onset_offset : float
        Time base (see module docstring), used by ``"lanczos"``.

    Returns
    -------
    pooled : float32 array of shape (n_trs, n_features) (or (n_trs,) for 1-D input)
        TRs without any word are explicit zeros: before the first word, in
        pauses and after the last word alike (no carry-forward), so a TR
        with no speech never borrows content from another TR.
    """
    values = np.asarray(values, dtype=np.float32)
    squeeze = values.ndim == 1
    values2 = values[:, None] if squeeze else values
    trs = np.asarray(trs)
    if values2.shape[0] != trs.shape[0]:
        raise ValueError(
            f"values has {values2.shape[0]} rows but trs has {trs.shape[0]} entries; "
            "they must describe the same words"
        )
    if method not in POOL_METHODS:
        raise ValueError(f"method must be one of {POOL_METHODS}, got {method!r}")
    if method == "lanczos":
        if times is None:
            raise ValueError("method='lanczos' needs the word onsets: pass times=")
        out = lanczos_resample(values2, np.asarray(times, float) - onset_offset,
                               tr * np.arange(n_trs) + tr / 2, window=tr)
    else:
        out = _pool_by_index(values2, trs.astype(int), n_trs, method)
    return out[:, 0] if squeeze else out


def _pool_by_index(values, trs, n_trs, method):
    keep = (trs >= 0) & (trs < n_trs)
    values, trs = values[keep], trs[keep]
    out = np.zeros((n_trs, values.shape[1]), np.float32)
    counts = np.bincount(trs, minlength=n_trs)
    if method in ("mean", "sum"):
        np.add.at(out, trs, values)
        if method == "mean":
            out[counts > 0] /= counts[counts > 0, None]
    elif method == "max":
        out[:] = -np.inf
        np.maximum.at(out, trs, values)
        out[counts == 0] = 0.0
    else:  # last: words are in time order, so the last write per TR wins
        out[trs] = values
    return out


def lanczos_resample(values, old_times, new_times, window, lobes=3):
    """Resample an irregular series to new times with a Lanczos kernel.

    Parameters
    ----------
    values : array of shape (n_old, n_features)
    old_times : array of shape (n_old,)
        Times (s) of the rows of ``values``.
    new_times : array of shape (n_new,)
        Times (s) to interpolate at (the kit uses TR centres).
    window : float
        Spacing (s) of the kernel's zero crossings; the TR, which low-passes
        the series at the Nyquist rate of the TR grid (as in Huth et al.).
    lobes : int
        Number of kernel lobes.

    Returns
    -------
    out : float32 array of shape (n_new, n_features)
    """
    delta = (np.asarray(new_times)[:, None] - np.asarray(old_times)[None, :]) / window
    kernel = np.sinc(delta) * np.sinc(delta / lobes)
    kernel[np.abs(delta) > lobes] = 0.0
    return (kernel @ np.asarray(values, dtype=np.float64)).astype(np.float32)
