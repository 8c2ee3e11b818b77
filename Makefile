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
# JupyterLab refuses to run as root (containers, CI boxes) unless told it is intended.
LAB_FLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)
# Use both cores for the test suite (override: make test JOBS=1).
JOBS   ?= 2

.PHONY: setup lab lab-instructor test test-quick bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

# One math thread per kernel: the course's models are small, so a second thread gains little on an idle
# machine, while on a busy one (a browser, a second notebook) extra threads wait for each other and small
# models train 10-100x slower. Override with `make lab OMP_NUM_THREADS=4`.
OMP_NUM_THREADS ?= 1
# Learners: jupyter_config/ hides nbgrader's instructor panels and keeps the Validate button.
# Started from the repository root so Validate finds nbgrader_config.py.
lab: setup
	OMP_NUM_THREADS=$(OMP_NUM_THREADS) JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter_config$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
	  $(BIN)/jupyter lab $(LAB_FLAGS) lessons/00_orientation/00_orientation.ipynb

# Instructors: every nbgrader panel (formgrader, create assignment, course list).
lab-instructor: setup
	$(BIN)/jupyter lab $(LAB_FLAGS)

test: setup
	$(BIN)/python -m pytest -n $(JOBS)

bench: setup
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_grading.py

clean-venv:
	rm -rf $(VENV)
