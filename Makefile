# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
# `make run` installs what running needs; `make test` and `make lint` add the dev tools.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
PORT   ?= 8000
HOST   ?= 127.0.0.1
ARGS   ?=
PIP    := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: setup setup-dev run test test-fast lint schema bench clean

setup: $(RUN_STAMP)
setup-dev: $(DEV_STAMP)

# pip and npm print their own progress; a "==>" line announces each step.
$(RUN_STAMP): pyproject.toml playground/package.json
	@echo "==> [1/3] virtual environment $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(PIP) install --quiet --upgrade pip
	@echo "==> [2/3] the gateway and its runtime packages (pip)"
	$(PIP) install -e .
	@echo "==> [3/3] GraphiQL's files into build/playground (npm registry; never committed)"
	@if command -v npm >/dev/null; then \
	  mkdir -p build/playground && cp playground/package.json build/playground/ && \
	  npm install --prefix build/playground --no-audit --no-fund; \
	else echo "npm not found: the playground will ask you to install Node.js and run make setup"; fi
	@touch $@
	@echo "==> ready"

$(DEV_STAMP): $(RUN_STAMP)
	@echo "==> the development tools: pytest, hypothesis, ruff, mypy, playwright… (pip)"
	$(PIP) install -e '.[dev]'
	@touch $@

$(BENCH_STAMP): $(RUN_STAMP)
	@echo "==> the benchmark's profiler (pip)"
	$(PIP) install -e '.[bench]'
	@touch $@

# More demo options through ARGS, e.g. make run ARGS=--churn (python -m gateway demo --help).
run: $(RUN_STAMP)
	$(BIN)/python -m gateway demo --host $(HOST) --port $(PORT) $(ARGS)

# pytest exits 5 when it collects no test: that must never pass as green.
PYTEST = $(BIN)/python -m pytest $(1) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: no tests were collected" >&2; exit 1; fi; exit $$rc

# The whole suite, failing under the coverage floor ([tool.coverage.report] fail_under).
# A narrowed run (PYTEST_ARGS=-k...) misses the floor: add --no-cov to it.
test: $(DEV_STAMP)
	$(call PYTEST,--cov=gateway --cov-report=term:skip-covered)

# While developing: everything but the slow groups (soak, browser, federation), no coverage floor.
test-fast: $(DEV_STAMP)
	$(call PYTEST,-m "not slow")

lint: $(DEV_STAMP)
	$(BIN)/ruff check gateway tests bench
	$(BIN)/mypy

schema: $(RUN_STAMP)
	$(BIN)/python -m gateway schema > schema/schema.graphql
	$(BIN)/python -m gateway schema --federation > schema/schema.federation.graphql

# The gateway against its references under wrk, written to bench/README.md (~10 minutes).
bench: $(BENCH_STAMP)
	@command -v wrk >/dev/null || { echo "error: make bench needs wrk (apt-get install wrk)" >&2; exit 2; }
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
