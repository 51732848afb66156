"""The import rules of docs/architecture.md, checked on the source (an ``ast`` walk, no import runs).

1. No upward import between stages: a module imports only from its own stage or from stages below it
   (:data:`STAGES`, the one place that states the order).
2. No import circle between modules (the whole package, imports inside functions included).
3. No private name (``_x``) imported from another module.
4. Only ``core/runtime.py`` touches environment variables (``os.environ``, ``os.getenv``); every other module asks it.
5. No public function of ``features/`` takes more than :data:`MAX_PARAMETERS` parameters: how an extraction runs
   travels as one ``run=ExtractionRun(...)``, what it computes as named parameters.

``python tests/test_architecture.py`` prints the counts (modules, upward arrows, circles, private imports).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "encoding_kit"

STAGES = {
    "core": 0,
    "data": 1,
    "features": 2,
    "encoding": 3,
    "decoding": 4, "analysis": 4,
    "brain_tuning": 5, "demo": 5, "run": 5, "grading": 5, "teach": 5,
    "__init__": 6, "__main__": 6,  # the package's own entry points sit on top
}
"""Stage of each subpackage, lowest first (docs/architecture.md): imports run from a higher stage to a lower or the
same one, never up. Stages of the same rank (decoding and analysis; brain_tuning, demo, run and grading) are siblings."""

KNOWN_VIOLATIONS = set()
"""Upward imports tolerated for now (each one commented with why and until when)."""

KNOWN_CIRCLES = []
"""Import circles tolerated for now."""


ENVIRONMENT_MODULE = "encoding_kit.core.runtime"
KNOWN_ENVIRONMENT_READERS = set()
"""Modules that still read the environment themselves (each commented with why and until when)."""


MAX_PARAMETERS = 12
"""Most parameters a public function of ``features/`` may take (about ten: the Whisper decoder, which reads both the
audio (``wav, sr, n_trs``) and the words, is the one at twelve; every other extractor has ten or eleven)."""
LIMITED_STAGES = ("features",)
"""The subpackages whose public functions :data:`MAX_PARAMETERS` limits."""


def module_name(path, package=PACKAGE):
    """Dotted name of a source file of the package."""
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage(module):
    """Stage rank of a dotted module name of the package."""
    parts = module.split(".")
    return STAGES[parts[1] if len(parts) > 1 else "__init__"]


def resolve(module, node, is_package):
    """The absolute module a relative ``from`` import names."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(package=PACKAGE):
    """Every import between modules of the package: {module: {imported module: [names imported]}}.

    ``from a.b import c`` where ``a.b.c`` is a module counts as an import of ``a.b.c``.
    """
    files = {module_name(p, package): p for p in sorted(package.rglob("*.py"))}
    graph = {}
    for module, path in files.items():
        edges = graph.setdefault(module, {})
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("encoding_kit"):
                        edges.setdefault(alias.name, [])
            elif isinstance(node, ast.ImportFrom):
                target = resolve(module, node, is_package)
                if not target.startswith("encoding_kit"):
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in files:
                        edges.setdefault(sub, [])
                    else:
                        edges.setdefault(target, []).append(alias.name)
    return {m: {t: names for t, names in e.items() if t in files and t != m} for m, e in graph.items()}


def environment_readers(package=PACKAGE):
    """Modules that use ``os.environ`` or ``os.getenv`` (text inside strings does not count)."""
    found = set()
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "unsetenv")
                    and isinstance(node.value, ast.Name) and node.value.id == "os"):
                found.add(module_name(path, package))
            elif isinstance(node, ast.ImportFrom) and node.module == "os" and any(
                    a.name in ("environ", "getenv") for a in node.names):
                found.add(module_name(path, package))
    return found


def n_parameters(function):
    """Parameters of a ``def`` node (a method's ``self``/``cls`` not counted; ``*args``, ``**kwargs`` one each)."""
    a = function.args
    n = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + (a.vararg is not None) + (a.kwarg is not None)
    first = (a.posonlyargs + a.args)[:1]
    return n - (1 if first and first[0].arg in ("self", "cls") else 0)


