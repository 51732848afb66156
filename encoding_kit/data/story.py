"""The story as one value: every subject's fMRI, the aligned words and the audio (``load_story``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import course_files as _data
from .timebase import TR


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
    """

    fmri: dict
    words: pd.DataFrame
    wav: np.ndarray
    sr: int
    source: str
    truth: dict | None

    @property
    def n_trs(self):
        return next(iter(self.fmri.values())).shape[0]

    def describe(self):
        """One line per fact, for the top of a notebook."""
        return (f"data: {self.source} | {len(self.fmri)} subjects x {self.n_trs} TRs x 360 ROIs | "
                f"{len(self.words)} words ({int((~self.words['aligned']).sum())} unaligned, times interpolated) | "
                f"audio {len(self.wav) / self.sr:.2f} s at {self.sr} Hz (scan {self.n_trs * TR:.1f} s)")


def load_story(data_dir=None, subjects=None, max_trs=None):
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

    Returns
    -------
    Story
    """
    from ..demo.generate import load_truth

    source = _data.data_source(data_dir)
    fmri = _data.load_fmri(data_dir=data_dir)
    fmri = _data.select_subjects(fmri, subjects)
    wav, sr = _data.load_audio(data_dir=data_dir)
    words = _data.load_align(data_dir=data_dir)
    _data.check_alignment_fits_scan(words, next(iter(fmri.values())).shape[0], _data.data_dir(data_dir) / _data.ALIGN_FILE)
    truth = load_truth(data_dir) if source == "demo" else None
    n_trs = next(iter(fmri.values())).shape[0]
    if max_trs is not None and int(max_trs) < n_trs:
        n_trs = int(max_trs)
        fmri = {s: y[:n_trs] for s, y in fmri.items()}
        words = words[words["start"] < n_trs * TR].reset_index(drop=True)
        wav = wav[: int(round(n_trs * TR * sr))]
    return Story(fmri, words, wav, sr, source, truth)
