# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8000
HOST   ?= 127.0.0.1

.PHONY: setup run test lint schema bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml playground/package.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@# GraphiQL's files, served by the gateway itself (npm registry; never committed).
	if command -v npm >/dev/null; then \
	  mkdir -p build/playground && cp playground/package.json build/playground/ && \
	  npm install --prefix build/playground --no-audit --no-fund --silent; \
	else echo "npm not found: the playground will ask you to install Node.js and run make setup"; fi
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m gateway demo --host $(HOST) --port $(PORT)

# pytest exits 5 when it collects no test: that must never pass as green.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: no tests were collected" >&2; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check gateway tests bench
	$(BIN)/mypy

schema: $(STAMP)
	$(BIN)/python -m gateway schema > schema/schema.graphql
	$(BIN)/python -m gateway schema --federation > schema/schema.federation.graphql

# The gateway against its references under wrk, written to bench/README.md (~7 minutes).
bench: $(STAMP)
	@command -v wrk >/dev/null || { echo "error: make bench needs wrk (apt-get install wrk)" >&2; exit 2; }
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
