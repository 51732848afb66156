# Two commands do everything: `make run` and `make test` (see README.md); `make lab` opens the notebooks,
# `make docs` builds the course website into docs/_build/html, `make browser` installs the browser its test drives.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
PROFILE ?= full
# `make test` runs the suite in one worker process per core, at most 4 (pytest-xdist; tests/conftest.py hands out whole files).
TEST_WORKERS ?= $(shell $(PYTHON) -c "import os; print(min(4, os.cpu_count() or 1))" 2>/dev/null || echo 1)
# JupyterLab refuses to start as root (containers, Colab-like machines) without --allow-root.
LAB_ROOT := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)
SUDO := $(if $(filter 0,$(shell id -u 2>/dev/null)),,sudo)
# The notebooks the website renders: executed copies of `make quick` (results/executed/); see docs/conf.py.
EXECUTED := results/executed/assignment.ipynb
SPHINXOPTS ?=

.PHONY: run quick test lint lab docs docs-quick browser

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# A CPU wheel of torch first, only when torch is missing (an open range would pull a multi-GB CUDA build).
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0 || $(BIN)/python -m pip install -q "torch>=2.1,<3"
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt
	@# The kit itself, editable, so `import utils` / `import encoding_kit` work from any folder (deps are above).
	$(BIN)/python -m pip install -q --no-deps -e .
	@# The Jupyter kernel "encoding-kit" inside the venv (a "Python 3" kernel elsewhere cannot shadow it).
	$(BIN)/python -m encoding_kit kernel
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m encoding_kit run --profile $(PROFILE) $(ARGS)

quick: $(STAMP)
	$(BIN)/python -m encoding_kit run --quick $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

lab: $(STAMP)
	$(BIN)/jupyter lab $(LAB_ROOT) $(ARGS)

# The website: Sphinx + myst-nb, offline; warnings, broken cross-references and broken internal links fail it.
# The notebooks are rendered from the executed copies of `make quick` (run here first when they are missing).
$(EXECUTED):
	$(MAKE) quick

docs: $(STAMP) $(EXECUTED)
	$(BIN)/python -m sphinx -b html -W --keep-going -n -q $(SPHINXOPTS) docs docs/_build/html
	$(BIN)/python docs/check_links.py docs/_build/html

# Chromium and its driver from apt, for tests/test_browser.py (skipped, with one line, without them).
browser:
	$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium chromium-driver

lint: $(STAMP)
	$(BIN)/ruff check .
