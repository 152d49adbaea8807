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

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]' || echo "some peer books did not install; bench/engine.py reports them unavailable"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) -m bench.engine
	$(PY) -m bench.wire
	$(PY) -m bench.wire_compiled
	$(PY) -m bench.journal
	$(PY) -m bench.settle
	$(PY) -m pytest -q -m slow tests/exchange/engine/test_bench_engine.py

bench-quick: $(BENCH_STAMP)
	$(PY) -m bench.engine --quick
	$(PY) -m bench.wire --quick
	$(PY) -m bench.wire_compiled --quick
	$(PY) -m bench.journal --quick
	$(PY) -m bench.settle --quick

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
