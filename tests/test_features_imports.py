"""The import rules of docs/architecture.md in the data and features stages, read from the source with ast.

No import circle inside features/ or data/, no import of a later stage (encoding, analysis, demo, run, ...), and
no import of the kit placed inside a function (such an import only ever hid a circle). The families are found
from the config by features/families/, so no extractor names a family.
"""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "encoding_kit"
ORDER = {"core": 0, "data": 1, "features": 2, "encoding": 3, "decoding": 4, "analysis": 4, "brain_tuning": 5,
         "demo": 6, "run": 7, "grading": 7}
"""Stages in the order imports may run (a stage imports only stages before it; data/ and features/ are checked)."""


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def kit_imports(path, modules):
    """[(imported module, inside a function?)] of one file, relative imports resolved."""
    tree = ast.parse(path.read_text())
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    in_function = {id(node) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for node in ast.walk(f)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            source = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for target in targets:
            if target.startswith("encoding_kit"):
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                found.append((target, id(node) in in_function))
    return found


def graph(stages=("data", "features")):
    """{module: [(imported module, inside a function?)]} for the modules of ``stages``."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {m: [(t, inner) for t, inner in kit_imports(p, paths) if t != m] for m, p in paths.items()
            if stage(m) in stages}


def stage(module):
    return module.split(".")[1] if module.count(".") else None


def circles(edges):
    """Import circles (lists of modules) among the modules of ``edges`` (depth-first search)."""
    found, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for target, _ in edges.get(module, ()):
            if target not in edges:
                continue
            if state.get(target) == "open":
                found.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    return found


def test_no_import_circle_in_data_and_features():
    assert circles(graph()) == []


def test_data_and_features_import_no_later_stage():
    upward = [(m, t) for m, targets in graph().items() for t, _ in targets
              if stage(t) in ORDER and ORDER[stage(t)] > ORDER[stage(m)]]
    assert upward == []


def test_no_import_of_the_kit_inside_a_function_in_data_and_features():
    inner = [(m, t) for m, targets in graph().items() for t, inside in targets if inside]
    assert inner == []


def test_the_extractors_name_no_family():
    """audio.py, audio_frames.py and text.py are loops over the families' protocol (features/families/)."""
    for name in ("audio.py", "audio_frames.py", "text.py", "text_windows.py"):
        source = (PACKAGE / "features" / name).read_text()
        assert not re.search(r"family\s*(==|!=|in)\s|\"(whisper|clap|wavlm|wav2vec2|hubert)\"", source), name


@pytest.mark.parametrize("planted, expected", [("circle", 1), ("upward", 1)])
def test_the_checks_see_a_planted_circle_and_a_planted_upward_import(planted, expected):
    edges = graph()
    if planted == "circle":
        edges["encoding_kit.features.loaded"] = [*edges["encoding_kit.features.loaded"],
                                                 ("encoding_kit.features.models", False)]
        assert len(circles(edges)) >= expected
    else:
        edges["encoding_kit.features.audio"] = [("encoding_kit.encoding.evaluate", False)]
        assert sum(ORDER[stage(t)] > ORDER[stage(m)] for m, ts in edges.items() for t, _ in ts) == expected
