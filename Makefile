# The two commands a newcomer needs: `make demo` and `make test`. Both install first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_LAKE ?= demo-lake
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export SPARK_LOCAL_IP := 127.0.0.1

LINT_PATHS := stedi_assets stedi_assets_tests scripts benchmarks

.PHONY: install demo test lint dev screenshot bench bench-scale bench-write-path mutants clean

install: $(STAMP)
	@$(BIN)/python scripts/fetch_jars.py
	@$(BIN)/python -m stedi_assets.storage.class_archive

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml
	@command -v java >/dev/null || { echo "Spark needs Java 17+: apt-get install openjdk-17-jre-headless"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

# The demo's run is recorded in the Dagster instance that `make dev` opens.
demo: install
	rm -rf $(DEMO_LAKE)
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/stedi simulate --lake $(DEMO_LAKE)
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/stedi run --lake $(CURDIR)/$(DEMO_LAKE)

test: install lint
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

dev: install
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	test -d $(DEMO_LAKE) || $(BIN)/stedi simulate --lake $(DEMO_LAKE)
	DAGSTER_HOME=$(DAGSTER_HOME) STEDI_LAKE=$(CURDIR)/$(DEMO_LAKE) $(BIN)/dagster dev -h 127.0.0.1 -p 3000

# Hand-written mutants of every check and rule, each against only the tests named for it
# (scripts/mutants.py; about 10 minutes on 2 cores). Not part of `make test`. Exit 1 if any survives.
mutants: install
	$(BIN)/python scripts/mutants.py

# The benchmark against plain PySpark and DuckDB, with a new day through the sensor and queries
# (scale factors 1 and 50, median of 3 runs; 15-35 min on 2 cores). BENCH_ARGS="--repeat 1
# --scale-factors 50" for a quick look.
BENCH_ARGS ?= --repeat 3
bench: install
	$(BIN)/python benchmarks/run_benchmark.py $(BENCH_ARGS)

# SF500 (about 55 M landing rows, 5.5 GB of JSON in $$TMPDIR): how the project's time and memory
# grow from SF50 (15-55 min on 2 cores, 3-7 of them building the data).
bench-scale: install
	$(BIN)/python benchmarks/run_benchmark.py --scale-factors 50 500 --engines project --no-day-run

# The write path alone: the same rows written as one table by this version and by 80caeed (plain
# Parquet swapped in by hand, before Iceberg), median of 3 (3-10 min; builds
# `make bench`'s SF50 data when it is missing).
WRITE_PATH_BASE ?= $(or $(TMPDIR),/tmp)/stedi-80caeed
bench-write-path: install
	rm -rf $(WRITE_PATH_BASE) && mkdir -p $(WRITE_PATH_BASE)
	git archive 80caeed | tar -x -C $(WRITE_PATH_BASE)
	$(BIN)/python benchmarks/write_path.py --compare $(WRITE_PATH_BASE)

# The README's UI screenshots: asset graph, asset page, partitions (needs Debian's chromium).
screenshot: install
	$(BIN)/python scripts/screenshot_asset_graph.py

clean:
	rm -rf $(VENV) $(DEMO_LAKE) $(DAGSTER_HOME) .pytest_cache .ruff_cache
