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
# Extra arguments for JupyterLab, e.g. make lab ARGS="--no-browser --port 8899" (headless or remote use).
# --allow-root is added automatically when run as root (containers, CI boxes), whatever ARGS says.
ARGS   ?=
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
# Learners: `vae-course lab` copies any new lesson into workspace/ (your own copies, never overwritten),
# then starts JupyterLab rooted at the course folder (every lesson, the README and the library in the
# file browser; Validate finds nbgrader_config.py) with jupyter_config/ (instructor panels hidden, Validate
# kept, no news pop-up), and opens your lesson 00.
lab: setup
	OMP_NUM_THREADS=$(OMP_NUM_THREADS) $(BIN)/vae-course lab $(ARGS)

# Instructors: every nbgrader panel (formgrader, create assignment, course list).
lab-instructor: setup
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root,) $(ARGS)

test: setup
	$(BIN)/python -m pytest -n $(JOBS)

bench: setup
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_grading.py

clean-venv:
	rm -rf $(VENV)
