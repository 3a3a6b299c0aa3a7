# Set-up and everyday commands. Every target installs what it needs into .venv first.
#   make quickstart   train the quickstart LoRA on the sample photos (CPU, a few minutes)
#   make test         build the Kubernetes components once, then run the whole test suite
#   make test-fast    only the unit tests (no torch model, no server)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup quickstart test test-fast test-trainer components crds

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install --constraint constraints.txt -e ".[trainer,dev]"
	touch $(STAMP)

quickstart: setup
	$(BIN)/lora-operator local run examples/quickstart.yaml

components:
	scripts/build-components

test: setup components
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m unit

test-trainer: setup
	$(BIN)/python -m pytest -m "unit or trainer"

crds: setup
	$(BIN)/lora-operator crds write
	scripts/sync-chart-crds
