"""Sphinx configuration of the course website (``make docs`` -> docs/_build/html).

Sphinx + MyST (Markdown pages) + myst-nb (notebooks) + numpydoc (API reference from the docstrings), all offline.
The ten notebooks are rendered from the executed copies of ``make quick`` in ``results/executed/`` (never executed
by the build: ``nb_execution_mode = "off"``); ``KIT_DOCS_EXECUTED`` points elsewhere. Tables of measured figures are
generated here from the files the runs wrote (``docs/_ext/kit_generated.py``), never typed into a page.
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))

import kit_generated  # noqa: E402

EXECUTED = Path(os.environ.get("KIT_DOCS_EXECUTED", ROOT / "results" / "executed"))
kit_generated.write_all(DOCS, ROOT, EXECUTED)

project = "encoding-kit"
author = "encoding-kit authors"
copyright = "encoding-kit authors"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "numpydoc",
    "kit_refs",
]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
# Pages included into others (grading.md, reliability.md: see _ext/kit_generated.py) and files that are not pages.
exclude_patterns = ["_build", "_ext", "grading.md", "reliability.md", "**.ipynb_checkpoints",
                    "_generated/*_body.md"]

# Notebooks: rendered as executed by `make quick`, never re-executed here (offline and fast).
nb_execution_mode = "off"
nb_merge_streams = True
nb_output_stderr = "show"
# No math extension: MathJax would load from a CDN, and the site must work offline; formulas are code.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # notebooks start at any heading level

# Every cross-reference must resolve (nitpicky), the numpydoc types too where they name a class.
nitpicky = True
nitpick_ignore_regex = [
    # Libraries whose object inventories need the internet (intersphinx): their names stay plain text.
    (r"py:.*", r"(sklearn|himalaya|torch|transformers|numpy|pandas|scipy)\..*"),
    (r"py:.*", r"(array|array-like|ndarray|DataFrame|Series|Path|str|int|float|bool|dict|list|tuple|None|callable|"
               r"optional|default.*|shape.*|of|or|and|sequence|iterable|object)"),
]
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()
autodoc_typehints = "none"
add_module_names = False

html_theme = "pydata_sphinx_theme"
html_title = "encoding-kit"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_show_sourcelink = False
html_copy_source = False
# The theme's script logs a console error when the page names no colour mode; name one.
html_context = {"default_mode": "light"}
