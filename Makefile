# One entry for a fresh machine: `make demo` and `make test` each set up .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# DDS discovery never leaves loopback; each run gets its own domain so parallel runs don't mix.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_LOCALHOST_ONLY := 1
export ROS_DOMAIN_ID ?= $(shell $(PYTHON) -c "import os; print(os.getpid() % 100 + 1)")

.PHONY: venv demo test test-all lint format clean

$(STAMP): setup.py setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/lane-seg demo --out runs/demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

test-all: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs build *.egg-info
