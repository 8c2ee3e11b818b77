# The course's two front-door commands (see README):
#   make lab    set up (or reuse) .venv and open the course in JupyterLab
#   make test   set up (or reuse) .venv and run the whole test suite
# Everything installs from pyproject.toml into a local virtual environment; nothing is downloaded at run time.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# nbgrader finds `alembic` on PATH, so the venv's bin/ goes first for every recipe.
export PATH := $(abspath $(BIN)):$(PATH)
# Use both cores for the test suite (override: make test JOBS=1).
JOBS   ?= 2

.PHONY: setup lab test test-quick bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/jupyter labextension disable --level=sys_prefix nbgrader:formgrader nbgrader:create-assignment nbgrader:course-list >/dev/null 2>&1 || true
	touch $(STAMP)

lab: setup
	$(BIN)/jupyter lab lessons/00_orientation/00_orientation.ipynb

test: setup
	$(BIN)/python -m pytest -n $(JOBS)

bench: setup
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_grading.py

clean-venv:
	rm -rf $(VENV)
