# SMS Portal: every target creates the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
PYTEST_ARGS ?=

.PHONY: venv demo serve test test-sqlite test-pg lint bench chromium clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/portal demo

serve: venv
	$(BIN)/portal serve

# Debian's Chromium drives the browser tests (Playwright cannot download its own here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi; }

lint: venv
	$(BIN)/ruff check portal tenants tasks tests bench
	$(BIN)/ruff format --check portal tenants tasks tests bench
	$(BIN)/mypy portal tenants tasks

# The suite runs twice: the embedded default (SQLite + in-process broker) and PostgreSQL +
# Redis, the scale-out stack. Both runs and lint go side by side (their own databases,
# brokers, temp folders and free ports); each one's output is printed when it ends. The
# browser tests drive a `portal demo` server of their own (SQLite, in-process broker)
# whatever the test process runs on, so they run once, in the SQLite pass.
test: venv chromium
	$(MAKE) --no-print-directory -j3 --output-sync=target lint test-sqlite test-pg

test-sqlite: venv
	TEST_DATABASE_URL= TEST_BROKER_URL=memory:// $(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-pg: venv
	TEST_DATABASE_URL=$(PG_TEST_URL) TEST_BROKER_URL=$(REDIS_TEST_URL) \
	  $(BIN)/python -m pytest -q -m "not browser" $(PYTEST_ARGS)

bench: venv
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) data portal.db
