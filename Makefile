# Two commands on a fresh machine (Python 3.11, CPU):
#   make demo   builds .venv (CPU torch first, then tabsynth) and releases the bundled patient table
#   make test   builds .venv if missing and runs the test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: demo test test-fast bench clean browser

# tests/test_report.py renders report.html in headless Chromium (Debian's package); installed when missing
# and the machine lets us (root with apt), else the test says what to install.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get install -y -qq chromium >/dev/null; } || echo "note: install chromium for tests/test_report.py"

$(BIN)/tabsynth: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/tabsynth
	$(BIN)/tabsynth demo --out tabsynth-demo

test: $(BIN)/tabsynth browser
	$(BIN)/ruff check tabsynth tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

# The quick part of the suite (tests marked slow left out; tests/conftest.py says what slow means): under two
# minutes on a 2-core machine, at least one test per area. CI runs `make test`, everything.
test-fast: $(BIN)/tabsynth browser
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(BIN)/tabsynth
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	cd benchmarks && ../$(BIN)/python copula_vs_sdv.py && ../$(BIN)/python release_adult.py

clean:
	rm -rf $(VENV) tabsynth-demo .pytest_cache .import_linter_cache

# tabsynth against SDV, SmartNoise, DataSynthesizer and MOSTLY AI (benchmarks/README.md). Quick mode by
# default (the table only); `make bench-peers WORKLOAD=1`: the quick DP workload figure only;
# `make bench-peers FULL=1` runs every system with its default epochs, and the figure (hours).
.PHONY: bench-peers
bench-peers: $(BIN)/tabsynth
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/peers/run.py $(if $(FULL),,--quick $(if $(WORKLOAD),--workload-only,--no-workload))
