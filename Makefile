# Timpora: one entry point. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= var/demo
DEMO_PERSONS ?= 20000
DEMO_SEED ?= 7
PORT ?= 3000
CHROMIUM := /usr/bin/chromium

.DEFAULT_GOAL := help
.PHONY: help install browser run test check lint format typecheck pytest bench study clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

install: browser $(STAMP) ## Create .venv and install Timpora with pinned dependencies (and chromium)

browser: ## Debian's chromium for the page's browser test (apt-get, as root or with sudo)
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	command -v apt-get >/dev/null 2>&1 || { echo "$(CHROMIUM) is missing and there is no apt-get: install Debian's chromium package"; exit 1; }; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; \
	elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	else echo "$(CHROMIUM) is missing: run 'apt-get install -y --no-install-recommends chromium' as root (no sudo here)"; exit 1; fi; \
	APT="$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get"; \
	echo "Installing Debian's chromium for the browser test"; \
	$$APT install -y --no-install-recommends chromium \
		|| { $$APT update && $$APT install -y --no-install-recommends chromium; } \
		|| { echo "could not install chromium with apt-get: install it as root, then run make install again"; exit 1; }; \
	test -x $(CHROMIUM) || { echo "chromium is installed but $(CHROMIUM) is missing"; exit 1; }

$(STAMP): pyproject.toml requirements.lock
	@test -n "$(PYTHON)" || { echo "Python 3.11 is required (python3.11 or python3 on PATH)"; exit 1; }
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

run: install ## Main job: simulate, validate, features, train, register, promote, rank; then serve on 127.0.0.1
	@if [ -d $(DEMO_DIR) ] && [ -n "$$(ls -A $(DEMO_DIR))" ]; then \
		echo "Reusing the data set in $(DEMO_DIR) (ingested outcomes and lists kept; delete it to simulate anew)"; \
	else $(BIN)/timpora simulate --out $(DEMO_DIR) --persons $(DEMO_PERSONS) --seed $(DEMO_SEED); fi
	$(BIN)/timpora validate $(DEMO_DIR)
	$(BIN)/timpora features $(DEMO_DIR) --out $(DEMO_DIR)-features.parquet
	@# Train unless the champion was trained on this very data; a refused registration (exit 3) or
	@# promotion (exit 4) keeps the champion in service and does not stop the demo.
	@$(BIN)/timpora train $(DEMO_DIR) --if-changed | tee $(DEMO_DIR)-train.log; code=$${PIPESTATUS[0]}; \
	if [ $$code -eq 0 ] && ! grep -q "^Not trained:" $(DEMO_DIR)-train.log; then \
		$(BIN)/timpora promote || [ $$? -eq 4 ]; \
	elif [ $$code -ne 0 ] && [ $$code -ne 3 ]; then exit $$code; fi
	$(BIN)/timpora rank $(DEMO_DIR) --top 10 --out $(DEMO_DIR)-ranked.csv
	@echo "MLflow UI: $(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/var/mlflow/mlflow.db --port 5000"
	@echo "Report and model card: in the training run's artifacts (MLflow UI), or: $(BIN)/timpora models"
	@echo "Demo API keys, one per role (stored hashed; made once, kept on later runs):"
	@$(BIN)/timpora keys demo --if-missing
	$(BIN)/timpora serve --data $(DEMO_DIR) --host 127.0.0.1 --port $(PORT)

test: install lint typecheck pytest ## Lint, type-check and run the whole test suite (what CI runs)

# `make check` leaves out the tests marked slow and these modules, whose tests take seconds each (a
# `timpora` subprocess per case, property tests over generated files, fitting models to learn a
# signal); `make test` runs them all.
CHECK_SKIP := test_validation test_loading test_ingest test_contract_v2 test_fit

check: install lint typecheck ## Lint, type-check and the fast tests (under a minute; make test runs all)
	$(BIN)/python -m pytest -q -m "not slow" $(CHECK_SKIP:%=--ignore=tests/%.py)

lint: install ## ruff lint and format check, and the import layers (contracts in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install ## mypy over the packages
	$(BIN)/mypy

pytest: install ## The test suite (slow end-to-end tests included); fails if no test ran
	$(BIN)/python -m pytest

bench: install ## Benchmarks (wall time, peak memory); results in bench/results/
	$(BIN)/python bench/run_all.py

study: install ## Closed-loop study (12 months, 3 seeds, 5 policies; tens of minutes); results in bench/results/loop/
	nice -n 10 $(BIN)/python bench/study_loop.py $(STUDY_ARGS)

clean: ## Remove generated data and the virtual environment
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
