# The two commands a newcomer needs: `make run` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: setup run build check test lint types pytest bench clean graphviz

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) graphviz

# The dashboard draws dependency graphs with Graphviz's dot: apt-get installs it when missing
# and root can; otherwise say so (the graphs fail without it, nothing else does).
graphviz:
	@command -v dot >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -q && apt-get install -y -q graphviz; } \
		|| echo "make: Graphviz's dot is missing: apt-get install graphviz" >&2

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

# The coverage gate: CI runs this very target (.ci/run, .github/workflows/ci.yml).
pytest: setup
	$(BIN)/pytest --cov --cov-report=term --cov-fail-under=90

bench: setup
	$(BIN)/python bench/build_bench.py
	$(BIN)/python bench/audit_bench.py

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .coverage
