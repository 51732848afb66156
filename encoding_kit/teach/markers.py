"""Exercise markers in the notebooks' jupytext sources, and the otter-grader master notebooks built from them.

In a code cell of ``assignment.py`` or ``notebooks/NN_*.py`` (comments: the notebooks run unchanged as the
solutions)::

    # BEGIN EXERCISE time_base | task 1 | expected: word_trs (n_words,) ints | hint: a word belongs to floor(onset / TR)
    word_trs = ...            # the solution: the student's work
    # END EXERCISE

:func:`master_notebook` turns each marked cell into an otter-grader question (``# BEGIN QUESTION`` ...
``# BEGIN SOLUTION``, raw cells) whose solution region is the marked lines and whose prompt is a
``NotImplementedError`` with the hint; ``otter assign`` strips it (``release.py``). One exercise per cell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

BEGIN = re.compile(r"^(\s*)# BEGIN EXERCISE\b(.*)$")
END = re.compile(r"^\s*# END EXERCISE\s*$")
FIELDS = ("task", "expected", "hint")
CONFIG = """# ASSIGNMENT CONFIG
init_cell: false
check_all_cell: false
export_cell: false
run_tests: false
generate: false
solutions_pdf: false
template_pdf: false"""


class MarkerError(ValueError):
    """A marker that cannot be used; the message is one line naming the file and the line."""


@dataclass(frozen=True)
class Exercise:
    """One marked region: ``name``, ``task`` (e.g. ``"1"``, ``"6 (optional)"``), ``expected`` shape, ``hint``."""

    name: str
    task: str
    expected: str
    hint: str
    indent: str = ""


def parse_begin(line, where):
    """The :class:`Exercise` of a ``# BEGIN EXERCISE name | task N | expected: ... | hint: ...`` line."""
    match = BEGIN.match(line)
    parts = [p.strip() for p in match.group(2).split("|")]
    name, fields = parts[0], {}
    for part in parts[1:]:
        key, _, value = part.partition(" ") if part.startswith("task") else part.partition(":")
        fields[key.strip()] = value.strip()
    missing = [f for f in FIELDS if not fields.get(f)]
    if not re.fullmatch(r"[A-Za-z_]\w*", name or "") or missing:
        raise MarkerError(f"{where}: expected '# BEGIN EXERCISE name | task N | expected: SHAPE | hint: TEXT', "
                          f"found {line.strip()!r}" + (f" (no {', '.join(missing)})" if missing else ""))
    return Exercise(name, fields["task"], fields["expected"], fields["hint"], match.group(1))


def scan_source(path):
    """Check the markers of one jupytext source; return its exercises in order.

    Raises
    ------
    MarkerError
        ``file:line: ...`` for a marker left unclosed, an END without BEGIN, a nested BEGIN, a bad BEGIN line,
        or two exercises with one name.
    """
    path = Path(path)
    found, open_at = [], None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path}:{number}"
        if BEGIN.match(line):
            if open_at:
                raise MarkerError(f"{where}: BEGIN EXERCISE inside the exercise opened at line {open_at[0]}")
            open_at = (number, parse_begin(line, where))
        elif END.match(line):
            if not open_at:
                raise MarkerError(f"{where}: END EXERCISE without a BEGIN EXERCISE before it")
            found.append(open_at[1])
            open_at = None
        elif line.startswith("# %%") and open_at:
            raise MarkerError(f"{path}:{open_at[0]}: BEGIN EXERCISE {open_at[1].name} is not closed in its cell "
                              "(expected '# END EXERCISE' before the next '# %%')")
    if open_at:
        raise MarkerError(f"{path}:{open_at[0]}: BEGIN EXERCISE {open_at[1].name} is never closed "
                          "(expected '# END EXERCISE')")
    names = [e.name for e in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise MarkerError(f"{path}: exercise name(s) {', '.join(twice)} used twice")
    return found


def _prompt(ex):
    text = f"task {ex.task} ({ex.name}): {ex.hint}. Expected: {ex.expected}"
    return [f'{ex.indent}""" # BEGIN PROMPT', f"{ex.indent}# TODO task {ex.task} ({ex.name}): {ex.expected}",
            f"{ex.indent}raise NotImplementedError({text!r})", f'{ex.indent}"""  # END PROMPT',
            f"{ex.indent}# BEGIN SOLUTION NO PROMPT"]


def solution_cell(source, where):
    """(exercises, the cell's source in otter's solution syntax) of one code cell (no exercise: ([], source))."""
    lines, out, exercises = source.splitlines(), [], []
    for line in lines:
        if BEGIN.match(line):
            exercises.append(parse_begin(line, where))
            out += _prompt(exercises[-1])
        elif END.match(line):
            out.append(f"{exercises[-1].indent}# END SOLUTION")
        else:
            out.append(line)
    if len(exercises) > 1:
        raise MarkerError(f"{where}: {len(exercises)} exercises in one cell ({', '.join(e.name for e in exercises)}); "
                          "put each in its own cell")
    return exercises, "\n".join(out)


def master_notebook(source_path, points=1):
    """The otter-grader master notebook of a jupytext source: (notebook, its exercises).

    Each marked cell becomes a question: a raw ``# BEGIN QUESTION`` cell, a markdown prompt (task, hint,
    expected shape), the cell between ``# BEGIN SOLUTION`` / ``# END SOLUTION`` raw cells, ``# END QUESTION``.
    """
    import jupytext
    import nbformat

    scan_source(source_path)
    nb = jupytext.read(source_path)
    cells, exercises = [nbformat.v4.new_raw_cell(CONFIG)], []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "# BEGIN EXERCISE" not in cell.source:
            cells.append(cell)
            continue
        found, source = solution_cell(cell.source, f"{source_path}: cell {index + 1}")
        ex = found[0]
        exercises.append(ex)
        cell.source = source
        cells += [nbformat.v4.new_raw_cell(f"# BEGIN QUESTION\nname: {ex.name}\nmanual: false\npoints: {points}"),
                  nbformat.v4.new_markdown_cell(f"**Exercise: task {ex.task} (`{ex.name}`).** {ex.hint}.\n\n"
                                                f"Expected: {ex.expected}. Replace the `NotImplementedError` below "
                                                "with your code; the check after it tests your objects."),
                  nbformat.v4.new_raw_cell("# BEGIN SOLUTION"), cell, nbformat.v4.new_raw_cell("# END SOLUTION"),
                  nbformat.v4.new_raw_cell("# END QUESTION")]
    nb.cells = cells
    return nb, exercises
