# One target per task. `make demo` runs shelfwise; `make test` passes its tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test suite test-stress explore lint format typecheck unit integration e2e bench serve clean

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

# Test processes run their native libraries (OpenBLAS, OpenMP) on one thread each, as
# `shelfwise train` fits by default; spare threads would only spin.
ONE_THREAD = OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

# Three test processes on two cores: a test process spends part of its time waiting
# (servers starting, a bundle watch's interval, subprocesses), and a third process
# fills it. The type check runs beside the suite for the same reason.
test: lint  ## lint, then the type check beside the whole test suite (three processes, a file each at a time)
	$(MAKE) --no-print-directory -j 2 typecheck suite

suite: $(STAMP)
	$(ONE_THREAD) $(BIN)/pytest -n 3 --dist loadfile -rf --durations=30

# The e2e, integration and fuzz tests with two CPU burners beside them (tests/burners.py):
# a test that only passes on an idle machine fails here. `make test-stress TESTS=tests/e2e/x.py`
# runs only those files. pytest ends the burners when it exits, passed or failed.
TESTS ?= tests/e2e tests/integration tests/fuzz
test-stress: $(STAMP)  ## the time-dependent tests under load: two CPU burners beside them
	$(ONE_THREAD) $(BIN)/pytest -n 2 --dist loadfile --cpu-burners 2 -rf --durations=30 $(TESTS)

# The property and fuzz tests with fresh random examples, RUNS times (default 3):
# exploration, not the gate (`make test` derives its examples from fixed seeds, so its
# verdict depends on the code only). A red fuzz run prints its seed (replay it with
# `FUZZ_SEED=<seed> pytest tests/fuzz`), hypothesis prints the failing example; fix the
# code and keep the case as an ordinary test.
RUNS ?= 3
explore: $(STAMP)  ## look for new failures: property and fuzz tests with fresh random examples
	@for i in $$(seq 1 $(RUNS)); do \
	  FUZZ_SEED=random $(BIN)/pytest -n 2 --dist loadfile -rf -q -p no:cacheprovider \
	    tests/unit tests/integration tests/fuzz || exit 1; \
	done

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
