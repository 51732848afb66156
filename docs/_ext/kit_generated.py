"""Pages and tables of the website generated from files at build time (called by ``docs/conf.py``).

Nothing measured is typed into a page: the benchmark tables come from the files the benchmark scripts wrote
(``benchmarks/results/*.csv`` / ``*.json``, with their date, machine and commit), the notebooks' run times from the
executed copies' own papermill metadata, the real run's estimate from :mod:`encoding_kit.run.profiles`. Files that
other pages include only when present (``grading.md``, ``reliability.md``) get a placeholder otherwise.
"""

import csv
import json
import shutil
from pathlib import Path

NOTEBOOKS = ("assignment", "01_text_models", "02_audio_models", "03_multimodal_models", "04_multi_subject",
             "05_window_pooling_sweeps", "06_brain_maps", "07_nonlinear_and_decoding", "08_brain_tuned_models",
             "09_speech_interpretation")
META_COLUMNS = ("date", "machine", "commit")


def write_if_changed(path, text):
    """Write ``text`` to ``path`` only when it differs (Sphinx then rebuilds only what changed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def md_table(header, rows):
    """A Markdown table; ``|`` in a cell is escaped."""
    def cell(value):
        return str(value).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def copy_notebooks(docs, root, executed):
    """Copy the executed notebooks into ``docs/notebooks/`` (git-ignored); return the names without an executed copy.

    A missing executed copy is an error unless ``KIT_DOCS_ALLOW_UNEXECUTED=1`` (the browser test's fast site), in
    which case the source notebook is rendered without outputs.
    """
    import os

    out = docs / "notebooks"
    out.mkdir(exist_ok=True)
    missing = []
    for name in NOTEBOOKS:
        source = executed / f"{name}.ipynb"
        if not source.exists():
            missing.append(name)
            source = root / (f"{name}.ipynb" if name == "assignment" else f"notebooks/{name}.ipynb")
        target = out / f"{name}.ipynb"
        if not target.exists() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)
    if missing and os.environ.get("KIT_DOCS_ALLOW_UNEXECUTED") != "1":
        raise RuntimeError(f"No executed copy of {', '.join(missing)} in {executed}: run `make quick` first "
                           f"(it writes results/executed/), or set KIT_DOCS_EXECUTED to a folder of executed copies.")
    return missing


def notebook_runs(docs):
    """Rows (notebook, parameters, started, seconds) from the papermill metadata of the rendered notebooks."""
    import nbformat

    rows = []
    for name in NOTEBOOKS:
        nb = nbformat.read(docs / "notebooks" / f"{name}.ipynb", as_version=4)
        meta = nb.metadata.get("papermill") or {}
        if not meta.get("duration"):
            rows.append((name, "not executed", "", ""))
            continue
        params = meta.get("parameters", {})
        shown = ", ".join(f"{k}={params[k]}" for k in ("QUICK", "MAX_TRS", "SUBJECTS") if k in params)
        rows.append((f"[{name}](notebooks/{name}.ipynb)", shown or "defaults", str(meta.get("start_time", ""))[:19],
                     f"{float(meta['duration']):.0f}"))
    return rows


def benchmark_files(root):
    """Markdown for every output file in ``benchmarks/results/`` (CSV or JSON), one table each."""
    folder = root / "benchmarks" / "results"
    files = sorted(p for p in folder.glob("*") if p.suffix in (".csv", ".json")) if folder.is_dir() else []
    if not files:
        return ("No benchmark output file yet: `benchmarks/results/` is empty. A benchmark run with `--out` writes one "
                "(CSV or JSON, with the date, the machine and the commit it ran on) and this page shows it at the next "
                "`make docs`.\n")
    parts = []
    for path in files:
        header, rows, meta = read_table(path)
        parts.append(f"### `{path.name}`\n")
        if meta:
            parts.append("Run: " + "; ".join(f"{k} {v}" for k, v in meta.items()) + ".\n")
        else:
            parts.append("This file records no date, machine or commit.\n")
        parts.append(md_table(header, rows) if rows else "(no rows)\n")
    return "\n".join(parts)


def read_table(path):
    """(header, rows, meta) of a benchmark output file; columns ``date``/``machine``/``commit`` that hold one value
    in every row move to ``meta``. JSON: a list of records, or ``{"meta": {...}, "rows": [...]}``."""
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        meta, records = (data.get("meta", {}), data.get("rows", [])) if isinstance(data, dict) else ({}, data)
        header = list(dict.fromkeys(k for r in records for k in r))
        rows = [[r.get(k, "") for k in header] for r in records]
    else:
        with path.open(newline="", encoding="utf-8") as f:
            lines = [ln for ln in f if not ln.startswith("#")]
        table = list(csv.reader(lines))
        header, rows, meta = (table[0] if table else []), table[1:], {}
    for key in META_COLUMNS:
        if key in header:
            i = header.index(key)
            values = {r[i] for r in rows}
            if len(values) == 1:
                meta[key] = values.pop()
                header = header[:i] + header[i + 1:]
                rows = [r[:i] + r[i + 1:] for r in rows]
    return header, rows, meta


def real_run_estimates():
    """The real run's estimate (minutes) per notebook, one column per profile and precision, from ``run/profiles.py``."""
    from encoding_kit.run import profiles

    columns, tables = [], []
    for profile in ("full", "laptop", "quick"):
        for precision in (profiles.BF16, profiles.FLOAT32):
            columns.append(f"{profile}, {precision}")
            tables.append(profiles.estimate(profile, precision=precision, runner=True))  # make run's order
    rows = [[n, *(f"{table.loc[n, 'total_min']:.1f}" for table in tables)] for n in profiles.NOTEBOOKS]
    rows.append(["**total**", *(f"**{table.loc['total', 'total_min']:.0f}**" for table in tables)])
    return md_table(["notebook", *columns], rows)


STAGES = {"data": "Data and the time base", "features": "Stimulus features and models",
          "encoding": "Encoding models", "decoding": "Decoding", "analysis": "Statistics, tables and figures",
          "brain_tuning": "Brain-tuned models", "demo": "The demo and its planted truth",
          "run": "Running notebooks, results folders and sweeps", "grading": "Grading",
          "teach": "Teaching: the student release, public and hidden checks, the rubric",
          "core": "Shared infrastructure"}


def api_utils():
    """The table of ``utils.__all__``: each name, what it is, and a link to its entry in its module's page."""
    import inspect

    import utils

    rows = []
    for name in sorted(utils.__all__, key=str.lower):
        obj = getattr(utils, name)
        module = getattr(obj, "__module__", None) if (inspect.isfunction(obj) or inspect.isclass(obj)) else None
        if not module or not module.startswith("encoding_kit."):
            rows.append([f"`utils.{name}`", "constant"])
            continue
        summary = plain_summary((inspect.getdoc(obj) or "").split("\n")[0])
        rows.append([f"{{py:obj}}`utils.{name} <{module}.{obj.__qualname__}>`", summary])
    return md_table(["name", "what"], rows)


def plain_summary(line):
    """A docstring's first line for a Markdown cell: reST roles and double backticks become code spans."""
    import re

    line = re.sub(r":[a-z]+:`~?\.?([^`<]*?)(?: <[^>]*>)?`", r"`\1`", line)
    return line.replace("``", "`")


def stage_modules(root):
    """{stage: [module names]} of the package, from its files (private modules and ``__main__`` left out)."""
    groups = {}
    for path in sorted((root / "encoding_kit").rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if len(parts) < 2 or any(p.startswith("_") for p in parts[1:]):
            continue
        groups.setdefault(parts[1], []).append(".".join(parts))
    return groups


def module_directives(module):
    """reST that documents ``module``'s public members (those it defines; a package's re-exports are documented where
    they are defined). A module shadowed by a function of the same name in its package (a module ``grade`` beside a function ``grade``)
    gets its members without a module entry, so the two names do not collide."""
    import importlib
    import inspect

    parent, _, leaf = module.rpartition(".")
    attribute = getattr(importlib.import_module(parent), leaf, None)
    shadowed = attribute is not None and not inspect.ismodule(attribute)
    if not shadowed:
        return [f".. automodule:: {module}", "   :members:", "   :ignore-module-all:"]
    mod = importlib.import_module(module)
    lines = [f".. currentmodule:: {module}", ""]
    for name, obj in vars(mod).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            lines += [f".. auto{'class' if inspect.isclass(obj) else 'function'}:: {name}", ""]
    return lines


def api_stage_pages(gen, root):
    """One page per pipeline stage with every public documented member of its modules; returns the page names."""
    names = []
    groups = stage_modules(root)
    for stage in sorted(groups, key=lambda s: list(STAGES).index(s) if s in STAGES else len(STAGES)):
        modules = groups[stage]
        title = STAGES.get(stage, stage)
        lines = [f"# {title}: `encoding_kit.{stage}`", ""]
        for module in modules:
            lines += [f"## `{module}`", "", "```{eval-rst}", *module_directives(module), "```", ""]
        write_if_changed(gen / f"api_{stage}.md", "\n".join(lines))
        names.append(f"_generated/api_{stage}")
    return names


def optional_include(name, present, what):
    """An include of ``docs/<name>`` when it exists, else a note saying it is not written yet."""
    if present:
        # A path from the source folder: the included page sits in docs/ like the page including it, so its links and
        # images resolve as they would in its own page.
        return f"```{{include}} /{name}\n:heading-offset: 1\n```\n"
    return f":::{{note}}\n{what} are not written yet: this page includes `docs/{name}` once it exists.\n:::\n"


def write_all(docs, root, executed):
    """Generate every page part under ``docs/_generated/`` and the rendered notebooks under ``docs/notebooks/``."""
    gen = docs / "_generated"
    copy_notebooks(docs, root, Path(executed))
    write_if_changed(gen / "api_utils_body.md", api_utils())
    pages = api_stage_pages(gen, root)
    write_if_changed(gen / "api_toc_body.md", "```{toctree}\n:maxdepth: 1\n\n" + "\n".join(pages) + "\n```\n")
    write_if_changed(gen / "benchmark_files_body.md", benchmark_files(root))
    write_if_changed(gen / "notebook_runs_body.md", md_table(["notebook", "parameters", "started (UTC)", "seconds"],
                                                             notebook_runs(docs)))
    write_if_changed(gen / "real_run_body.md", real_run_estimates())
    for name, what in (("grading.md", "The grading threat model and its checks"), ("reliability.md", "The reliability figures")):
        write_if_changed(gen / f"{Path(name).stem}_body.md", optional_include(name, (docs / name).exists(), what))
