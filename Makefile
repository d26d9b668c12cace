# bones2peaches — the two commands are `make demo` and `make test`; each creates what it needs.
# Only Python 3.11+ and make are assumed on the machine (and Debian's chromium for make bi-test).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Superset lives in a virtualenv of its own: its pins never touch the pipeline's.
BI_VENV  := .venv-bi
BI_STAMP := $(BI_VENV)/.installed-stamp
export B2P_SUPERSET_HOME ?= $(CURDIR)/.bi
B2P_SUPERSET_PORT ?= 8088

# The demo's own folders; override on the command line (make demo DEMO_DIR=/tmp/b2p).
DEMO_DIR ?= $(CURDIR)
export B2P_LAKE        ?= $(DEMO_DIR)/lake
export B2P_DUCKDB_PATH ?= $(DEMO_DIR)/warehouse.duckdb
SAMPLE_DIR := $(DEMO_DIR)/sample
REPORT_HTML := $(DEMO_DIR)/report.html
DBT := $(BIN)/dbt --no-use-colors

.PHONY: help install bi-install demo bi test bi-test bi-test-trino lint format contract athena-check athena-e2e bench image clean

help:
	@echo "make demo          sample logs -> ingest -> dbt build -> capacity summary + report.html (local, DuckDB)"
	@echo "make bi            Superset on 127.0.0.1 with the Ad capacity dashboard over the demo's warehouse"
	@echo "make test          lint + every test but the browser ones (unit, end-to-end, dbt, Athena conformance, infra)"
	@echo "make bi-test       the browser tests: Superset dashboard and HTML report in headless Chromium"
	@echo "make bi-test-trino the Superset bundle over Trino (Athena's engine): needs B2P_TRINO_HOST/PORT/CATALOG/SCHEMA"
	@echo "make athena-check  compile the dbt project for Athena offline and check it (part of make test)"
	@echo "make athena-e2e    run the deployed pipeline on Athena's engine (Trino) offline (part of make test)"
	@echo "                   [SOURCE=<v4 logs> DIMENSIONS=<dimensions folder> EXPORT=<folder for marts>]"
	@echo "make bench         ingest and dbt benchmarks (prints figures; not part of make test)"
	@echo "make contract      rewrite the files derived from the log contract (ingest/logs/contract.py)"
	@echo "make image         build the ingest/dbt container image (needs a docker engine)"
	@echo "make clean         remove the demo's lake, warehouse, sample logs, report and dbt artefacts"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,report]'
	@touch $@

install: $(STAMP)

$(BI_STAMP): bi/requirements.txt
	$(PYTHON) -m venv $(BI_VENV)
	$(BI_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BI_VENV)/bin/python -m pip install --quiet -r bi/requirements.txt
	@touch $@

bi-install: $(BI_STAMP)

# dbt reads profiles.yml from --profiles-dir; the checked-in example has no secrets (env vars only).
profiles.yml:
	cp profiles.yml.example $@

demo: $(STAMP) profiles.yml
	rm -rf "$(SAMPLE_DIR)" "$(B2P_LAKE)" "$(B2P_DUCKDB_PATH)" "$(REPORT_HTML)"
	$(BIN)/b2p sample --out "$(SAMPLE_DIR)" --lake "$(B2P_LAKE)"
	$(BIN)/b2p ingest --source "$(SAMPLE_DIR)/logs" --lake "$(B2P_LAKE)"
	$(DBT) build --profiles-dir . --target local
	@echo
	$(BIN)/b2p report --warehouse "$(B2P_DUCKDB_PATH)"
	$(BIN)/b2p report --warehouse "$(B2P_DUCKDB_PATH)" --html "$(REPORT_HTML)"

# Superset over the demo's warehouse (read-only): provisioned from bi/ (config, dashboard bundle),
# then served in the foreground until Ctrl-C. The admin is $B2P_SUPERSET_ADMIN_USER (admin) with
# $B2P_SUPERSET_ADMIN_PASSWORD, or a random password kept in $(B2P_SUPERSET_HOME)/admin_password.
bi: $(BI_STAMP)
	$(BI_VENV)/bin/python bi/provision.py provision
	$(BI_VENV)/bin/python bi/provision.py serve $(B2P_SUPERSET_PORT)

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

# Trino (Athena engine v3's engine) needs Java 24+; Temurin 25 where the machine has it.
TRINO_JAVA_HOME ?= $(firstword $(wildcard /usr/lib/jvm/temurin-25-jdk-amd64) $(JAVA_HOME))

test: lint
	$(BIN)/pytest -q -m "not browser and not trino" --ignore=tests/athena_e2e
	$(MAKE) --no-print-directory athena-e2e

athena-e2e: $(STAMP) profiles.yml
	@start=$$(date +%s); \
	JAVA_HOME="$(TRINO_JAVA_HOME)" B2P_E2E_SOURCE="$(SOURCE)" B2P_E2E_DIMENSIONS="$(DIMENSIONS)" \
		B2P_E2E_EXPORT="$(EXPORT)" $(BIN)/pytest -q tests/athena_e2e; status=$$?; \
	echo "athena-e2e: $$(( $$(date +%s) - start )) s wall time (Trino 476)"; exit $$status

# Needs Debian's chromium (/usr/bin/chromium; .ci/run installs it). Screenshots: tests/bi/screenshots/.
bi-test: $(STAMP) $(BI_STAMP)
	@test -x /usr/bin/chromium || { echo "bi-test needs Debian's chromium: apt-get install -y chromium"; exit 1; }
	$(BIN)/pytest -q -m browser --ignore=tests/athena_e2e

# The same dashboard over Athena's engine: Trino at $B2P_TRINO_HOST:$B2P_TRINO_PORT, with the
# marts in $B2P_TRINO_CATALOG.$B2P_TRINO_SCHEMA built from the sample the test generates
# (the offline Athena harness provides one; bi/README.md).
bi-test-trino: $(STAMP) $(BI_STAMP)
	$(BIN)/pytest -q -m trino --ignore=tests/athena_e2e

athena-check: $(STAMP)
	$(BIN)/pytest -q tests/athena

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

image:
	docker build --platform linux/amd64 -t bones2peaches:latest .

clean:
	rm -rf "$(SAMPLE_DIR)" "$(B2P_LAKE)" "$(B2P_DUCKDB_PATH)" "$(B2P_DUCKDB_PATH).wal" "$(REPORT_HTML)" target logs
