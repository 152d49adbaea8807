# flopex — every target bootstraps .venv from a fresh clone; nothing is installed by hand.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all lint bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/flopex demo

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-all: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) -m bench.engine
	$(PY) -m bench.wire
	$(PY) -m bench.settle

bench-quick: $(STAMP)
	$(PY) -m bench.engine --quick
	$(PY) -m bench.wire --quick
	$(PY) -m bench.settle --quick

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
