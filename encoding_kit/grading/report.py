"""The gradebook: a CSV, a static HTML page (thumbnails next to each row) and a console summary."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

COLUMNS = ["student", "notebook", "status", "seconds", "cell", "source_cell", "execution_count", "error", "note", "numbers",
           "standins", "reproducibility", "figures", "executed", "html"]
"""``cell``: the failing (or running) cell's position in the executed copy, markdown cells and papermill's
injected parameters cell included (1 = first); ``source_cell``: the same cell's position in the student's own
notebook; ``execution_count``: its ``In [n]``; ``figures``: ``thumbnail>figure`` pairs joined by ``|``."""
STATUS_COLOURS = {"ok": "#d9f2d9", "error": "#f8d7d7", "timeout": "#fde8c8", "kernel died": "#f8d7d7",
                  "missing package": "#fde8c8", "wrote outside its folder": "#f3d9f2", "invalid notebook": "#e6e6e6",
                  "interrupted": "#e6e6e6", "grader error": "#f8d7d7"}


def gradebook_table(rows):
    """One row per student and notebook, sorted; the columns of :data:`COLUMNS`."""
    table = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("cell", "source_cell", "execution_count"):
        table[column] = pd.to_numeric(table[column], errors="coerce").astype("Int64")
    table["standins"] = table["standins"].fillna(False).astype(bool)
    return table.sort_values(["student", "notebook"], kind="stable").reset_index(drop=True)


def write_gradebook(table, out_dir, problems=()):
    """Write ``gradebook.csv`` and ``gradebook.html`` into ``out_dir``; return their paths."""
    from ..core.storage import atomic_write

    out_dir = Path(out_dir)
    csv, page = out_dir / "gradebook.csv", out_dir / "gradebook.html"
    atomic_write(csv, lambda tmp: table.to_csv(tmp, index=False))
    text = gradebook_html(table, problems)
    atomic_write(page, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return csv, page


def gradebook_html(table, problems=()):
    """A self-contained HTML page (thumbnails by relative path) of the gradebook."""
    counts = table["status"].value_counts()
    summary = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no notebooks"
    head = ("<!doctype html><meta charset='utf-8'><title>Gradebook</title><style>"
            "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:13px}"
            "td,th{border:1px solid #bbb;padding:4px 6px;vertical-align:top;text-align:left}"
            "th{background:#eee}img{margin:2px;border:1px solid #ccc}.num{white-space:pre-line}</style>")
    parts = [head, f"<h1>Gradebook</h1><p>{len(table['student'].unique())} submissions, {len(table)} notebooks: "
             f"{html.escape(summary)}</p>"]
    if problems:
        parts.append("<ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in problems) + "</ul>")
    parts.append("<table><tr><th>student</th><th>notebook (executed copy)</th><th>status</th><th>s</th>"
                 "<th>failing cell / error</th><th>headline: mean r over ROIs +- std over subjects; per model the "
                 "held-out best layer</th><th>reproducibility</th><th>figures (click: full size)</th></tr>")
    for row in table.itertuples(index=False):
        colour = STATUS_COLOURS.get(row.status, "#fff")
        where = f"{where_text(row)}: " if where_text(row) else ""
        problem = where + " ".join(str(x) for x in (row.error, row.note) if isinstance(x, str) and x)
        numbers = html.escape(str(row.numbers or "")).replace("; ", "\n")
        if row.standins and numbers:
            numbers = "<b>stand-in models</b> (not the named checkpoints)\n" + numbers
        parts.append(f"<tr><td>{html.escape(row.student)}</td><td>{_links(row)}</td>"
                     f"<td style='background:{colour}'>{html.escape(row.status)}</td><td>{row.seconds}</td>"
                     f"<td>{html.escape(problem)}</td><td class='num'>{numbers}</td>"
                     f"<td>{html.escape(str(row.reproducibility or ''))}</td><td>{_figures(row.figures)}</td></tr>")
    parts.append("</table>")
    return "\n".join(parts)


def where_text(row):
    """``"cell 4 (In [3]) of the executed copy = cell 3 of the student's notebook"`` (empty without a cell)."""
    if pd.isna(row.cell):
        return ""
    count = "" if pd.isna(row.execution_count) else f" (In [{int(row.execution_count)}])"
    own = "" if pd.isna(row.source_cell) else f" = cell {int(row.source_cell)} of the student's notebook"
    return f"cell {int(row.cell)}{count} of the executed copy{own}"


def _links(row):
    name = html.escape(row.notebook)
    if not (isinstance(row.executed, str) and row.executed):
        return name
    page = f" (<a href='{html.escape(row.html)}'>page</a>)" if isinstance(row.html, str) and row.html else ""
    return f"<a href='{html.escape(row.executed)}'>{name}</a>{page}"


def _figures(value):
    pairs = [item.split(">", 1) for item in str(value or "").split("|") if ">" in item]
    return "".join(f"<a href='{html.escape(full)}'><img src='{html.escape(thumb)}' width='160'></a>"
                   for thumb, full in pairs)


def summary_text(table, csv, page):
    """The lines printed at the end of a grading run."""
    lines = [f"\nGraded {table['student'].nunique()} submissions, {len(table)} notebooks:"]
    for status, n in table["status"].value_counts().items():
        lines.append(f"  {status}: {n}")
    bad = table[table["status"] != "ok"]
    for row in bad.itertuples(index=False):
        where = f" ({where_text(row)})" if where_text(row) else ""
        lines.append(f"  - {row.student} / {row.notebook}: {row.status}{where}: {row.error}")
    differs = table[table["reproducibility"].fillna("").str.startswith("differs")]
    for row in differs.itertuples(index=False):
        lines.append(f"  - {row.student} / {row.notebook}: saved outputs {row.reproducibility}")
    lines.append(f"Gradebook: {csv}\n           {page}")
    return "\n".join(lines)
