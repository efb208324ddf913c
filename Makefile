# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8000
HOST   ?= 127.0.0.1

.PHONY: setup run test test-fast lint schema bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml playground/package.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# GraphiQL's files, served by the gateway itself (npm registry; never committed).
	if command -v npm >/dev/null; then \
	  mkdir -p build/playground && cp playground/package.json build/playground/ && \
	  npm install --prefix build/playground --no-audit --no-fund --silent; \
	else echo "npm not found: the playground will ask you to install Node.js and run make setup"; fi
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m gateway demo --host $(HOST) --port $(PORT)

# pytest exits 5 when it collects no test: that must never pass as green.
PYTEST = $(BIN)/python -m pytest $(1) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: no tests were collected" >&2; exit 1; fi; exit $$rc

# The whole suite, failing under the coverage floor ([tool.coverage.report] fail_under).
# A narrowed run (PYTEST_ARGS=-k...) misses the floor: add --no-cov to it.
test: $(STAMP)
	$(call PYTEST,--cov=gateway --cov-report=term:skip-covered)

# While developing: everything but the slow groups (soak, browser, federation), no coverage floor.
test-fast: $(STAMP)
	$(call PYTEST,-m "not slow")

lint: $(STAMP)
	$(BIN)/ruff check gateway tests
	$(BIN)/mypy

schema: $(STAMP)
	$(BIN)/python -m gateway schema > schema/schema.graphql
	$(BIN)/python -m gateway schema --federation > schema/schema.federation.graphql

# Upstream calls, CPU ms per query, latency and requests/s, warm and uncached (bench/run.py).
bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
