"""What a graded notebook reported: key numbers, figures, files written outside its folder, and reproducibility.

- Key numbers: for every table ``results/<notebook>/*.csv`` with a ``mean_r``
  column, the best ``mean_r`` (+- its ``std_r``) per model (or feature set).
- Figures: the PNG files under ``results/<notebook>/`` and the images in the
  executed notebook's outputs, as small thumbnails for the HTML gradebook.
- Writes outside the submission's folder: file snapshots (size, mtime) of the
  watched folders before and after the run.
- Reproducibility: the numbers printed in each cell of the student's saved
  outputs against the same cell of the re-executed copy.
"""

from __future__ import annotations

import base64
import math
import re
from pathlib import Path

import pandas as pd

LABEL_COLUMNS = ("model", "features", "feature_set", "name")
DURATION = re.compile(r"\d+(?:\.\d+)?\s*(?:ms|s|sec|seconds|min|minutes|it/s|s/it)\b")  # run times always differ
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.])")


def key_numbers(results_folder):
    """``"model: 0.123 +- 0.045"`` lines from the tables of one notebook's results folder.

    Parameters
    ----------
    results_folder : Path
        ``results/<notebook>/`` of the executed copy.

    Returns
    -------
    list of str
        One line per model and table (best row by ``mean_r``), empty when there is no such table.
    """
    lines = []
    for table in sorted(Path(results_folder).glob("*.csv")) if Path(results_folder).is_dir() else []:
        try:
            frame = pd.read_csv(table)
        except Exception:
            continue
        if "mean_r" not in frame or frame.empty:
            continue
        frame = frame[pd.to_numeric(frame["mean_r"], errors="coerce").notna()]  # all-NaN tables: see unreadable_results
        if frame.empty:
            continue
        frame = frame.assign(mean_r=frame["mean_r"].astype(float))
        label = next((c for c in LABEL_COLUMNS if c in frame), None)
        groups = frame.groupby(label) if label else [(table.stem, frame)]
        for name, rows in groups:
            best = rows.loc[rows["mean_r"].idxmax()]
            std = f" +- {best['std_r']:.3f}" if "std_r" in rows and pd.notna(best["std_r"]) else ""
            lines.append(f"{table.stem}: {name}: r = {best['mean_r']:.3f}{std}")
    return lines


def unreadable_results(results_folder):
    """One line per results file the grader cannot use, naming it: unreadable CSV or PNG, all-NaN ``mean_r``.

    Returns
    -------
    list of str
        Empty when every ``*.csv`` and ``*.png`` of ``results_folder`` can be read.
    """
    from PIL import Image

    folder = Path(results_folder)
    problems = []
    for path in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
        try:
            frame = pd.read_csv(path)
        except Exception as exc:
            problems.append(f"{path.name}: not a readable CSV table ({type(exc).__name__})")
            continue
        if "mean_r" in frame and len(frame) and pd.to_numeric(frame["mean_r"], errors="coerce").isna().all():
            problems.append(f"{path.name}: mean_r is NaN (or not a number) in all {len(frame)} rows")
    for path in sorted(folder.glob("*.png")) if folder.is_dir() else []:
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as exc:
            problems.append(f"{path.name}: not a readable PNG image ({type(exc).__name__})")
    return problems


def _open_images(paths):
    from PIL import Image

    images = []
    for path in paths:
        try:
            image = Image.open(path)
            image.load()
        except Exception:  # named by unreadable_results
            continue
        images.append(image)
    return images


