"""How many collected submissions per minute: `vae-course grade-submissions` against `nbgrader autograde`.

Lesson 00, ``--students`` collected submissions (default 8: full marks, partial, the
untouched stub and a cheat that switches ``torch.testing.assert_close`` off, in turn), laid out as
``nbgrader collect`` leaves them, in throw-away copies of an instructor's course (``solutions/NN``
and this repository's nbgrader_config.py; ``nbgrader generate_assignment`` done). On the same set:

1. ``nbgrader autograde NN``                         (nbgrader's own: one submission after another)
2. ``vae-course grade-submissions NN --jobs 1``      (the judge, sandboxed where bwrap works, one at a time)
3. ``vae-course grade-submissions NN --jobs J``      (the same, J at a time; J = the machine's cores)

each in a fresh course copy and a fresh process; wall-clock and CPU seconds (the process and all it
started, kernels included). The judge's reference run of the solution (once per lesson version,
cached) is done before timing. Then ``nbgrader export`` of each course: the scores per kind of
submission (the cheat keeps the points nbgrader's autograde gives it only there). Quick mode
(VAE_COURSE_QUICK=1) unless ``--full``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_submissions.py              # lesson 00, 8 submissions
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_submissions.py --students 16 --jobs 4
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import nbformat  # noqa: E402

from vae_core.grading.course import resolve_lesson  # noqa: E402

KINDS = ["full", "partial", "stub", "cheat"]  # the cheat (nb_helpers.flow_cheat) is lesson 00's only


def _env(quick: bool, cache: Path) -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["VAE_COURSE_QUICK"] = "1" if quick else "0"
    env["VAE_COURSE_CACHE"] = str(cache)
    return env


def _timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float, str]:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return wall, (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime), proc.stdout + proc.stderr


def _answers(release: Path, solution: Path, kind: str):
    """Lesson 00 as a student of ``kind`` hands it in (tests/nb_helpers.py: the students of the instructor flow)."""
    import nb_helpers as h

    if kind == "cheat":
        return h.flow_cheat(release, solution)
    if h.FLOW_ANSWERS[kind] == []:
        return nbformat.read(release, as_version=4)
    return h.answer_exercises(release, solution, h.FLOW_ANSWERS[kind])


def _course(tmp: Path, name: str, lesson, env: dict, notebooks: dict) -> Path:
    import nb_helpers as h

    root = tmp / name
    (root / "solutions" / lesson.name).mkdir(parents=True)
    shutil.copy2(lesson.solution, root / "solutions" / lesson.name / lesson.filename)
    h.write_nbgrader_config(root, root)
    subprocess.run(["nbgrader", "generate_assignment", lesson.name], cwd=root, env=env, check=True, capture_output=True)
    for student, nb in notebooks.items():
        folder = root / "submitted" / student / lesson.name
        folder.mkdir(parents=True)
        (folder / "timestamp.txt").write_text("2026-12-01 10:00:00.000000 UTC")
        nbformat.write(nb, folder / lesson.filename)
    return root


def _export(root: Path, env: dict, lesson: str) -> dict[str, float]:
    subprocess.run(["nbgrader", "export", f"--to={root / 'grades.csv'}"], cwd=root, env=env, check=True,
                   capture_output=True)
    with open(root / "grades.csv", newline="") as f:
        return {r["student_id"]: float(r["score"]) for r in csv.DictReader(f) if r["assignment"] == lesson}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--students", type=int, default=8, help="collected submissions (default 8)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel gradings (default: every core)")
    p.add_argument("--full", action="store_true", help="full mode instead of quick mode")
    p.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "submissions.json"))
    a = p.parse_args(argv)
    if a.students < 1 or a.jobs < 1:
        p.error(f"--students and --jobs must be at least 1, got {a.students} and {a.jobs}")
    lesson, _ = resolve_lesson("00", REPO)
    with tempfile.TemporaryDirectory(prefix="bench-submissions-") as tmp:
        tmp = Path(tmp)
        env = _env(not a.full, tmp / "cache")
        os.environ.update({k: env[k] for k in ("VAE_COURSE_QUICK", "VAE_COURSE_CACHE", "PATH")})
        first = _course(tmp, "first", lesson, env, {})
        release = first / "lessons" / lesson.name / lesson.filename
        kinds = {f"s{i:02d}_{KINDS[i % len(KINDS)]}": KINDS[i % len(KINDS)] for i in range(a.students)}
        notebooks = {s: _answers(release, lesson.solution, k) for s, k in kinds.items()}

        from vae_core.grading.autograde import GradeOptions, reference_records
        from vae_core.grading.course import Lesson

        t0 = time.perf_counter()
        reference_records(Lesson(lesson.name, REPO), GradeOptions())  # cached for the gradings below
        reference_wall = time.perf_counter() - t0

        cli = [sys.executable, "-m", "vae_core.grading.cli", "grade-submissions", lesson.name]
        runs = [("nbgrader autograde", ["nbgrader", "autograde", lesson.name]),
                ("grade-submissions --jobs 1", [*cli, "--jobs", "1"]),
                (f"grade-submissions --jobs {a.jobs}", [*cli, "--jobs", str(a.jobs)])]
        rows = []
        print(f"lesson {lesson.name}, {a.students} submissions ({', '.join(KINDS)} in turn), "
              f"{'full' if a.full else 'quick'} mode; judge's reference run {reference_wall:.0f} s (cached, not timed)")
        print(f"{'tool':<30} {'wall s':>8} {'CPU s':>8} {'per minute':>11}  scores by kind")
        for i, (label, cmd) in enumerate(runs):
            root = _course(tmp, f"course{i}", lesson, env, notebooks)
            wall, cpu, _ = _timed(cmd, env, root)
            scores = _export(root, env, lesson.name)
            by_kind = {k: sorted({scores[s] for s, kk in kinds.items() if kk == k}) for k in KINDS if k in kinds.values()}
            rows.append(dict(tool=label, wall=wall, cpu=cpu, per_minute=60 * a.students / wall, scores=by_kind))
            print(f"{label:<30} {wall:8.1f} {cpu:8.1f} {60 * a.students / wall:11.1f}  "
                  + ", ".join(f"{k} {'/'.join(f'{v:g}' for v in vs)}" for k, vs in by_kind.items()), flush=True)
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f}")
    out = dict(when=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), lesson=lesson.name,
               students=a.students, jobs=a.jobs, quick=not a.full, cpus=os.cpu_count(), load_average=load,
               reference_wall=reference_wall, runs=rows)
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(out, indent=1))
    print(f"(written to {a.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
