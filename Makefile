# Two commands on a fresh Debian machine with Python 3.11:
#   make run    set everything up and run the product
#   make test   set everything up and run the tests (what CI runs)
# Both create .venv themselves when it is missing.

SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.viva-installed
BENCH_MODE ?= smoke

.PHONY: run grade-example test setup system-deps sandbox-base lint typecheck pytest bench bench-smoke clean

$(STAMP): pyproject.toml scripts/ensure-venv.sh
	@bash scripts/ensure-venv.sh $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

# `make run` starts the server on http://127.0.0.1:8000 (SQLite under ~/.local/share/viva, the offline model, a demo
# organisation whose manager and candidate credentials are printed on first start).
run: setup
	VIVA_SERVER_DEMO=1 $(VENV)/bin/viva serve

# Grade the bundled sample project from the command line and write its report.
grade-example: setup
	$(VENV)/bin/viva grade examples/rag-assistant --out viva-report
	@echo "Open viva-report/report.html in a browser to read the report."

test: setup lint typecheck pytest bench-smoke

# The sandbox tests need a Docker engine and the offline base image (debootstrap + docker import, once).
system-deps:
	@bash scripts/system-deps.sh

sandbox-base: setup system-deps
	$(VENV)/bin/viva sandbox build-base --if-missing

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

pytest: setup sandbox-base
	$(VENV)/bin/pytest

bench: setup
	$(PY) -m bench --mode full

bench-smoke: setup
	$(PY) -m bench --mode smoke

clean:
	rm -rf $(VENV) viva-report .pytest_cache .mypy_cache .ruff_cache
