# mt_evidence: two commands on a fresh machine
#   make report   set everything up and write the report on the bundled data to reports/
#   make test     set everything up and run the whole test suite (CI runs this via .ci/run)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mt-evidence-installed

.PHONY: setup test report build validate lab bench reference clean

# Set-up: a virtual environment with the package (editable) and its test tools. uv makes it fast when
# it can be installed; pip is the fallback. Re-runs only when pyproject.toml changes. Bytecode is compiled at
# install time (pip does this; uv only when asked): where PYTHONDONTWRITEBYTECODE is set, as on CI machines here,
# every process would otherwise recompile pandas and scipy (about 4 s per CLI call or notebook kernel).
# The report's PDF and the browser tests use Debian's Chromium (Playwright drives it; its own browser download is
# not used), and the PDF test uses pdftoppm (poppler-utils). Installed here when missing and we may (root).
SYSTEM_TOOLS := /usr/bin/chromium /usr/bin/pdftoppm

$(SYSTEM_TOOLS):
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -qq chromium poppler-utils >/dev/null 2>&1 || \
		 (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils >/dev/null)); \
	else \
		echo "Please install Chromium and poppler-utils (Debian: apt-get install chromium poppler-utils)"; exit 1; \
	fi

$(STAMP): pyproject.toml | $(SYSTEM_TOOLS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv >/dev/null 2>&1 || true
	@if [ -x $(BIN)/uv ]; then \
		$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'; \
	else \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'; \
	fi
	@touch $(STAMP)

setup: $(STAMP)

test: setup
	$(BIN)/python -m pytest

report: setup
	$(BIN)/mt-evidence build
	$(BIN)/mt-evidence report

build: setup
	$(BIN)/mt-evidence build

validate: setup
	$(BIN)/mt-evidence validate data/raw

# JupyterLab on the notebooks, from the project's environment
lab: setup
	@$(BIN)/python -c "import jupyterlab" 2>/dev/null || $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev,notebooks]'
	$(BIN)/jupyter lab notebooks/

# Speed of pool_many against metafor (when Rscript is installed) and PyMARE; the report; GOSH and permutation tests
bench: setup
	@$(BIN)/python -c "import pymare" 2>/dev/null || $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev,bench]'
	$(BIN)/python benchmarks/bench_pool_many.py
	$(BIN)/python benchmarks/bench_report.py
	$(BIN)/python benchmarks/bench_robust.py
	$(BIN)/python benchmarks/bench_scale.py --rows 1000000
	$(BIN)/python benchmarks/bench_simulation.py

# Regenerate the metafor reference values (needs R with metafor, metadat, jsonlite)
reference:
	Rscript tests/reference/make_reference.R
	Rscript tests/reference/make_window_reference.R
	Rscript tests/reference/make_binary_reference.R
	Rscript tests/reference/make_network_reference.R
	Rscript tests/reference/make_bias_reference.R
	Rscript tests/reference/make_robust_reference.R
	$(BIN)/python tests/reference/export_network_time_input.py
	Rscript tests/reference/make_network_time_reference.R

clean:
	rm -rf $(VENV) reports/*.html reports/*.pdf reports/*.png reports/figures
