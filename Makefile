# kouza — make verbs. Only Python 3.11+, git and make are needed; everything else is installed
# into ./.venv from PyPI with the versions pinned in pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run demo test fuzz lint format typecheck imports architecture settings bench audit lock clean

help: ## List the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

LOCK := requirements.lock

# Everything is installed from the lock file, every file checked against its sha256 (pip
# --require-hashes); kouza itself is then installed editable with the locked build backend and
# no network (--no-build-isolation --no-deps). `make lock` rewrites the lock after a pin changes.
$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit("kouza needs Python 3.11+") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install kouza with its pinned dependencies

run: $(STAMP) ## Serve the wallet on SQLite under ./var/: API (/docs), operator console (/console), customer pages (/app)
	$(BIN)/kouza serve

demo: $(STAMP) ## Wallet + bank with seeded customers, an attack in progress and cases; prints what to open and type (ARGS=--reset rebuilds)
	$(BIN)/kouza demo $(ARGS)

AXE := tests/browser/node_modules/axe-core/axe.min.js

# axe-core for the browser tests, from the npm registry at the locked version; only where npm and
# Chromium are (without Chromium the browser tests skip, saying why).
$(AXE): tests/browser/package.json tests/browser/package-lock.json
	@if command -v npm >/dev/null 2>&1 && [ -x "$${KOUZA_CHROMIUM:-/usr/bin/chromium}" ]; then \
	  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error && touch $@; fi

test: $(STAMP) $(AXE) ## Run the import contracts and the whole test suite (PostgreSQL too when KOUZA_TEST_POSTGRES_URL is set; the browser tests when Chromium is at /usr/bin/chromium)
	$(BIN)/lint-imports --no-cache --no-logo
	$(BIN)/python -m pytest -q -p no:cacheprovider

fuzz: $(STAMP) ## schemathesis --checks all on the wallet and bank APIs (real servers, temp SQLite)
	$(BIN)/python -m tests.fuzz

LINTED := src tests benchmarks tools

lint: $(STAMP) ## ruff check + format --check + mypy --strict + import contracts + architecture.md and settings.md current
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo
	$(BIN)/python tools/architecture.py --check
	$(BIN)/python tools/settings_reference.py --check

format: $(STAMP) ## Apply ruff's formatting and its safe fixes (what make lint checks)
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

typecheck: $(STAMP) ## mypy --strict
	$(BIN)/mypy

bench: $(STAMP) ## Ledger benchmark (SQLite, and PostgreSQL when KOUZA_BENCH_POSTGRES_URL is set)
	$(BIN)/python benchmarks/ledger.py

imports: $(STAMP) ## Import circles between files and packages, cross-package and in-function imports
	$(BIN)/python tools/architecture.py --figures

architecture: $(STAMP) ## Regenerate docs/architecture.md's import graph and docs/architecture/*.svg from the code
	$(BIN)/python tools/architecture.py

settings: $(STAMP) ## Regenerate docs/settings.md (every KOUZA_* / KOUZA_BANK_* variable) from the settings classes
	$(BIN)/python tools/settings_reference.py

lock: $(STAMP) ## Re-resolve requirements.lock (hashes, every platform) from pyproject.toml
	$(BIN)/uv pip compile pyproject.toml requirements-build.in --extra dev --universal \
		--python-version 3.11 --generate-hashes --quiet --output-file $(LOCK)

audit: $(STAMP) ## pip-audit the locked tree against PyPI's vulnerability data (fails on a known one)
	$(BIN)/pip-audit --strict --requirement $(LOCK) --require-hashes --disable-pip --progress-spinner off

clean: ## Remove .venv and ./var
	rm -rf $(VENV) var
