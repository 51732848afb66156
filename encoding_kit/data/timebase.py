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
* Pooling words into TRs is causal: the features of TR ``k`` depend only on
  words of TRs ``<= k`` (every method in :data:`POOLINGS` marked causal; the
  one exception, ``"lanczos_noncausal"``, says so in its name).

The course's sample code assigns words from the start of the recording but
cuts audio windows counting back from the end of the file; on the real
3374.25 s file and a 2249 x 1.5 = 3373.5 s scan the two disagree by half a TR.
The kit derives both from the start.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

TR = 1.5
"""Repetition time of the course data, in seconds."""



@dataclass(frozen=True)
class Pooling:
    """How one TR pooling method works (an entry of :data:`POOLINGS`).

    Attributes
    ----------
    causal : bool
        The features of TR ``k`` depend only on words of TRs ``<= k`` (a test
        checks this flag for every entry).
    needs_times : bool
        The method needs the word onsets (``times=``), not only their TRs.
    description : str
    """

    causal: bool
    needs_times: bool
    description: str


LANCZOS_LOBES = 3
"""Lobes of the Lanczos kernel (Huth et al., 2016); its support is ``2 * LANCZOS_LOBES`` TRs wide."""

POOLINGS = {
    "mean": Pooling(True, False, "mean of the words whose onset is in the TR"),
    "sum": Pooling(True, False, "sum of the words whose onset is in the TR"),
    "max": Pooling(True, False, "element-wise max over the words of the TR"),
    "last": Pooling(True, False, "the TR's last word"),
    "lanczos": Pooling(True, True, "3-lobe Lanczos low-pass whose support (6 TRs) ends at the end of the TR: "
                                   "causal, centred 3 TRs (4.5 s) before the TR's end"),
    "lanczos_noncausal": Pooling(False, True, "NON-CAUSAL 3-lobe Lanczos centred on the TR's middle (Huth et al., "
                                              "2016): mixes in words up to 3 TRs after the TR, across a CV gap; "
                                              "for comparison only"),
}
"""Registry of the TR pooling methods of :func:`pool_to_trs`."""

POOL_METHODS = tuple(name for name, pooling in POOLINGS.items() if pooling.causal)
"""The causal pooling methods: the only ones to choose from."""


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
    method : {"mean", "sum", "max", "last", "lanczos", "lanczos_noncausal"}
        How the words of one TR are combined (see :data:`POOLINGS`).
        ``"lanczos"`` low-passes the word-level series with a 3-lobe Lanczos
        kernel (Huth et al., 2016) whose support ends at the end of the TR,
        so only words of TRs ``<= k`` reach TR ``k``; the kernel is centred
        3 TRs before the TR's end, which adds that much delay on top of the
        FIR delays. ``"lanczos_noncausal"`` is the kernel centred on the TR's
        middle, as published: it reads up to 3 TRs of later words and is
        not a valid choice for an encoding model (shown for comparison).
        Both need ``times`` (word onsets, s).
    times : array of shape (n_words,), optional
        Word onsets in seconds; required for the Lanczos methods.
    tr, onset_offset : float
        Time base (see module docstring), used by the Lanczos methods.

    Returns
    -------
    pooled : float32 array of shape (n_trs, n_features) (or (n_trs,) for 1-D input)
        TRs without any word are explicit zeros: before the first word, in
        pauses and after the last word alike (no carry-forward), so a TR
        with no speech never borrows content from another TR.

    Examples
    --------
    Three words in TRs 0, 0 and 2 of a 3-TR story: TR 0 gets the mean of its two words, TR 1 none (zeros):

    >>> import numpy as np, utils
    >>> utils.pool_to_trs(np.array([[1.0], [3.0], [5.0]]), np.array([0, 0, 2]), n_trs=3)
    array([[2.],
           [0.],
           [5.]], dtype=float32)
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
    if method not in POOLINGS:
        raise ValueError(f"method must be one of {tuple(POOLINGS)}, got {method!r}")
    if POOLINGS[method].needs_times and times is None:
        raise ValueError(f"method={method!r} needs the word onsets: pass times=")
    if method == "lanczos":
        out = _lanczos_causal(values2, np.asarray(times, float) - onset_offset, trs.astype(int), n_trs, tr)
    elif method == "lanczos_noncausal":
        out = lanczos_resample(values2, np.asarray(times, float) - onset_offset,
                               tr * np.arange(n_trs) + tr / 2, window=tr, lobes=LANCZOS_LOBES)
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