def long_signatures(package=PACKAGE, stages=LIMITED_STAGES, limit=MAX_PARAMETERS):
    """(module, function, n_parameters) of the public functions and methods of ``stages`` with more than ``limit``.

    Public: a top-level ``def`` or a method of a top-level class, neither named with a leading underscore, in a
    module whose own name has none.
    """
    found = []
    for stage_name in stages:
        for path in sorted((package / stage_name).rglob("*.py")):
            if any(part.startswith("_") and part != "__init__.py" for part in path.relative_to(package).parts):
                continue
            tree = ast.parse(path.read_text(), str(path))
            for node in tree.body:
                members = [(node.name, node)] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else []
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    members = [(f"{node.name}.{m.name}", m) for m in node.body
                               if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
                for name, function in members:
                    n = n_parameters(function)
                    if not name.split(".")[-1].startswith("_") and n > limit:
                        found.append((module_name(path, package), name, n))
    return found


def upward_imports(graph):
    """(module, imported module) pairs that import from a higher stage."""
    return sorted((m, t) for m, edges in graph.items() for t in edges if stage(t) > stage(m))


def private_imports(graph):
    """(module, imported module, name) of private names imported from another module."""
    return sorted((m, t, n) for m, edges in graph.items() for t, names in edges.items() for n in names
                  if n.startswith("_") and not n.startswith("__"))


def circles(graph):
    """Strongly connected groups of more than one module (Tarjan), each a sorted list."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    return sorted(found)


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_every_subpackage_has_a_stage(graph):
    unknown = {m.split(".")[1] for m in graph if "." in m} - set(STAGES)
    assert not unknown, f"subpackages with no stage in STAGES: {sorted(unknown)}"


def test_no_upward_import(graph):
    found = set(upward_imports(graph))
    new = sorted(found - KNOWN_VIOLATIONS)
    assert not new, "imports from a higher stage (docs/architecture.md):\n" + "\n".join(f"{m} -> {t}" for m, t in new)
    stale = sorted(KNOWN_VIOLATIONS - found)
    assert not stale, f"KNOWN_VIOLATIONS lists imports that are gone; remove them: {stale}"


def test_no_import_circle(graph):
    found = [c for c in circles(graph) if c not in KNOWN_CIRCLES]
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_private_name_imported_across_modules(graph):
    found = private_imports(graph)
    assert not found, "private names imported from another module:\n" + "\n".join(
        f"{m} imports {n} from {t}" for m, t, n in found)


def test_only_core_runtime_reads_the_environment():
    found = environment_readers() - {ENVIRONMENT_MODULE}
    new = sorted(found - KNOWN_ENVIRONMENT_READERS)
    assert not new, f"modules that read environment variables themselves (use core.runtime.environment): {new}"
    stale = sorted(KNOWN_ENVIRONMENT_READERS - found)
    assert not stale, f"KNOWN_ENVIRONMENT_READERS lists modules that no longer read it; remove them: {stale}"


def test_public_feature_functions_take_few_parameters():
    found = long_signatures()
    assert not found, (f"public functions with more than {MAX_PARAMETERS} parameters (group how they run into "
                       "run=ExtractionRun(...), encoding_kit/features/extraction_run.py):\n"
                       + "\n".join(f"{m}.{f}: {n}" for m, f, n in found))


@pytest.mark.parametrize("stage", ["core", "data", "encoding", "decoding", "analysis", "demo", "run", "grading"])
def test_every_stage_lists_its_public_api(stage):
    """Each subpackage's ``__all__`` names its public API, and every name is found where the package says."""
    import importlib

    package = importlib.import_module(f"encoding_kit.{stage}")
    assert package.__all__, f"encoding_kit.{stage}.__all__ is empty"
    for name in package.__all__:
        assert not name.startswith("_") and getattr(package, name) is not None, name


def test_the_checks_see_a_planted_violation(tmp_path):
    """An upward import, a circle and a private import planted in a copy of two modules are each found."""
    pkg = tmp_path / "encoding_kit"
    for sub in ("core", "encoding"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "a.py").write_text("from ..encoding.b import thing\n")
    (pkg / "encoding" / "b.py").write_text("import os\n\ndef f():\n    from ..core.a import _hidden\n    return os.environ['X']\n")
    planted = import_graph(pkg)
    assert environment_readers(pkg) == {"encoding_kit.encoding.b"}
    assert upward_imports(planted) == [("encoding_kit.core.a", "encoding_kit.encoding.b")]
    assert circles(planted) == [["encoding_kit.core.a", "encoding_kit.encoding.b"]]
    assert private_imports(planted) == [("encoding_kit.encoding.b", "encoding_kit.core.a", "_hidden")]


def test_the_parameter_limit_sees_a_planted_long_signature(tmp_path):
    """A public function or method of features/ one parameter over the limit is found; private ones are not."""
    features = tmp_path / "encoding_kit" / "features"
    features.mkdir(parents=True)
    many = ", ".join(f"p{i}" for i in range(MAX_PARAMETERS))
    (features / "wide.py").write_text(
        f"def fits({many}):\n    pass\n\n\ndef extract(a, {many}, *, run=None):\n    pass\n\n\n"
        f"def _private(a, {many}):\n    pass\n\n\nclass Extractor:\n    def run(self, {many}, **kwargs):\n"
        f"        pass\n\n    def fine(self, {many}):\n        pass\n")
    (features / "_hidden.py").write_text(f"def extract(a, {many}):\n    pass\n")
    assert long_signatures(tmp_path / "encoding_kit") == [
        ("encoding_kit.features.wide", "extract", MAX_PARAMETERS + 2),
        ("encoding_kit.features.wide", "Extractor.run", MAX_PARAMETERS + 1)]


def report(graph):
    """The counts of the closing note."""
    return {"modules": len(graph), "upward": upward_imports(graph), "circles": circles(graph),
            "private": private_imports(graph), "environment": sorted(environment_readers() - {ENVIRONMENT_MODULE}),
            "long signatures": long_signatures()}


if __name__ == "__main__":
    counts = report(import_graph())
    print(f"modules {counts['modules']}, upward arrows {len(counts['upward'])}, circles {len(counts['circles'])}, "
          f"private imports {len(counts['private'])}, other modules reading the environment "
          f"{len(counts['environment'])}, public functions of {', '.join(LIMITED_STAGES)} with more than "
          f"{MAX_PARAMETERS} parameters {len(counts['long signatures'])}")
    for key in ("upward", "circles", "private", "environment", "long signatures"):
        for item in counts[key]:
            print(f"  {key}: {item}")
