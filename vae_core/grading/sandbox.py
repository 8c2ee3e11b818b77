"""Run the learner's kernel in a bubblewrap sandbox (Linux), where the OS has one.

Whatever runs in a learner's notebook runs with the learner's rights, so without a sandbox it can
read the course's answers, append a forged line to the grade record or rewrite the grader's result
file after the kernel exits. With ``bwrap`` (Debian/Ubuntu package ``bubblewrap``) the kernel runs:

- with the whole file system **read-only**, and these hidden behind empty ``tmpfs`` mounts:
  the course's ``solutions/``, ``.git/`` (it holds every version of the solutions) and
  ``.vae_course/`` (grade record, feedback, cached reference runs), ``/tmp`` (other gradings)
  and the private grading folder (its gradebook, result file and solution copy);
- writable only where the kernel must write: the folder the notebook runs in (a copy) and the
  folder holding its connection file, sockets and the guard's log;
- in its own PID namespace (it cannot see or signal the grader; every process it forks dies with
  it), without network (``--unshare-net``: the kernel talks to the grader over Unix sockets),
  IPC or hostname namespaces, in a new session (no terminal injection).

The grader's result and the grade record are written only by the grader's own processes.
Elsewhere (no ``bwrap``, or one that cannot create namespaces here) grading runs unsandboxed and
says so. Importing this module does nothing.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path

KERNEL_NAME = "vae-course-sandbox"
UNSANDBOXED_NOTE = ("ran unsandboxed: bubblewrap (`bwrap`) is not available here, so the notebook could read "
                    "the course's files while it ran; on Linux install it (Debian/Ubuntu: apt install bubblewrap)")


@functools.lru_cache(maxsize=1)
def bwrap() -> str | None:
    """Path of a working ``bwrap``: installed, and able to make the namespaces grading uses."""
    path = shutil.which("bwrap")
    if not path:
        return None
    try:
        probe = subprocess.run([path, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--unshare-pid",
                                "--unshare-net", "--die-with-parent", "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if probe.returncode == 0 else None


def kernel_prefix(hidden: list[Path], writable: list[Path], cwd: Path, bwrap_path: str,
                  visible: list[Path] = ()) -> list[str]:
    """The ``bwrap`` arguments that wrap a kernel command line.

    ``visible``: folders under ``/tmp`` the kernel needs, bound read-only again over the empty
    ``/tmp`` (a virtual environment or a checkout that lives there); ``hidden``: folders replaced by
    an empty tmpfs on top (missing ones are skipped); ``writable``: folders bound read-write on top
    of that (they must exist when the kernel starts); ``cwd``: the kernel's folder."""
    argv = [bwrap_path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for folder in visible:
        folder = Path(folder).resolve()
        if folder.is_dir() and folder.is_relative_to("/tmp"):
            argv += ["--ro-bind", str(folder), str(folder)]
    argv += [
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session",
            "--setenv", "IPYTHONDIR", "/tmp/ipython", "--setenv", "MPLCONFIGDIR", "/tmp/matplotlib",
            # ipykernel watches JPY_PARENT_PID and quits when its parent looks gone; in a PID namespace
            # its parent is bwrap (pid 1 there), so that check must be off (--die-with-parent does its job)
            "--unsetenv", "JPY_PARENT_PID"]
    for folder in hidden:
        if Path(folder).is_dir():
            argv += ["--tmpfs", str(Path(folder).resolve())]
    for folder in writable:
        argv += ["--bind", str(Path(folder).resolve()), str(Path(folder).resolve())]
    return argv + ["--chdir", str(Path(cwd).resolve())]


def install_kernelspec(jupyter_dir: Path, prefix: list[str], python: str, display: str = "Python 3 (sandboxed)") -> str:
    """Write ``jupyter_dir/kernels/<KERNEL_NAME>/kernel.json`` running ``python`` inside ``prefix``;
    returns the kernel name (point ``JUPYTER_PATH`` at ``jupyter_dir`` to make it found)."""
    spec_dir = Path(jupyter_dir) / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [*prefix, "--", python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": display, "language": "python", "metadata": {"debugger": False},
            # a signal to bwrap would not reach the kernel (own session, own PID namespace): interrupt
            # it with a control-channel message, which ipykernel turns into SIGINT to itself
            "interrupt_mode": "message"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return KERNEL_NAME


def needed_folders() -> list[Path]:
    """What the kernel must read: this Python and its environment, and the checkout (or site-packages)
    the course library is imported from."""
    import sys

    return [Path(sys.prefix), Path(sys.base_prefix), Path(__file__).resolve().parents[2]]


def protected_folders(course_root: Path) -> list[Path]:
    """What a learner's kernel must not read: answers, their history, the grade record, the cache
    of reference runs; in the course being graded and in the checkout the library is imported from."""
    from .course import SOLUTIONS_DIR, STATE_DIR

    folders = []
    for root in dict.fromkeys([Path(course_root).resolve(), Path(__file__).resolve().parents[2]]):
        folders += [root / SOLUTIONS_DIR, root / ".git", root / STATE_DIR]
    if os.environ.get("VAE_COURSE_CACHE"):  # cached reference runs: the expected answers
        folders.append(Path(os.environ["VAE_COURSE_CACHE"]))
    return folders