def _lanczos_causal(values, times, trs, n_trs, tr, lobes=LANCZOS_LOBES):
    """Lanczos low-pass whose support ends at the end of each TR, (n_trs, n_features).

    The kernel of TR ``k`` is centred ``lobes * tr`` before the TR's end, so
    it covers ``[(k + 1 - 2 * lobes) * tr, (k + 1) * tr)``; a word counts for
    TR ``k`` only if its TR (the onset rule of :func:`word_trs`) is ``<= k``,
    so a word on a TR boundary never leaks into the TR before it.
    """
    centres = tr * (np.arange(n_trs) + 1) - lobes * tr
    delta = (centres[:, None] - np.asarray(times)[None, :]) / tr
    kernel = np.sinc(delta) * np.sinc(delta / lobes)
    kernel[(np.abs(delta) > lobes) | (np.asarray(trs)[None, :] > np.arange(n_trs)[:, None])] = 0.0
    return (kernel @ np.asarray(values, dtype=np.float64)).astype(np.float32)


def lanczos_resample(values, old_times, new_times, window, lobes=3):
    """Resample an irregular series to new times with a Lanczos kernel.

    Parameters
    ----------
    values : array of shape (n_old, n_features)
    old_times : array of shape (n_old,)
        Times (s) of the rows of ``values``.
    new_times : array of shape (n_new,)
        Times (s) to interpolate at. The kernel is centred on each new time,
        so it reads samples up to ``lobes * window`` after it: centred on TR
        centres it is not causal (``pool_to_trs(method="lanczos")`` shifts it
        so that its support ends at the TR's end).
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


@dataclass(frozen=True)
class TimeBase:
    """One dataset's time base: the TR length and the audio time at which the scan starts.

    Carried by :class:`~encoding_kit.data.story.Story` and recorded on the
    words table by :func:`~encoding_kit.data.course_files.load_align`, so the
    ``tr`` column of the words and every later pooling of words or cutting
    of audio use the same two numbers (:func:`time_base_of_words`).

    Parameters
    ----------
    tr : float
        Repetition time (s), > 0.
    onset_offset : float
        Audio time (s) at which the first TR starts (0 when the scan and the
        audio start together, as in the course data).
    """

    tr: float = TR
    onset_offset: float = 0.0

    def __post_init__(self):
        if not (np.isfinite(self.tr) and self.tr > 0):
            raise ValueError(f"TimeBase: tr must be a positive number of seconds, got {self.tr!r}")
        if not np.isfinite(self.onset_offset):
            raise ValueError(f"TimeBase: onset_offset must be a finite number of seconds, got {self.onset_offset!r}")

    def as_kwargs(self):
        """``{"tr": ..., "onset_offset": ...}``, the keyword arguments of the kit's functions that place things in TRs."""
        return {"tr": float(self.tr), "onset_offset": float(self.onset_offset)}

    def word_trs(self, onsets):
        """TR of each onset (s, audio time): int array (n_words,). See :func:`word_trs`."""
        return word_trs(onsets, **self.as_kwargs())

    def scan_end(self, n_trs):
        """Audio time (s) at which TR ``n_trs - 1`` ends."""
        return float(self.onset_offset + n_trs * self.tr)

    def tr_ends(self, trs):
        """Audio time (s) at which each TR in ``trs`` ends, float array of the shape of ``trs``."""
        return self.onset_offset + (np.asarray(trs, dtype=float) + 1) * self.tr

    def pool(self, values, trs, n_trs, method="mean", times=None):
        """Pool word values (n_words, dim) into (n_trs, dim). See :func:`pool_to_trs`."""
        return pool_to_trs(values, trs, n_trs, method, times=times, **self.as_kwargs())


TIME_BASE_ATTR = "time_base"
"""Key under which :func:`~encoding_kit.data.course_files.load_align` records the time base in ``words.attrs``."""


def time_base_of_words(words, tr=None, onset_offset=None):
    """The time base a words table was put on TRs with, checked against what a caller asks for.

    Parameters
    ----------
    words : DataFrame
        From :func:`~encoding_kit.data.course_files.load_align` (its ``attrs`` hold the time base).
    tr, onset_offset : float, optional
        What the caller wants; ``None`` takes the words' own.

    Returns
    -------
    TimeBase

    Raises
    ------
    ValueError
        When the caller's ``tr`` or ``onset_offset`` differs from the one the
        words' ``tr`` column was computed with: pooling with another time base
        would put words in other TRs than the column says.
    """
    own = words.attrs.get(TIME_BASE_ATTR) if hasattr(words, "attrs") else None
    if own is None:  # a table built by hand: the caller's values, else the default
        return TimeBase(TR if tr is None else tr, 0.0 if onset_offset is None else onset_offset)
    asked = TimeBase(own.tr if tr is None else tr, own.onset_offset if onset_offset is None else onset_offset)
    if not (np.isclose(asked.tr, own.tr) and np.isclose(asked.onset_offset, own.onset_offset)):
        raise ValueError(
            f"the words' tr column was computed with tr={own.tr} s, onset_offset={own.onset_offset} s, but pooling "
            f"was asked for tr={asked.tr} s, onset_offset={asked.onset_offset} s; load the words again with "
            "load_align(timebase=TimeBase(...)) (or load_story(onset_offset=...)) instead of mixing time bases")
    return own
