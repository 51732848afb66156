"""Checks of the course files' contents, used by the loaders in :mod:`encoding_kit.data.course_files`.

Each raises :class:`DataFileError` with one message naming the file, the line
(or what was expected) and what was found.
"""

from __future__ import annotations

import numpy as np

from .timebase import TR


class DataFileError(ValueError):
    """A course or demo data file is missing or not in the expected format."""


def check_field_counts(file):
    """Every non-blank line has exactly 4 fields (pandas would fill a short row's end with an empty time)."""
    import csv

    with open(file, newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.reader(f), 1):
            if row and len(row) != 4:
                raise DataFileError(f"{file}: line {line} has {len(row)} fields, expected 4 (word, lowercase word, "
                                    f"start, end; empty times for unaligned words); found {row}")


def check_words(table, file):
    """Every row has a word in column 1."""
    empty = (table["word"].str.strip() == "").to_numpy()
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        raise DataFileError(f"{file}: line {row + 1} has an empty word (column 1); found {list(table.iloc[row])}")


def check_times(times, aligned, file):
    """Aligned times are finite, >= 0, and no word ends before it starts."""
    start, end = times["start"], times["end"]
    with np.errstate(invalid="ignore"):
        bad = aligned & ~(np.isfinite(start) & np.isfinite(end) & (start >= 0))
        backwards = aligned & ~bad & (end < start)
    for mask, what in ((bad, "finite seconds >= 0"), (backwards, "an end time >= its start time")):
        if mask.any():
            row = int(np.flatnonzero(mask)[0])
            raise DataFileError(f"{file}: line {row + 1} should have {what}, found start={start[row]}, end={end[row]}")


def check_alignment_fits_scan(words, n_trs, file, tr=TR, slack_s=30.0):
    """Refuse an alignment whose words go on far past the scan (a file from another story).

    Parameters
    ----------
    words : DataFrame from :func:`load_align`
    n_trs : int
        TRs of the scan.
    slack_s : float
        Seconds after the scan's end still accepted (the audio runs a little longer).
    """
    scan_s, last = n_trs * tr, float(words["start"].max())
    if last > scan_s + slack_s:
        raise DataFileError(f"{file}: words start up to {last:.1f} s but the scan lasts {scan_s:.1f} s "
                            f"({n_trs} TRs); is this the alignment of another story?")


def check_onsets_order(starts, file, rows):
    if starts.size == 0:
        raise DataFileError(f"{file}: no word has alignment times; expected start/end seconds in columns 3-4")
    drops = np.flatnonzero(np.diff(starts) < 0)
    if drops.size:
        i = drops[0]
        raise DataFileError(
            f"{file}: word onsets must not decrease, found {starts[i]} s on line {rows[i] + 1} "
            f"then {starts[i + 1]} s on line {rows[i + 1] + 1}"
        )


def wav_declared_frames(file):
    """Frames the RIFF/WAV header's ``data`` chunk announces, or ``None`` (not a plain WAV, or streamed)."""
    import struct

    with open(file, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = None
        while chunk := f.read(8):
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                fmt = f.read(size + size % 2)
                block_align = struct.unpack("<H", fmt[12:14])[0]
            elif cid == b"data":
                if not block_align or size in (0, 0xFFFFFFFF):
                    return None
                return size // block_align
            else:
                f.seek(size + size % 2, 1)
    return None
