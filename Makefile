# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
# `make run` installs what running needs; `make test` and `make lint` add the dev tools.
# `make setup` does the first part alone (and repairs a playground installed before npm was).
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
PLAYGROUND_STAMP := build/playground/.installed
NPM    ?= npm
# Packages go in with uv (from the package index into the venv; about five times pip's speed on
# a fresh clone), or with pip where uv cannot be had.
INSTALL = { $(PIP) install --quiet uv 2>/dev/null && $(BIN)/uv pip install --quiet \
	  --python $(BIN)/python $(1); } || $(PIP) install --quiet $(1)

.PHONY: setup setup-dev run test test-fast lint schema schema-check docs release package bench clean
MAKEFLAGS += --no-print-directory

# The Python packages and GraphiQL's files install side by side (make -j2), each once: a fresh
# clone answers in seconds. Run again, it installs what is missing (the playground after npm).
setup:
	@$(MAKE) --silent -j2 $(RUN_STAMP) $(PLAYGROUND_STAMP)
setup-dev:
	@$(MAKE) --silent -j2 $(DEV_STAMP) $(PLAYGROUND_STAMP)

$(RUN_STAMP): pyproject.toml
	@echo "==> the gateway and its runtime packages, into $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(call INSTALL,-e .)
	@touch $@
	@echo "==> the gateway is installed"

# GraphiQL's files from the npm registry (playground/package-lock.json), never committed.
$(PLAYGROUND_STAMP): playground/package.json playground/package-lock.json
	@if command -v $(NPM) >/dev/null; then \
	  echo "==> GraphiQL's files, into build/playground (npm)"; \
	  mkdir -p build/playground && cp playground/package.json playground/package-lock.json \
	    build/playground/ && \
	  $(NPM) ci --prefix build/playground --no-audit --no-fund --loglevel=error >/dev/null && \
	  touch $@ && echo "==> GraphiQL is installed"; \
	else echo "==> npm not found: GraphiQL waits for Node.js and npm, then make setup"; fi

$(DEV_STAMP): $(RUN_STAMP)
	@echo "==> the development tools: pytest, hypothesis, ruff, mypy, playwright…"
	@$(call INSTALL,-e '.[dev]')
	@touch $@

$(BENCH_STAMP): $(RUN_STAMP)
	@echo "==> the benchmark's profiler"
	@$(call INSTALL,-e '.[bench]')
	@touch $@

# More demo options through ARGS, e.g. make run ARGS=--churn (python -m gateway demo --help).
run: setup
	@$(BIN)/python -m gateway demo --host $(HOST) --port $(PORT) $(ARGS)

# pytest exits 5 when it collects no test: that must never pass as green.
PYTEST = $(BIN)/python -m pytest $(1) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: no tests were collected" >&2; exit 1; fi; exit $$rc

# The whole suite (about 10 minutes on two cores), failing under the coverage floor ([tool.coverage.report]
# fail_under), in two runs: all but the slow groups on two workers (pytest-xdist), then the slow
# groups alone (they measure memory and latency, which a neighbour's load would blur); their
# coverage adds up. A narrowed run (PYTEST_ARGS=-k...) misses the floor: add --no-cov to it.
test: setup-dev
	@$(MAKE) docs schema-check
	@$(call PYTEST,-m "not slow" -n 2 --cov=gateway --cov-report= --cov-fail-under=0)
	@$(call PYTEST,-m slow --cov=gateway --cov-append --cov-report=term:skip-covered)

# While developing: everything but the slow groups (soak, browser, federation) on two workers,
# no coverage floor (under 3 minutes).
test-fast: setup-dev
	@$(call PYTEST,-m "not slow" -n 2)

lint: $(DEV_STAMP)
	$(BIN)/ruff check gateway tests bench tools
	$(BIN)/mypy

schema: $(RUN_STAMP)
	$(BIN)/python -m gateway schema > schema/schema.graphql
	$(BIN)/python -m gateway schema --federation > schema/schema.federation.graphql
	$(BIN)/python -m gateway config-schema --output schema/gateway.schema.json

# The schema against the last release (schema/released/): a breaking change fails unless
# CHANGELOG.md's unreleased section records it (docs/releases.md).
schema-check: $(DEV_STAMP)
	@$(BIN)/python -m tools.schema_check

# The documentation site into build/site, strict: a broken link, anchor or page fails it.
docs: $(DEV_STAMP)
	@NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	@echo "==> the site is in build/site"

# make release VERSION=X.Y.Z: the version, the changelog and schema/released/ in one step.
release: $(DEV_STAMP)
	@test -n "$(VERSION)" || { echo "error: make release VERSION=X.Y.Z" >&2; exit 2; }
	@$(BIN)/python -m tools.release $(VERSION)

# A wheel and an sdist in dist/.
package: $(DEV_STAMP)
	$(BIN)/python -m build --outdir dist .

# The gateway against its references under wrk, written to bench/README.md (~11 minutes).
bench: $(BENCH_STAMP)
	@command -v wrk >/dev/null || { echo "error: make bench needs wrk (apt-get install wrk)" >&2; exit 2; }
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
