"""What a graded notebook reported: its headline numbers, figures, an HTML page, and reproducibility.

- Headline numbers, from the tables the notebook saved (wherever under its
  results folder it saved them): the assignment's mean r over all ROIs +- std
  over subjects (``summary.csv``, scope ``all``); per model the best layer
  chosen on half of the subjects and scored on the other half
  (``layer_subject_scores.csv``, :func:`best_layers_held_out`); a table with
  only per-layer means is labelled "max over layers, biased upward". Flagged
  when the notebook printed the kit's ``STAND-IN:`` banner.
- Figures: the PNG files it saved and the images in the executed copy's
  outputs, each copied whole with a thumbnail.
- Reproducibility: the numbers printed in each cell of the student's saved
  outputs against the same cell of the re-executed copy.
"""

from __future__ import annotations

import base64
import math
import re
import shutil
from pathlib import Path

import pandas as pd

LABEL_COLUMNS = ("model", "features", "feature_set", "name")
DURATION = re.compile(r"\d+(?:\.\d+)?\s*(?:ms|s|sec|seconds|min|minutes|it/s|s/it)\b")  # run times always differ
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.])")
STANDIN = "STAND-IN:"  # the first words of the banner load_model prints when it substitutes a model


def _tables(folders, name):
    return [t for f in folders if Path(f).is_dir() for t in sorted(Path(f).rglob(name)) if "previous" not in t.parts]


def _read(table):
    """The table with its rows of numeric ``mean_r`` only (as float); empty when unreadable (see unreadable_results)."""
    try:
        frame = pd.read_csv(table)
    except Exception:  # an unreadable table is not a headline; the row's note names it (unreadable_results)
        return pd.DataFrame()
    if "mean_r" in frame:
        mean_r = pd.to_numeric(frame["mean_r"], errors="coerce")
        frame = frame[mean_r.notna()].assign(mean_r=mean_r[mean_r.notna()].astype(float))
    return frame


def _label(frame, default):
    column = next((c for c in LABEL_COLUMNS if c in frame), None)
    return frame.groupby(column, sort=False) if column else [(default, frame)]


def headline_numbers(folders):
    """The notebook's headline, one labelled line per model or feature set.

    Parameters
    ----------
    folders : list of Path
        The results folders the notebook wrote (``results/<name>/`` of its sandbox, copied out).

    Returns
    -------
    list of str
        ``"text: mean r over 360 ROIs = 0.032 +- 0.004 (std over 25 subjects)"``,
        ``"gpt2: held-out best layer 6: r = 0.051 +- 0.010 (12 subjects; layer chosen on the other 13)"``,
        ``"gpt2: max over layers (layer 6), biased upward: r = 0.055 +- 0.011"``; empty when none of these tables.
    """
    from ..analysis.layers import best_layers_held_out

    lines = []
    for table in _tables(folders, "summary.csv"):
        frame = _read(table)
        if not {"scope", "mean_r"} <= set(frame):
            continue
        for name, rows in _label(frame[frame["scope"] == "all"], table.parent.name):
            for row in rows.itertuples(index=False):
                rois = f"{int(row.n_rois)} ROIs" if hasattr(row, "n_rois") else "all ROIs"
                std = f" +- {row.std_r:.3f} (std over subjects)" if hasattr(row, "std_r") and pd.notna(row.std_r) else ""
                lines.append(f"{name}: mean r over {rois} = {row.mean_r:.3f}{std}")
    held = set()
    for table in _tables(folders, "layer_subject_scores.csv"):
        frame = _read(table)
        if not {"model", "layer", "subject", "mean_r"} <= set(frame) or frame.empty:
            continue
        for row in best_layers_held_out(frame).itertuples(index=False):
            n_subjects = frame.loc[frame["model"] == row.model, "subject"].nunique()
            lines.append(f"{row.model}: held-out best layer {row.layer}: r = {row.mean_r:.3f} +- {row.std_r:.3f} "
                         f"({row.n_report} subjects; layer chosen on the other {n_subjects - row.n_report})")
            held.add((table.parent, row.model))
    for table in _tables(folders, "layer_scores.csv"):
        frame = _read(table)
        if not {"layer", "mean_r"} <= set(frame) or frame.empty:
            continue
        for name, rows in _label(frame, table.parent.name):
            if (table.parent, name) in held:
                continue
            best = rows.loc[rows["mean_r"].idxmax()]
            std = f" +- {best['std_r']:.3f}" if "std_r" in rows and pd.notna(best["std_r"]) else ""
            lines.append(f"{name}: max over layers (layer {best['layer']}), biased upward: r = {best['mean_r']:.3f}{std}")
    return lines


