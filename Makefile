# Two commands on a fresh machine:  `make dev` runs the system, `make test` runs the tests.
# Both create the virtualenv .venv and install what they need (again only when pyproject.toml changes).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install dev test lint bench bench-quick chaos clean

# uv (from PyPI) installs in seconds what pip takes a minute over; pip does it when uv cannot be had.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv || true
	if [ -x $(BIN)/uv ]; then $(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[dev]'; \
	else $(BIN)/python -m pip install --quiet --no-compile -e '.[dev]'; fi
	touch $(STAMP)

install: $(STAMP)

## Temporal dev server + SQLite + worker (+ admin API), Web UI on http://localhost:8233
dev: $(STAMP)
	$(BIN)/notifications dev

## The whole suite against a real Temporal dev server, SQLite and PostgreSQL: three test processes
## (pytest-xdist), then the timing-sensitive fault tests alone (exit 5 = none selected by PYTEST_ARGS)
test: $(STAMP)
	@.ci/chromium
	$(BIN)/python -m pytest -n 3 -m "not serial" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(BIN)/python -m pytest -m serial $(PYTEST_ARGS) || [ $$? -eq 5 ]

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy notifications workflows activities api processes bench chaos fakes

## Benchmark against bare Temporal workflows (own dev servers, temp dirs); writes bench/results.json
bench: $(STAMP)
	$(BIN)/notifications bench $(BENCH_ARGS)

bench-quick: $(STAMP)
	$(BIN)/notifications bench --quick --output bench/results-quick.json $(BENCH_ARGS)

## Fault suite: killed workers, Temporal and database outages, provider storms, API load; writes bench/chaos.json
chaos: $(STAMP)
	$(BIN)/notifications chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
