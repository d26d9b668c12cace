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

.PHONY: help install demo test lint format athena-check athena-e2e bench image clean

help:
	@echo "make demo          sample logs -> ingest -> dbt build -> capacity summary (local, DuckDB)"
	@echo "make test          lint + every test (unit, end-to-end, dbt build, Athena conformance, infra)"
	@echo "make athena-check  compile the dbt project for Athena offline and check it (part of make test)"
	@echo "make athena-e2e    run the deployed pipeline on Athena's engine (Trino) offline (part of make test)"
	@echo "                   [SOURCE=<v4 logs> DIMENSIONS=<dimensions folder> EXPORT=<folder for marts>]"
	@echo "make bench         ingest and dbt benchmarks (prints figures; not part of make test)"
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

# Trino (Athena engine v3's engine) needs Java 24+; Temurin 25 where the machine has it.
TRINO_JAVA_HOME ?= $(firstword $(wildcard /usr/lib/jvm/temurin-25-jdk-amd64) $(JAVA_HOME))

test: lint
	$(BIN)/pytest -q --ignore=tests/athena_e2e
	$(MAKE) --no-print-directory athena-e2e

athena-e2e: $(STAMP) profiles.yml
	@start=$$(date +%s); \
	JAVA_HOME="$(TRINO_JAVA_HOME)" B2P_E2E_SOURCE="$(SOURCE)" B2P_E2E_DIMENSIONS="$(DIMENSIONS)" \
		B2P_E2E_EXPORT="$(EXPORT)" $(BIN)/pytest -q tests/athena_e2e; status=$$?; \
	echo "athena-e2e: $$(( $$(date +%s) - start )) s wall time (Trino 476)"; exit $$status

athena-check: $(STAMP)
	$(BIN)/pytest -q tests/athena

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

image:
	docker build --platform linux/amd64 -t bones2peaches:latest .

clean:
	rm -rf "$(SAMPLE_DIR)" "$(B2P_LAKE)" "$(B2P_DUCKDB_PATH)" "$(B2P_DUCKDB_PATH).wal" target logs
