"""The course rubric, read from an instructor-editable YAML file, scored from a graded class; the LMS CSV.

A rubric lists items, each with ``id``, ``points`` and a ``check`` (one of ``CHECKS`` (:mod:`encoding_kit.teach.checks`)) and the check's own
settings; ``manual`` items (interpretation, own ideas) get an empty column for the TA. ``score_class`` reads
what ``grade`` left in each submission's grading folder (statuses, results tables, figures, check records)
and writes ``rubric.csv`` (one row per student: points per item, total, a TA comment column), ``rubric.html``
and ``lms.csv`` (student id, total: the two columns Canvas and Moodle map on import).
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_RUBRIC = Path(__file__).with_name("rubric.yaml")


class RubricError(ValueError):
    """A rubric file that cannot be used; the message names the file, the item and what was expected."""


def _results(folder):
    return [p for p in Path(folder, "results").rglob("*") if p.is_file() and "previous" not in p.parts] \
        if Path(folder, "results").is_dir() else []


def runs_to_end(item, sub):
    """Every notebook of the submission ran to the end (status ``ok``)."""
    states = sub["statuses"]
    ok = bool(states) and all(s == "ok" for s in states.values())
    return float(ok), ", ".join(f"{Path(n).name} {s}" for n, s in sorted(states.items())) or "no notebooks"


def public_checks(item, sub):
    """Every named public check ran (``check(name, out=...)``) and passed; a share for each."""
    names, done = item["names"], []
    for name in names:
        records = [json.loads(p.read_text()) for p in sub["files"] if p.match(f"checks/{name}.json")]
        if records and all(r.get("passed") is True for r in records):
            done.append(name)
    missing = [n for n in names if n not in done]
    return len(done) / len(names), "all passed" if not missing else f"not passed or not run: {', '.join(missing)}"


def hidden(item, sub):
    """One hidden test (``encoding_kit/teach/hidden.py``) on the submission's check records."""
    from .hidden import run_hidden

    passed, message = run_hidden(item["test"], sub["folder"] / "results")
    return float(passed), message


def _matches(path, pattern):
    """``pattern`` (fnmatch) against ``folder/name``: the notebook's results folder and the file's name."""
    return fnmatch.fnmatch(f"{path.parent.name}/{path.name}", pattern if "/" in pattern else f"*/{pattern}")


def _tables(sub, pattern):
    out = []
    for path in sub["files"]:
        if _matches(path, pattern) and path.suffix == ".csv":
            try:
                out.append((path, pd.read_csv(path)))
            except Exception:  # unreadable: not evidence (the gradebook's note names it)
                continue
    return out


def models_per_modality(item, sub):
    """At least ``min_models`` models per modality, each with ``min_layers`` layers scored (finite ``mean_r``)."""
    counts = {m: set() for m in item["modalities"]}
    for path, frame in _tables(sub, item.get("tables", "layer*scores.csv")):
        if not {"model", "layer", "mean_r"} <= set(frame):
            continue
        frame = frame[pd.to_numeric(frame["mean_r"], errors="coerce").notna()]
        for modality, folder_word in item["modalities"].items():
            rows = frame[frame["modality"] == modality] if "modality" in frame else (
                frame if folder_word in path.parent.name else frame.iloc[:0])
            layers = rows.groupby("model")["layer"].nunique()
            counts[modality] |= set(layers[layers >= item.get("min_layers", 2)].index)
    share = np.mean([min(len(models), item["min_models"]) / item["min_models"] for models in counts.values()])
    return float(share), "; ".join(f"{m}: {len(v)} model(s) with their layers" for m, v in counts.items())


def subjects_mean_std(item, sub):
    """A results table with the mean r over all ROIs and its std over at least ``min_subjects`` subjects."""
    for _, frame in _tables(sub, "summary.csv"):
        if {"scope", "mean_r", "std_r"} <= set(frame) and frame.loc[frame["scope"] == "all", "std_r"].notna().any():
            return 1.0, "summary.csv: mean +- std over subjects"
    for path in sub["files"]:
        if path.match("checks/subjects.json"):
            record = json.loads(path.read_text())
            if record.get("passed") and record.get("n_subjects", 0) >= item.get("min_subjects", 2):
                return 1.0, f"{record['n_subjects']} subjects with mean +- std"
    return 0.0, "no mean +- std over subjects"


def table_present(item, sub):
    """A results table matching ``pattern`` (``folder/name``) with at least ``min_rows`` rows (a sweep, fusion, a nonlinear model)."""
    for path, frame in _tables(sub, item["pattern"]):
        if len(frame) >= item.get("min_rows", 1):
            return 1.0, f"{path.name}: {len(frame)} rows"
    return 0.0, f"no table {item['pattern']} with {item.get('min_rows', 1)}+ rows"


def figures(item, sub):
    """At least ``min`` saved figures matching ``pattern`` (``folder/name``: ROI and brain maps)."""
    found = [p for p in sub["files"] if _matches(p, item.get("pattern", "*.png")) and p.suffix == ".png"]
    return float(len(found) >= item.get("min", 1)), f"{len(found)} figure(s) {item.get('pattern', '*.png')}"


def manual(item, sub):
    """Scored by the TA (interpretation, own ideas): 0 until the TA fills the column."""
    return 0.0, "TA"


CHECKS = {f.__name__: f for f in (runs_to_end, public_checks, hidden, models_per_modality, subjects_mean_std,
                                  table_present, figures, manual)}
