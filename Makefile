# The two commands a newcomer needs: `make run` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/build.mjs

.PHONY: run test setup test-setup build lint format browsers system-libs test-system bench clean

run: setup build system-libs
	$(BIN)/tandem serve

# The suite in parallel processes (pytest-xdist), a test file per process at a time so that a
# module's server is started once; PYTEST_WORKERS=0 runs it in this process alone.
PYTEST_WORKERS ?= 2
test: test-setup build browsers system-libs test-system
	$(BIN)/pytest $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

setup: $(VENV)/.installed

test-setup: $(VENV)/.installed-test node_modules/.installed

build: web/dist/.built

$(VENV)/.installed: pyproject.toml
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

web/dist/.built: node_modules/.installed $(WEB_SOURCES)
	npm run --silent build
	touch $@

# Debian's Chromium and Firefox for the browser tests: Playwright drives Chromium, puppeteer-core
# drives Firefox over WebDriver BiDi (neither can download its own browser here).
BROWSERS_MISSING = $(if $(shell command -v chromium),,chromium) $(if $(shell command -v firefox-esr),,firefox-esr)
browsers:
	@$(if $(strip $(BROWSERS_MISSING)),$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(BROWSERS_MISSING),true)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check crdt persistence server tests bench
	$(BIN)/ruff format --check crdt persistence server tests bench
	$(BIN)/mypy  # crdt/, persistence/ and server/, as [tool.mypy] in pyproject.toml says
# What WeasyPrint needs to lay out PDFs (Pango) and real fonts to set them in, from Debian.
SYSTEM_LIBS = libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core fonts-liberation
SYSTEM_LIBS_MISSING = $(shell for p in $(SYSTEM_LIBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done)
system-libs:
	@$(if $(strip $(SYSTEM_LIBS_MISSING)),$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(SYSTEM_LIBS_MISSING),true)

# What only the tests need from Debian: HAProxy, the load balancer in front of several server
# processes in the scale-out tests (Redis and PostgreSQL are the machine's own services).
TEST_SYSTEM = haproxy
TEST_SYSTEM_MISSING = $(shell for p in $(TEST_SYSTEM); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done)
test-system:
	@$(if $(strip $(TEST_SYSTEM_MISSING)),$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(TEST_SYSTEM_MISSING),true)

format: $(VENV)/.installed-test
	$(BIN)/ruff format crdt persistence server tests bench
	$(BIN)/ruff check --fix crdt persistence server tests bench

bench: test-setup build
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules web/dist
