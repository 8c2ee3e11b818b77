"""Test-session settings shared by every test file.

One math thread per process: the suite runs two pytest-xdist workers on a 2-core machine, and each
starts notebook kernels of its own. With torch's default of one thread per core, those processes
oversubscribe the cores and every parallel region waits for a descheduled thread: small models then
train 10-100x slower (measured: 67 s instead of 0.6 s for a 30-epoch digits autoencoder while one
other process was busy). Set here, before torch is imported, so kernels and nbgrader inherit it.
"""
import os
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# One cache of generated lessons and reference runs for every fixture course of the session (its keys
# hold the solution's content and the library's files, so a changed solution or library runs again).
os.environ.setdefault("VAE_COURSE_CACHE", os.path.join(tempfile.gettempdir(), f"vae-course-test-cache-{os.getuid()}"))
