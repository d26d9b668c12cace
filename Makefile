# bones2peaches — the two commands are `make demo` and `make test`; each creates what it needs.
# Only Python 3.11+ and make are assumed on the machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# The demo's own folders; override on the command line (make demo DEMO_DIR=/tmp/b2p).
DEMO_DIR ?= $(CURDIR)
export B2P_LAKE        ?= $(DEMO_DIR)/lake
export B2P_DUCKDB_PATH ?= $(DEMO_DIR)/warehouse.duckdb
SAMPLE_DIR := $(DEMO_DIR)/sample
DBT := $(BIN)/dbt --no-use-colors

.PHONY: help install demo test lint format contract athena-check bench image clean

help:
	@echo "make demo          sample logs -> ingest -> dbt build -> capacity summary (local, DuckDB)"
	@echo "make test          lint + every test (unit, end-to-end, dbt build, Athena conformance, infra)"
	@echo "make athena-check  compile the dbt project for Athena offline and check it (part of make test)"
	@echo "make bench         ingest and dbt benchmarks (prints figures; not part of make test)"
	@echo "make contract      rewrite the files derived from the log contract (ingest/logs/contract.py)"
	@echo "make image         build the ingest/dbt container image (needs a docker engine)"
	@echo "make clean         remove the demo's lake, warehouse, sample logs and dbt artefacts"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP)

# dbt reads profiles.yml from --profiles-dir; the checked-in example has no secrets (env vars only).
profiles.yml:
	cp profiles.yml.example $@

demo: $(STAMP) profiles.yml
	rm -rf "$(SAMPLE_DIR)" "$(B2P_LAKE)" "$(B2P_DUCKDB_PATH)"
	$(BIN)/b2p sample --out "$(SAMPLE_DIR)" --lake "$(B2P_LAKE)"
	$(BIN)/b2p ingest --source "$(SAMPLE_DIR)/logs" --lake "$(B2P_LAKE)"
	$(DBT) build --profiles-dir . --target local
	@echo
	$(BIN)/b2p report --warehouse "$(B2P_DUCKDB_PATH)"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The log contract is declared once, in ingest/logs/contract.py; this rewrites every file that
# restates it (the Glue table in the stack, the dbt source, the DDL macro's columns, the README).
contract: $(STAMP)
	$(BIN)/python -m ingest.logs.contract_files

test: lint
	$(BIN)/pytest -q

athena-check: $(STAMP)
	$(BIN)/pytest -q tests/athena

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

image:
	docker build --platform linux/amd64 -t bones2peaches:latest .

clean:
	rm -rf "$(SAMPLE_DIR)" "$(B2P_LAKE)" "$(B2P_DUCKDB_PATH)" "$(B2P_DUCKDB_PATH).wal" target logs
