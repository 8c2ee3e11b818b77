"""How much time does `vae-course grade` add beyond running the notebook itself?

For each lesson, the same notebook (the solution notebook: every cell runs to the end, as a
finished learner's would) is

1. executed:  ``jupyter nbconvert --to notebook --execute`` (a fresh kernel, no grading), and
2. graded:    ``vae-course grade NN --notebook ...`` (tamper scan, private nbgrader course,
              generate_assignment, autograde with the guard and judge cells in the sandbox where
              bwrap works, the judge's comparison, HTML feedback, record),

each in a fresh process, alternating, ``--repeat`` times; the overhead is the difference of the
medians, in wall-clock seconds and in CPU seconds (user + system of the process and everything it
started, kernels included: the CPU figure hardly moves when the machine is busy, the wall-clock
one does). The first grading of a lesson also runs generate_assignment and the judge's reference run of
the solution notebook, whose results are then cached (``.vae_course/cache/``); it is reported apart. Grading runs against a throw-away copy of the course (``solutions/NN`` only), so the
benchmark never writes to your ``.vae_course/`` record. Quick mode (VAE_COURSE_QUICK=1) unless
``--full``. Target: overhead <= 10 s per lesson.

    .venv/bin/python benchmarks/bench_grading.py                 # every lesson, quick mode
    .venv/bin/python benchmarks/bench_grading.py 00 03 --repeat 3
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vae_core.grading.course import list_lessons, resolve_lesson  # noqa: E402


def _env(quick: bool) -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    if quick:
        env["VAE_COURSE_QUICK"] = "1"
    return env


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)  # every finished descendant, kernels included
    return r.ru_utime + r.ru_stime


def _timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float, str]:
    """Wall-clock and CPU seconds (user + system, the process and all it started) of ``cmd``."""
    t0, c0 = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    dt, dc = time.perf_counter() - t0, _children_cpu() - c0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return dt, dc, proc.stdout


def bench_lesson(name: str, repeat: int, quick: bool, timeout: int) -> dict:
    env = _env(quick)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        course = tmp / "course"
        shutil.copytree(REPO / "solutions" / name, course / "solutions" / name)
        (course / "nbgrader_config.py").write_text("c = get_config()\n")
        (course / "lessons").mkdir()
        nb = tmp / f"{name}.ipynb"
        shutil.copy2(REPO / "solutions" / name / f"{name}.ipynb", nb)
        execute = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                   f"--ExecutePreprocessor.timeout={timeout}", "--output-dir", str(tmp / "executed"), str(nb)]
        grade = [sys.executable, "-m", "vae_core.grading.cli", "grade", name, "--notebook", str(nb),
                 "--root", str(course), "--timeout", str(timeout)]
        # the first grading of a lesson also runs generate_assignment (then cached): measured apart
        first_wall, first_cpu, _ = _timed(grade, env, tmp)
        times = {"execute": [], "grade": []}
        score = None
        for i in range(repeat):
            order = [("execute", execute), ("grade", grade)]
            for kind, cmd in (order if i % 2 == 0 else order[::-1]):
                dt, dc, out = _timed(cmd, env, tmp)
                times[kind].append((dt, dc))
                if kind == "grade":
                    score = next((ln.strip() for ln in out.splitlines() if ln.strip().startswith("total")), "?")
        med = {k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v)) for k, v in times.items()}
        return dict(lesson=name, repeat=repeat, grade_total=score,
                    execute_wall=med["execute"][0], grade_wall=med["grade"][0],
                    overhead_wall=med["grade"][0] - med["execute"][0],
                    execute_cpu=med["execute"][1], grade_cpu=med["grade"][1],
                    overhead_cpu=med["grade"][1] - med["execute"][1],
                    first_grade_wall=first_wall, first_grade_cpu=first_cpu, runs=times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("lessons", nargs="*", help="lesson numbers or names (default: all)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--full", action="store_true", help="full mode instead of quick mode")
    p.add_argument("--timeout", type=int, default=600, help="per-cell timeout for both runs")
    p.add_argument("--json", help="also write the results to this JSON file")
    a = p.parse_args(argv)
    names = [resolve_lesson(s, REPO)[0].name for s in a.lessons] or [l.name for l in list_lessons(REPO)]
    rows = []
    print(f"{'':<24} {'---------- wall-clock s ----------':>34}  {'------------- CPU s --------------':>34}")
    print(f"{'lesson':<24} {'execute':>10} {'grade':>10} {'overhead':>12}  {'execute':>10} {'grade':>10} "
          f"{'overhead':>12}  first grade (wall/CPU)  score")
    for name in names:
        r = bench_lesson(name, a.repeat, not a.full, a.timeout)
        rows.append(r)
        print(f"{name:<24} {r['execute_wall']:10.1f} {r['grade_wall']:10.1f} {r['overhead_wall']:12.1f}  "
              f"{r['execute_cpu']:10.1f} {r['grade_cpu']:10.1f} {r['overhead_cpu']:12.1f}  "
              f"{r['first_grade_wall']:9.1f} / {r['first_grade_cpu']:<9.1f}  {r['grade_total']}", flush=True)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"{'quick' if not a.full else 'full'} mode; median of {a.repeat}")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
