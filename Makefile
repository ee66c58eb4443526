# Quickstart: `make demo` and `make test` each work from a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

CHROMIUM := /usr/bin/chromium

.PHONY: demo test lint clean chromium serve

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/imiqsim demo --out out/demo

test: $(STAMP) chromium
	PYTHONUTF8=1 $(BIN)/python -m pytest -q

# the dashboard's browser tests drive Debian's Chromium (Playwright's own browser download is not
# used); installed as root (as CI runs) when it is missing
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "$(CHROMIUM) is missing: run 'sudo apt-get install chromium' (browser tests will skip)"; \
	  fi; \
	fi

serve: $(STAMP)
	$(BIN)/imiqsim serve

# style and types (CI runs this before the tests)
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/ruff format --check src tests benchmarks docs
	$(BIN)/mypy

clean:
	rm -rf $(VENV) out .pytest_cache