def figure_thumbnails(results_folder, executed_notebook, out_folder, limit=6, width=160):
    """Write up to ``limit`` thumbnails (PNG, ``width`` px wide) and return their paths.

    Parameters
    ----------
    results_folder : Path
        ``results/<notebook>/`` of the executed copy (its ``*.png``).
    executed_notebook : Path
        The executed copy (its ``image/png`` outputs, used when the folder has no PNG).
    out_folder : Path
        Where the thumbnails go.

    Returns
    -------
    list of Path
    """
    sources = sorted(Path(results_folder).glob("*.png")) if Path(results_folder).is_dir() else []
    images = _open_images(sources)[:limit]
    if not images:
        images = _open_images(_png_stream(data) for data in _notebook_images(executed_notebook))[:limit]
    out_folder = Path(out_folder)
    out_folder.mkdir(parents=True, exist_ok=True)
    thumbs = []
    for k, image in enumerate(images):
        image = image.convert("RGB")
        image.thumbnail((width, width * 4))
        path = out_folder / f"{Path(executed_notebook).stem}_fig{k + 1}.png"
        image.save(path)
        thumbs.append(path)
    return thumbs


def _png_stream(data):
    import io

    try:
        return io.BytesIO(base64.b64decode(data))
    except ValueError:
        return io.BytesIO(b"")


def _notebook_images(path):
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:
        return []
    return [out["data"]["image/png"] for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]


def snapshot(folders, exclude=()):
    """{path: (size, mtime_ns, mode, links)} of every file under ``folders``, except under ``exclude``.

    The mode and the hard-link count catch ``os.chmod`` and ``os.link`` (which change neither size nor mtime).
    """
    exclude = [Path(e).resolve() for e in exclude]
    state = {}
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            resolved = path.resolve()
            if path.is_file() and not any(resolved.is_relative_to(e) for e in exclude):
                stat = path.stat()
                state[str(resolved)] = (stat.st_size, stat.st_mtime_ns, stat.st_mode, stat.st_nlink)
    return state


def changed_files(before, after):
    """Paths created, modified or deleted between two :func:`snapshot` s (sorted)."""
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def cell_numbers(notebook):
    """{code cell number: numbers in its text outputs} of a notebook (unreadable: empty).

    Code cells are numbered from 1 in order, without the cell papermill injects, so the
    student's notebook and its executed copy number the same cells alike. Run times are left out.
    """
    import nbformat

    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception:
        return {}
    code = [c for c in nb.cells if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])]
    numbers = {}
    for index, cell in enumerate(code, 1):
        text = DURATION.sub(" ", "".join(_output_text(out) for out in cell.get("outputs", [])))
        values = [float(v) for v in NUMBER.findall(text)]
        if values:
            numbers[index] = values
    return numbers


def _output_text(output):
    if output.get("output_type") == "stream" and output.get("name") == "stdout":
        return output.get("text", "")
    if output.get("output_type") in ("execute_result", "display_data"):
        return output.get("data", {}).get("text/plain", "")
    return ""


def reproducibility(saved_notebook, executed_notebook, tolerance):
    """Compare the numbers a student saved with the re-executed ones, cell by cell.

    Parameters
    ----------
    saved_notebook, executed_notebook : Path
        The student's notebook (with its outputs) and the executed copy.
    tolerance : float
        Largest accepted difference, relative to the saved value (absolute below 1).

    Returns
    -------
    str
        ``"reproduced (n cells)"``, ``"differs in code cells i, j: saved a, re-run b"`` or ``"no saved outputs"``.
    """
    saved, rerun = cell_numbers(saved_notebook), cell_numbers(executed_notebook)
    if not saved:
        return "no saved outputs"
    differing = []
    for index, values in saved.items():
        again = rerun.get(index, [])
        if len(again) != len(values) or any(not _close(a, b, tolerance) for a, b in zip(values, again)):
            differing.append(index)
    if not differing:
        return f"reproduced ({len(saved)} cells)"
    first = differing[0]
    pair = next(((a, b) for a, b in zip(saved[first], rerun.get(first, [])) if not _close(a, b, tolerance)), None)
    detail = f": saved {pair[0]:g}, re-run {pair[1]:g}" if pair else ": a different count of numbers"
    return f"differs in code cell{'s' if len(differing) > 1 else ''} {', '.join(map(str, differing))}{detail}"


def _close(a, b, tolerance):
    return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
