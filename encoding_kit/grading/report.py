"""The gradebook: a CSV, a static HTML page (thumbnails next to each row) and a console summary."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

COLUMNS = ["student", "notebook", "status", "seconds", "cell", "error", "note", "numbers", "reproducibility",
           "figures", "executed"]
STATUS_COLOURS = {"ok": "#d9f2d9", "error": "#f8d7d7", "timeout": "#fde8c8", "kernel died": "#f8d7d7",
                  "missing package": "#fde8c8", "wrote outside its folder": "#f3d9f2", "invalid notebook": "#e6e6e6"}


def gradebook_table(rows):
    """One row per student and notebook, sorted; the columns of :data:`COLUMNS`."""
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["cell"] = table["cell"].astype("Int64")  # index of the failing cell in the executed copy
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
    parts.append("<table><tr><th>student</th><th>notebook</th><th>status</th><th>s</th><th>failing cell (executed copy) / error"
                 "</th><th>key numbers (best mean r +- std)</th><th>reproducibility</th><th>figures</th></tr>")
    for row in table.itertuples(index=False):
        colour = STATUS_COLOURS.get(row.status, "#fff")
        problem = "" if pd.isna(row.cell) else f"cell {int(row.cell)}: "
        problem += " ".join(str(x) for x in (row.error, row.note) if isinstance(x, str) and x)
        link = (f"<a href='{html.escape(row.executed)}'>{html.escape(row.notebook)}</a>"
                if isinstance(row.executed, str) and row.executed else html.escape(row.notebook))
        figs = "".join(f"<img src='{html.escape(f)}' width='120'>" for f in str(row.figures or "").split("|") if f)
        numbers = html.escape(str(row.numbers or "")).replace("; ", "\n")
        parts.append(f"<tr><td>{html.escape(row.student)}</td><td>{link}</td>"
                     f"<td style='background:{colour}'>{html.escape(row.status)}</td><td>{row.seconds}</td>"
                     f"<td>{html.escape(problem)}</td><td class='num'>{numbers}</td>"
                     f"<td>{html.escape(str(row.reproducibility or ''))}</td><td>{figs}</td></tr>")
    parts.append("</table>")
    return "\n".join(parts)


def summary_text(table, csv, page):
    """The lines printed at the end of a grading run."""
    lines = [f"\nGraded {table['student'].nunique()} submissions, {len(table)} notebooks:"]
    for status, n in table["status"].value_counts().items():
        lines.append(f"  {status}: {n}")
    bad = table[table["status"] != "ok"]
    for row in bad.itertuples(index=False):
        where = "" if pd.isna(row.cell) else f" (cell {int(row.cell)})"
        lines.append(f"  - {row.student} / {row.notebook}: {row.status}{where}: {row.error}")
    differs = table[table["reproducibility"].fillna("").str.startswith("differs")]
    for row in differs.itertuples(index=False):
        lines.append(f"  - {row.student} / {row.notebook}: saved outputs {row.reproducibility}")
    lines.append(f"Gradebook: {csv}\n           {page}")
    return "\n".join(lines)
