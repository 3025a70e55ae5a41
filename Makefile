# The two commands a newcomer needs: `make run` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: setup run build check test lint types pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# Compile flags/, print what is on where, and serve it on 127.0.0.1:8000.
run: setup
	$(BIN)/flagc build flags -o build --summary
	$(BIN)/flagserve build --bind 127.0.0.1:8000

build: setup
	$(BIN)/flagc build flags -o build

check: setup
	$(BIN)/flagc check flags

test: lint types pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: setup
	$(BIN)/mypy compiler server

pytest: setup
	$(BIN)/pytest --cov --cov-report=term

bench: setup
	$(BIN)/python bench/build_bench.py
	$(BIN)/python bench/audit_bench.py

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .coverage
