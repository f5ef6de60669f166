PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
AOT := $(VENV)/.kernel-aot

.PHONY: demo test bench lint install clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# the kernel's run_series compiled ahead of time, again whenever the kernel changes; without a C compiler
# backtests keep numba's JIT (and tests/engine/test_kernel_aot.py says so)
$(AOT): $(STAMP) engine/core/kernel.py
	$(BIN)/python -m engine.kernel_aot || true
	touch $(AOT)

install: $(STAMP) $(AOT)

demo: $(STAMP) $(AOT)
	printf '/start\n/status\n/balance\n/positions\n/help\n' | $(BIN)/trading-agent chat

# the suite in TEST_JOBS processes (pytest-xdist; each starts its own PostgreSQL cluster): much of it waits on
# subprocesses, sockets and timers, so two processes keep both cores busy. TEST_JOBS=0 runs it in this process.
TEST_JOBS ?= 2

test: $(STAMP) $(AOT)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_JOBS) $(PYTEST_ARGS)

bench: $(STAMP) $(AOT)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/backtest.py
	@for b in bench/models.py bench/commands.py bench/worker.py bench/strategy.py bench/api.py bench/optimize.py bench/live.py; do \
		if [ -f $$b ]; then $(BIN)/python $$b || exit 1; fi; done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info
