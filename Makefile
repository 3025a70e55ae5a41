# The two commands a newcomer needs: `make run` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Installs are reproducible: every package, transitive ones and setuptools included, comes
# from a lock pinned with hashes (README: "Installing: the locks"). The dev lock is the
# runtime lock plus the test tools, at the same versions.
LOCK := requirements/dev.lock
RUNTIME_LOCK := requirements/runtime.lock
STAMP := $(VENV)/.installed-dev
RUNTIME_STAMP := $(VENV)/.installed-runtime
PIP := $(BIN)/python -m pip --disable-pip-version-check
# The browser tests of OFREP load OpenFeature's web packages, unmodified, from npm: tests/js's
# lock pins each with its sha512 integrity, and `npm ci` installs exactly that.
JS := tests/js
JS_STAMP := $(JS)/node_modules/.installed
UV_VERSION := 0.13.9

.PHONY: setup setup-runtime run build check test lint types pytest bench clean graphviz lock

# The project itself without dependencies, and without build isolation (which would fetch
# an unpinned setuptools): the lock has installed everything it needs.
define install-from
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --require-hashes -r $(1)
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	touch $@
endef

$(STAMP): pyproject.toml $(LOCK)
	$(call install-from,$(LOCK))

$(RUNTIME_STAMP): pyproject.toml $(RUNTIME_LOCK)
	$(call install-from,$(RUNTIME_LOCK))

setup: $(STAMP) graphviz $(JS_STAMP)

# What `make run` needs and no more: the runtime lock.
setup-runtime: $(RUNTIME_STAMP) graphviz

# Refresh the locks from pyproject.toml's ranges with uv (in a throwaway environment), for
# Python 3.11 and later on every platform. Pins still allowed are kept; UPGRADE=1 moves
# every package to its newest allowed version. Commit the locks with what they change.
lock:
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp"; "$$tmp/bin/python" -m pip install --quiet uv==$(UV_VERSION); \
	build=$$($(PYTHON) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")'); \
	compile() { echo "$$build" | "$$tmp/bin/uv" pip compile --quiet --universal \
		--python-version 3.11 --generate-hashes --no-strip-extras --custom-compile-command 'make lock' \
		$(if $(UPGRADE),--upgrade) pyproject.toml - "$$@"; }; \
	compile --extra dev -o $(LOCK); \
	compile --constraint $(LOCK) -o $(RUNTIME_LOCK)

# The dashboard draws dependency graphs with Graphviz's dot: apt-get installs it when missing
# and root can; otherwise say so (the graphs fail without it, nothing else does).
graphviz:
	@command -v dot >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -q && apt-get install -y -q graphviz; } \
		|| echo "make: Graphviz's dot is missing: apt-get install graphviz" >&2

# Again only when the lock changes (`npm ci` starts from an empty node_modules, the stamp
# included), and with no package's install scripts, which these packages do not need. Without
# npm, apt-get installs Debian's when root can; otherwise say so and go on (the browser tests
# of OFREP then skip, saying why).
$(JS_STAMP): $(JS)/package-lock.json
	@if command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -q && apt-get install -y -q nodejs npm; }; then \
		(cd $(JS) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null) && touch $@; \
	else echo "make: npm is missing: apt-get install nodejs npm (the OFREP browser tests skip)" >&2; fi

# Compile flags/, print what is on where, and serve it on 127.0.0.1:8000.
run: setup-runtime
	$(BIN)/flagc build flags -o build --summary
	$(BIN)/flagserve build --bind 127.0.0.1:8000

build: setup-runtime
	$(BIN)/flagc build flags -o build

check: setup-runtime
	$(BIN)/flagc check flags

test: lint types pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: setup
	$(BIN)/mypy core compiler server

# The coverage gate: CI runs this very target (.ci/run, .github/workflows/ci.yml).
pytest: setup
	$(BIN)/pytest --cov --cov-report=term --cov-fail-under=90

bench: setup
	$(BIN)/python bench/build_bench.py
	$(BIN)/python bench/audit_bench.py

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .coverage $(JS)/node_modules
