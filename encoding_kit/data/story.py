"""The story as one value: every subject's fMRI, the aligned words and the audio (``load_story``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.validation import check_int
from . import course_files as _data
from .timebase import TIME_BASE_ATTR, TR, TimeBase


@dataclass
class Story:
    """Everything a notebook needs about the dataset.

    Attributes
    ----------
    fmri : dict {subject: array (n_trs, 360)}
    words : DataFrame (``load_align``)
    wav : array (n_samples,)
    sr : int
    source : str
        ``"course"`` or ``"demo"``.
    truth : dict or None
        Demo ground truth.
    timebase : TimeBase
        TR length and scan start in audio time: the words' ``tr`` column, the
        pooling and the audio windows of every sweep use it.
    """

    fmri: dict
    words: pd.DataFrame
    wav: np.ndarray
    sr: int
    source: str
    truth: dict | None
    timebase: TimeBase = TimeBase()

    @property
    def n_trs(self):
        return next(iter(self.fmri.values())).shape[0]

    def describe(self):
        """One line per fact, for the top of a notebook."""
        return (f"data: {self.source} | {len(self.fmri)} subjects x {self.n_trs} TRs x 360 ROIs | "
                f"{len(self.words)} words ({int((~self.words['aligned']).sum())} unaligned, times interpolated) | "
                f"audio {len(self.wav) / self.sr:.2f} s at {self.sr} Hz (scan {self.n_trs * self.timebase.tr:.1f} s)")


def load_story(data_dir=None, subjects=None, max_trs=None, onset_offset=0.0):
    """Load fMRI, words and audio from the data folder (course files or demo).

    Parameters
    ----------
    data_dir : str or Path, optional
    subjects : int or list, optional
        Keep the first ``subjects`` subjects (an int) or these ids.
    max_trs : int, optional
        Keep only the first ``max_trs`` TRs: the scan, the words starting
        before its end and the audio up to it (for quick checks; every
        notebook says when it is used).
    onset_offset : float
        Audio time (s) at which the scan's first TR starts (0 for the course
        data). With the TR it makes the story's :class:`TimeBase`, which the
        words' ``tr`` column, the pooling and the audio windows all use.

    Returns
    -------
    Story

    Examples
    --------
    >>> import utils
    >>> story = utils.load_story()          # the course files in data/ (or $KIT_DATA_DIR), else the demo there
    >>> story.source, len(story.fmri), story.fmri[1].shape
    ('demo', 3, (80, 360))
    >>> list(story.words.columns)
    ['word', 'word_lower', 'start', 'end', 'aligned', 'tr']
    >>> short = utils.load_story(subjects=2, max_trs=40)   # the first 2 subjects and 40 TRs: a quicker try
    >>> len(short.fmri), short.n_trs
    (2, 40)
    """
    if max_trs is not None:
        max_trs = check_int(max_trs, "max_trs", 1)
    source = _data.data_source(data_dir)
    fmri = _data.load_fmri(data_dir=data_dir)
    fmri = _data.select_subjects(fmri, subjects)
    timebase = TimeBase(TR, onset_offset)
    scan_trs = next(iter(fmri.values())).shape[0]
    short = max_trs is not None and int(max_trs) < scan_trs  # only the audio of the first TRs is read
    wav, sr = _data.load_audio(data_dir=data_dir, max_seconds=timebase.scan_end(int(max_trs)) if short else None)
    words = _data.load_align(data_dir=data_dir, timebase=timebase)
    _data.check_alignment_fits_scan(words, next(iter(fmri.values())).shape[0], _data.data_dir(data_dir) / _data.ALIGN_FILE)
    truth = _data.load_truth(data_dir) if source == "demo" else None
    n_trs = next(iter(fmri.values())).shape[0]
    if max_trs is not None and int(max_trs) < n_trs:
        n_trs = int(max_trs)
        fmri = {s: y[:n_trs] for s, y in fmri.items()}
        words = words[words["start"] < timebase.scan_end(n_trs)].reset_index(drop=True)
        words.attrs[TIME_BASE_ATTR] = timebase  # not every pandas operation carries attrs
        wav = wav[: int(round(timebase.scan_end(n_trs) * sr))]
    return Story(fmri, words, wav, sr, source, truth, timebase)