def unreadable_results(folders, relative_to=None):
    """One line per results file the grader cannot use, naming it: unreadable CSV or PNG, all-NaN ``mean_r``.

    Parameters
    ----------
    folders : Path or list of Path
        Results folders (searched recursively, ``previous/`` left out, like :func:`headline_numbers`).
    relative_to : Path, optional
        Files are named relative to this folder (default: the results folder they were found in).

    Returns
    -------
    list of str
        ``"broken.csv: not a readable CSV table (ParserError)"``; empty when every ``*.csv`` and ``*.png`` can be read.
    """
    from PIL import Image

    folders = [folders] if isinstance(folders, (str, Path)) else list(folders)
    problems = []

    def name(path, folder):
        return Path(path).relative_to(relative_to or folder).as_posix()

    for folder in folders:
        for path in _tables([folder], "*.csv"):
            try:
                frame = pd.read_csv(path)
            except Exception as exc:
                problems.append(f"{name(path, folder)}: not a readable CSV table ({type(exc).__name__})")
                continue
            if "mean_r" in frame and len(frame) and pd.to_numeric(frame["mean_r"], errors="coerce").isna().all():
                problems.append(f"{name(path, folder)}: mean_r is NaN (or not a number) in all {len(frame)} rows")
    for folder in folders:
        for path in _tables([folder], "*.png"):
            try:
                with Image.open(path) as image:
                    image.verify()
            except Exception as exc:
                problems.append(f"{name(path, folder)}: not a readable PNG image ({type(exc).__name__})")
    return problems


def used_standins(executed_notebook):
    """True when the executed copy's outputs carry the kit's stand-in banner (the numbers come from substitutes)."""
    import nbformat

    try:
        nb = nbformat.read(executed_notebook, as_version=4)
    except Exception:
        return False
    return any(STANDIN in _output_text(out) for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []))


def figures(folders, executed_notebook, out_folder, limit=8, width=320):
    """Copy up to ``limit`` figures whole into ``out_folder`` with a thumbnail each; return (thumbnail, figure) pairs.

    The PNG files under ``folders`` come first, then the images in the executed copy's outputs.
    """
    import io

    from PIL import Image

    out_folder = Path(out_folder)
    out_folder.mkdir(parents=True, exist_ok=True)
    stem = Path(executed_notebook).stem
    sources = [("file", p) for p in _tables(folders, "*.png")]
    if executed_notebook and Path(executed_notebook).exists():
        sources += [("inline", data) for data in _notebook_images(executed_notebook)]
    pairs = []
    for kind, source in sources:
        if len(pairs) >= limit:
            break
        full = out_folder / f"{stem}_fig{len(pairs) + 1}.png"
        try:
            if kind == "file":
                shutil.copyfile(source, full)
            else:
                full.write_bytes(base64.b64decode(source))
            image = Image.open(io.BytesIO(full.read_bytes())).convert("RGB")
        except Exception:  # not an image after all: left out of the gradebook, never its row
            full.unlink(missing_ok=True)
            continue
        image.thumbnail((width, width * 4))
        thumb = full.with_name(f"{full.stem}_thumb.png")
        image.save(thumb)
        pairs.append((thumb, full))
    return pairs


def _notebook_images(path):
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:
        return []
    return [out["data"]["image/png"] for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]


def notebook_html(executed_notebook, page):
    """Write an HTML page of the executed copy (nbconvert, outputs and figures included); return it or None."""
    from nbconvert import HTMLExporter

    try:
        body, _ = HTMLExporter().from_filename(str(executed_notebook))
    except Exception:
        return None
    Path(page).write_text(body, encoding="utf-8")
    return Path(page)


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
