# One target per task. `make demo` runs shelfwise; `make test` passes its tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format typecheck unit integration e2e bench serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# `make demo PORT=8080 HOST=0.0.0.0`: where to serve (default 127.0.0.1:8000). A busy
# port stops the demo before it sends anything: error [port_in_use], exit code 3.
LISTEN = $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

demo: $(STAMP)  ## generate a demo store on SQLite and serve it on http://127.0.0.1:8000
	$(BIN)/shelfwise demo $(LISTEN)

serve: $(STAMP)
	$(BIN)/shelfwise serve $(LISTEN)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck  ## lint, type-check and the whole test suite (two processes, a file each at a time)
	$(BIN)/pytest -n 2 --dist loadfile -rf --durations=30

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
