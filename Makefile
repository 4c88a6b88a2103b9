# Two commands matter: `make demo` and `make test`. Both create/refresh .venv on first use and
# are quick when nothing changed (the install step re-runs only when pyproject.toml changes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed
# Child processes (rlm-instrument python ...) must find the venv's python first.
export PATH := $(BIN):$(PATH)

.PHONY: demo test lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

## demo: the main job on the embedded default (offline model server, telemetry in the terminal),
## also written to .demo/demo.jsonl (content captured: it is the offline model's text) and shown
## as one self-contained HTML page by rlm-view
DEMO_JSONL := $(CURDIR)/.demo/demo.jsonl
demo: $(STAMP)
	@mkdir -p $(dir $(DEMO_JSONL)) && rm -f $(DEMO_JSONL)
	$(BIN)/rlm-instrument --capture-content true --jsonl $(DEMO_JSONL) python $(CURDIR)/examples/demo_app.py
	@echo "Trajectory viewer (open in a browser): $$($(BIN)/rlm-view $(DEMO_JSONL))"

## test: lint, type-check and the whole test suite
test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -rf

## bench: hot-path benchmark (see benchmarks/README.md); `make bench PEERS=1` adds peer venvs
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(if $(PEERS),--peers,)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .bench-venvs
