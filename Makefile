# The two commands of the README: `make demo` (the main job) and `make test`; `make check` is
# the fast loop while editing.
# Both create .venv and install what they need; nothing is installed by hand.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SCENARIO ?= nightly-maintenance

.PHONY: demo check test soak bench live-demo calibrate-demo docs docs-serve sample-report validation clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

## demo: run a bundled scenario through the model and write result.json + an HTML/Markdown report
demo: $(STAMP)
	$(BIN)/repaychaos sim $(SCENARIO) --out reports/out/$(SCENARIO)-sim; \
	  status=$$?; [ $$status -le 1 ] || exit $$status
	$(BIN)/repaychaos report reports/out/$(SCENARIO)-sim/result.json --out reports/out/$(SCENARIO)-sim
	@echo "open reports/out/$(SCENARIO)-sim/report.html"

## calibrate-demo: measure the bundled slow-sync scenario live, fit a model to it, and report both
calibrate-demo: $(STAMP)
	$(BIN)/repaychaos load slow-sync --out reports/out/slow-sync-load; \
	  status=$$?; [ $$status -le 1 ] || exit $$status
	$(BIN)/repaychaos calibrate reports/out/slow-sync-load/result.json
	@echo "open reports/out/slow-sync-load/calibration-report/report.html"

## check: the fast loop (under 90 s): types (mypy), layers (lint-imports), the docs build and every
## test that neither starts a service (live) nor runs the model at length (slow); tests/test_types.py
## and tests/test_layers.py are the types and layers checks. These tests start no service and hold
## no wall-clock timing, so they run on every core (pytest-xdist).
CHECK_MARKERS := (not live and not slow and not soak) or docs
XDIST := -n auto --maxprocesses 4
check: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(XDIST) -m "$(CHECK_MARKERS)"

## test: the whole default test suite, what CI runs: check's tests and the slow ones (statistical
## validation) on every core, then the live ones (services on loopback ports, timed against the
## wall clock) one at a time; not soak; fails if either part ran no test
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(XDIST) -m "not live and not soak"
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "live and not soak"

## soak: the long model and load runs kept out of the default suite
soak: $(STAMP)
	$(BIN)/python -m pytest -q -m soak -p no:cacheprovider

## bench: model vs bare SimPy vs Ciw, and the live service's sustained rate
bench: $(STAMP)
	$(BIN)/python bench/bench_model.py
	$(BIN)/python bench/bench_service.py

## sample-report: regenerate the committed sample report in reports/sample/ (the demo's scenario)
sample-report: $(STAMP)
	rm -rf reports/sample
	$(BIN)/repaychaos sim $(SCENARIO) --out reports/sample; status=$$?; [ $$status -le 1 ] || exit $$status
	$(BIN)/repaychaos report reports/sample/result.json --out reports/sample

## validation: rewrite docs/explanation/validation.md from `repaychaos run` folders (RUNS=...), stamped
RUNS ?= $(wildcard reports/out/*-run)
validation: $(STAMP)
	$(BIN)/python -m repaychaos.reports.validation $(RUNS) > docs/explanation/validation.md.new
	mv docs/explanation/validation.md.new docs/explanation/validation.md

## docs: build the documentation site into site/ (warnings are errors: a broken link fails)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## docs-serve: the documentation site on http://127.0.0.1:8001 while you edit it
docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8001

clean:
	rm -rf $(VENV) reports/out site
