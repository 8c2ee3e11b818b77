"""nbgrader configuration for the course "Variational Autoencoders and Latent Spaces".

nbgrader reads this file from the directory it is started in (the repository root), and the
JupyterLab "Validate" button reads it from the directory `jupyter lab` was started in. Every
setting below says why it is here; nbgrader's own defaults are kept wherever they serve.

Layout: instructor source notebooks live in ``solutions/NN_name/NN_name.ipynb`` and the student
versions nbgrader generates from them in ``lessons/NN_name/NN_name.ipynb`` (one folder per lesson:
nbgrader requires it). Regenerate lessons with ``vae-course generate``, which refuses to overwrite
a lesson a learner has edited (``nbgrader generate_assignment --force`` would delete it).

Environment variables (all optional):

- ``VAE_COURSE_EXCHANGE``      exchange directory for release/fetch/submit/collect
                               (default: ``exchange/`` in this repository; ``/srv/nbgrader/exchange``
                               is the usual choice on a shared JupyterHub).
- ``VAE_COURSE_ID``            course id in the exchange and gradebook (default ``vae-course``).
- ``VAE_COURSE_RELEASE_DIR``   where ``nbgrader generate_assignment`` writes (default ``lessons``).
- ``VAE_COURSE_CELL_TIMEOUT``  seconds one cell may run when grading/validating (default 300).
"""
import os
from pathlib import Path

c = get_config()  # noqa: F821  (injected by traitlets when it loads this file)

# The repository root, wherever it was cloned; traitlets sets __file__ when loading config files.
COURSE_ROOT = Path(__file__).resolve().parent

# --- course directory --------------------------------------------------------------------------
# Absolute root so nbgrader finds solutions/ and lessons/ whatever directory it is run from.
c.CourseDirectory.root = str(COURSE_ROOT)
# One id for the exchange and the gradebook; change it per cohort on a shared hub.
c.CourseDirectory.course_id = os.environ.get("VAE_COURSE_ID", "vae-course")
# Instructor notebooks (solutions and hidden tests) are the source ...
c.CourseDirectory.source_directory = "solutions"
# ... and the student notebooks nbgrader generates are the release. An instructor who runs the
# exchange workflow in a clone they also study in can send nbgrader's release elsewhere
# (VAE_COURSE_RELEASE_DIR=release): `nbgrader generate_assignment` replaces the release folder.
c.CourseDirectory.release_directory = os.environ.get("VAE_COURSE_RELEASE_DIR", "lessons")
# submitted/, autograded/, feedback/ and gradebook.db keep nbgrader's default names (all git-ignored).

# --- exchange (release -> fetch -> submit -> collect) ----------------------------------------
# Inside the course by default so a laptop needs no root-owned /srv; a hub sets a shared path.
c.Exchange.root = os.environ.get("VAE_COURSE_EXCHANGE", str(COURSE_ROOT / "exchange"))

# --- generating the student version ----------------------------------------------------------
# What replaces "### BEGIN SOLUTION ... ### END SOLUTION" in a code cell: the stub must fail
# every test (CI checks it), and NotImplementedError says plainly that the learner is due.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# --- executing notebooks (autograde and the Validate button) ---------------------------------
# nbgrader's default is 30 s per cell; our full-size training cells take a few CPU minutes on a
# laptop, so a cell gets 300 s. A cell that loops forever is still interrupted and scored 0.
c.Execute.timeout = int(os.environ.get("VAE_COURSE_CELL_TIMEOUT", "300"))
# Also the kernel start-up time of a busy laptop (default 60 s is tight when several run at once).
c.Execute.startup_timeout = 120

# --- autograding -------------------------------------------------------------------------------
# nbgrader scores a test cell 0 when it wrote anything to stderr. A correct answer that triggers a
# Python warning (torch UserWarning, DeprecationWarning, ...) or draws a text progress bar (tqdm
# writes "37%|###  |" to stderr) must keep its points, so such stderr output is dropped before
# scoring. Errors are unaffected: a failed assert is an "error" output, not a stream.
c.IgnorePattern.enabled = True
# One pattern for the instructor's nbgrader and the learner's `vae-course grade`.
from vae_core.grading.autograde import IGNORE_STDERR  # noqa: E402

c.IgnorePattern.pattern = IGNORE_STDERR

# A learner who deletes a test cell does not lose the test: nbgrader puts the instructor's cell
# back (with a note) before grading, so the deleted test still runs and scores.
c.OverwriteCells.add_missing_cells = True
