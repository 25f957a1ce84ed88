# Two commands for a newcomer: `make demo` and `make test`. Both create .venv and
# install what is missing; nothing else needs to be on the machine but python3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test peers lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The tools that gate CI (ruff, mypy, ...) are pinned in tools/constraints-ci.txt.
# The C fast paths (wsreplay/record/_speedups.c, wsreplay/analysis/_kernels.c) are compiled by the editable install.
$(STAMP): pyproject.toml setup.py wsreplay/record/_speedups.c wsreplay/analysis/_kernels.c tools/constraints-ci.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]' -c tools/constraints-ci.txt
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/wsreplay demo

# Real peers the tests talk to (browser, reverse proxy, ...), installed only when missing.
peers:
	bash tools/peers.sh

test: $(STAMP) peers
	$(BIN)/ruff check wsreplay tests bench conftest.py
	$(BIN)/ruff format --check wsreplay tests bench conftest.py
	$(BIN)/mypy
	$(BIN)/python -m pytest
	$(BIN)/python -m pytest --doctest-modules wsreplay
	# the recorder suite again, on uvloop (the loop `wsreplay record` uses when the `fast` extra is installed)
	$(BIN)/python -m pytest -q --loop uvloop tests/record tests/faults

lint: $(STAMP)
	$(BIN)/ruff check wsreplay tests bench conftest.py
	$(BIN)/ruff format --check wsreplay tests bench conftest.py

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest
	$(BIN)/python -m pytest --doctest-modules wsreplay

bench: $(STAMP) peers
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
