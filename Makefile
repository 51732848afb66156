# Two commands do everything: `make run` and `make test` (see README.md); `make lab` opens the notebooks.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
PROFILE ?= full

.PHONY: run quick test lint lab

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
	$(BIN)/python -m pytest

lab: $(STAMP)
	$(BIN)/jupyter lab $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
