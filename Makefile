PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint install clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m engine.kernel_aot || true  # the kernel compiled ahead of time; else numba's JIT
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	printf '/start\n/status\n/balance\n/positions\n/help\n' | $(BIN)/trading-agent chat

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/backtest.py
	@for b in bench/models.py bench/commands.py bench/worker.py; do \
		if [ -f $$b ]; then $(BIN)/python $$b || exit 1; fi; done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info
