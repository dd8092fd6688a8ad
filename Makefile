# The two commands of the quick start are `make up` and `make test`; each
# creates .venv and installs what it needs when missing.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: up test lint bench docs install clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(VENV)/bin/hyperhive up

test: lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check hyperhive tests bench
	$(VENV)/bin/ruff format --check hyperhive tests bench
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m bench

docs: $(STAMP)
	$(PY) -m hyperhive.docgen

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