REQUIRED = {"hidden": ("test",), "public_checks": ("names",), "models_per_modality": ("modalities", "min_models"),
            "table_present": ("pattern",)}


def load_rubric(path=None):
    """Read and check a rubric file (YAML); raise :class:`RubricError` naming the file and the item.

    Returns
    -------
    dict
        ``{"title": str, "lms": {...}, "items": [ {id, points, check, ...}, ... ]}``.
    """
    import yaml

    try:
        from .hidden import TESTS
    except ImportError:  # a student release ships neither the hidden tests nor the rubric
        raise RubricError("this is a student release: the hidden tests and the rubric are in the TAs' kit") from None
    path = Path(path or DEFAULT_RUBRIC)
    try:
        rubric = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RubricError(f"{path}: not a readable YAML rubric ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    items = rubric.get("items") if isinstance(rubric, dict) else None
    if not items or not isinstance(items, list):
        raise RubricError(f"{path}: no 'items' list (each item: id, points, check)")
    seen = set()
    for n, item in enumerate(items, 1):
        label = item.get("id", "no id") if isinstance(item, dict) else repr(item)
        where = f"{path}: item {n} ({label})"
        if not isinstance(item, dict):
            raise RubricError(f"{where}: expected a mapping with id, points, check")
        for key in ("id", "points", "check", *REQUIRED.get(item.get("check"), ())):
            if key not in item:
                raise RubricError(f"{where}: missing '{key}'")
        if item["check"] not in CHECKS:
            raise RubricError(f"{where}: unknown check {item['check']!r}; expected one of {', '.join(CHECKS)}")
        if not isinstance(item["points"], (int, float)) or isinstance(item["points"], bool) or item["points"] < 0:
            raise RubricError(f"{where}: points must be a number >= 0, found {item['points']!r}")
        if item["check"] == "hidden" and item["test"] not in TESTS:
            raise RubricError(f"{where}: unknown hidden test {item['test']!r}; expected one of {', '.join(TESTS)}")
        if item["id"] in seen:
            raise RubricError(f"{where}: the id {item['id']!r} appears twice")
        seen.add(item["id"])
    return {"title": rubric.get("title", "assignment"), "lms": rubric.get("lms", {}), "items": items}


def copy_rubric(out):
    """Copy the kit's rubric to ``out`` (a new file) for an instructor to edit; return its path."""
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"--out {out}: the file exists; the rubric is written to a new file only")
    out.write_text(DEFAULT_RUBRIC.read_text(encoding="utf-8"), encoding="utf-8")
    return out


def score_submission(rubric, folder, statuses):
    """{item id: (points, detail)} for one submission's grading folder and its notebooks' statuses."""
    sub = {"folder": Path(folder), "statuses": statuses, "files": _results(folder)}
    scores = {}
    for item in rubric["items"]:
        share, detail = CHECKS[item["check"]](item, sub)
        scores[item["id"]] = (round(item["points"] * share, 2), detail)
    return scores


def score_class(rubric, table, folders, out_dir):
    """Score every submission; write ``rubric.csv``, ``rubric.html``, ``lms.csv`` into ``out_dir``.

    Parameters
    ----------
    rubric : dict
        From :func:`load_rubric`.
    table : DataFrame
        The gradebook (``student``, ``notebook``, ``status``).
    folders : dict
        {student id: the submission's grading folder}.

    Returns
    -------
    DataFrame
        One row per student: a column per item (points), ``total``, ``max``, ``comment`` (empty, for the TA).
    """
    from ..core.storage import atomic_write

    rows, details = [], []
    for student, folder in sorted(folders.items()):
        mine = table[table["student"] == student]
        scores = score_submission(rubric, folder, dict(zip(mine["notebook"], mine["status"])))
        rows.append({"student": student, **{k: v[0] for k, v in scores.items()},
                     "total": round(sum(v[0] for v in scores.values()), 2),
                     "max": sum(i["points"] for i in rubric["items"]), "comment": ""})
        details += [{"student": student, "item": k, "points": v[0], "detail": v[1]} for k, v in scores.items()]
    book = pd.DataFrame(rows, columns=["student", *[i["id"] for i in rubric["items"]], "total", "max", "comment"])
    out_dir = Path(out_dir)
    atomic_write(out_dir / "rubric.csv", lambda tmp: book.to_csv(tmp, index=False))
    atomic_write(out_dir / "rubric_details.csv", lambda tmp: pd.DataFrame(details).to_csv(tmp, index=False))
    page = f"<!doctype html><meta charset='utf-8'><h1>{rubric['title']}: rubric</h1>" + book.to_html(index=False)
    atomic_write(out_dir / "rubric.html", lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    write_lms_csv(book, out_dir / "lms.csv", **rubric["lms"])
    return book


def write_lms_csv(book, path, id_column="student_id", total_column="total"):
    """The LMS import file: one row per student, ``id_column`` and ``total_column`` (Canvas / Moodle map them)."""
    from ..core.storage import atomic_write

    frame = pd.DataFrame({id_column: book["student"], total_column: book["total"]})
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
    return Path(path)


def read_lms_csv(path, id_column="student_id", total_column="total"):
    """{student id: total} of an LMS CSV (written by :func:`write_lms_csv` or exported by the LMS)."""
    frame = pd.read_csv(path, dtype={id_column: str})
    return dict(zip(frame[id_column], frame[total_column].astype(float)))


def rubric_text(book):
    """The rubric gradebook as printed at the end of ``grade --rubric``."""
    shown = book.drop(columns=["comment"])
    return "\nRubric:\n" + shown.to_string(index=False)
