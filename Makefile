# minemap: `make run` (sample end to end) and `make test` do all set-up on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= out/sample
DIST   ?= dist
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test test-all bench sample plugin system-deps clean calibrate-antioquia

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 not found: install it or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

## run: create the environment if missing, then run the bundled sample end to end
run: $(STAMP)
	$(BIN)/minemap run sample_data/minemap.toml --out $(OUT)
	@echo "Outputs in $(OUT)/: open the .tif files in QGIS (each .qml style is applied on open)."

## test: the CI suite (QGIS and GDAL tools are installed first where apt-get is available)
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -m "not slow" -q

## test-all: the CI suite and the tests marked slow (the costlier variants; CI keeps under 15 minutes on 2 cores)
test-all: $(STAMP) system-deps
	$(BIN)/python -m pytest -q

## bench: scale and speed measurements (minutes; inputs go to $$BENCH_DIR), update and start-up; prints
## tables, then issue #12's targets with verdicts. BENCH_SIZES="35 70 110 110@3.5" adds a billion cells (3.5 m).
BENCH_SIZES ?= 35 70 110
bench: $(STAMP) system-deps
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python bench/run_bench.py --sizes $(BENCH_SIZES)
	$(BIN)/python bench/bench_update.py
	$(BIN)/python bench/bench_evidence.py
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python bench/bench_start.py --command minemap
	$(BIN)/python bench/targets.py
	$(BIN)/python bench/bench_calibrate.py
	$(BIN)/python bench/bench_s3.py

## calibrate-antioquia: `minemap calibrate` on the real Antioquia split; prints issue #21's targets with
## verdicts and the README's real-data table (CALIBRATE_ARGS=--readme writes it into README.md)
calibrate-antioquia: $(STAMP)
	$(BIN)/python real_data/antioquia/skill_table.py $(CALIBRATE_ARGS)

## sample: regenerate the synthetic sample data (committed; deterministic)
sample: $(STAMP)
	$(BIN)/python sample_data/make_sample.py

## plugin: the QGIS plugin as a zip for Plugins → Manage and Install Plugins → Install from ZIP → dist/
plugin:
	$(or $(PYTHON),python3) qgis_plugin/make_zip.py $(DIST)

## system-deps: Debian's QGIS (headless checks of outputs as users see them), GDAL tools, chromium
## (report.html in a real browser) and poppler-utils (the PDFs read back)
system-deps:
	@if /usr/bin/python3 -c "import qgis.core" 2>/dev/null && command -v gdal_calc.py >/dev/null \
	  && command -v chromium >/dev/null && command -v pdftoppm >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing QGIS, GDAL tools, chromium and poppler-utils with apt-get (a few minutes, once)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    qgis python3-qgis qgis-providers gdal-bin python3-gdal chromium poppler-utils >/dev/null; \
	else echo "QGIS, chromium or poppler-utils not installed and apt-get unavailable: their tests will be skipped"; fi

clean:
	rm -rf $(VENV) out dist .pytest_cache
