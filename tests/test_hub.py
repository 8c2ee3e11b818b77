"""The instructor path on a real JupyterHub: one instructor, three students, each a system user.

JupyterHub (``jupyterhub==6.1.1`` from PyPI) with its proxy (``configurable-http-proxy`` from npm),
the local-process spawner and the course's environment, as the README's *On a JupyterHub* recipe
describes. The test, running as root:

1. creates the users ``vaeinst`` and ``vaestu1..3`` (``useradd -m``, homes ``chmod 700``), a shared
   exchange (mode 1777) and the instructor's course directory ``~vaeinst/course`` (lesson 00);
2. starts the hub and, through its REST API with an admin service token, each user's server and a
   token per user;
3. instructor (``nbgrader`` run as ``vaeinst``): ``generate_assignment``, ``release_assignment``;
4. each student, only through their own server behind the hub's proxy: nbgrader's
   ``/assignments/fetch``, the contents API to read the fetched lesson and save their answers
   (full marks, partial, untouched stub), ``/assignments/submit``;
5. instructor: ``collect``, ``autograde``, ``generate_feedback``, ``release_feedback``; a student
   fetches the feedback through their server (``/assignments/fetch_feedback``); ``export`` gives
   7, 5 and 0 points; then ``vae-course grade-submissions 00 --force`` (the judge, as the
   instructor) writes the same scores into the same gradebook;
6. permissions: a student's token is refused by another student's server; a student's own server
   refuses a path outside their home; code in a student's kernel cannot read another student's
   copy, list the exchange's inbox or read the instructor's ``solutions/`` (and can read its own
   file, so the check can fail); the students' servers have no formgrader, the instructor's has.

Users and processes are removed at the end, whatever happened. Not root, or no proxy: skipped with
the reason; with ``VAE_COURSE_REQUIRE_HUB=1`` (CI) that is a failure instead.
"""
from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from pathlib import Path

import nbformat
import pytest

import nb_helpers as h

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]

LESSON = h.FLOW_LESSON
NOTEBOOK = f"{LESSON}.ipynb"
COURSE_ID = "vae-hub-test"
INSTRUCTOR = "vaeinst"
STUDENTS = {"vaestu1": "full", "vaestu2": "partial", "vaestu3": "stub"}  # user -> which answers (nb_helpers.FLOW_*)
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def _unavailable(reason: str) -> None:
    if os.environ.get("VAE_COURSE_REQUIRE_HUB") == "1":
        pytest.fail(f"VAE_COURSE_REQUIRE_HUB=1 but {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    return proc


def _remove_user(name: str) -> None:
    subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)  # this user's leftovers only
    subprocess.run(["userdel", "-r", "-f", name], capture_output=True)


def _user_python(base: Path, probe_user: str) -> tuple[Path, dict]:
    """A Python that ``probe_user`` can run and that imports the course's environment, and the
    environment variables it needs.

    The venv itself when that user can run it. Otherwise (its interpreter lives where other users cannot
    go, e.g. pyenv under /root): a view of it for the test, a copy of the same interpreter build (binary,
    shared library, standard library) outside that folder, a venv of it whose site-packages adds the
    environment's, and the environment's commands re-pointed at it."""
    probe = ["runuser", "-u", probe_user, "--", "env", "{env}", "{py}", "-c", "import vae_core, nbgrader, jupyterhub"]

    def runs(py: Path, env: dict) -> subprocess.CompletedProcess:
        cmd = [a.replace("{py}", str(py)) for a in probe]
        i = cmd.index("{env}")
        cmd[i:i + 1] = [f"{k}={v}" for k, v in env.items()] or ["-u", "NOTHING"]
        return subprocess.run(cmd, capture_output=True, text=True)

    if runs(Path(sys.executable), {}).returncode == 0:
        return Path(sys.executable), {}
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    src = Path(sys.base_prefix)
    interp = base / "python"
    (interp / "bin").mkdir(parents=True)
    shutil.copy2(Path(sys._base_executable).resolve(), interp / "bin" / version)
    (interp / "lib").mkdir()
    for lib in src.glob(f"lib/lib{version}*.so*"):
        shutil.copy2(lib, interp / "lib" / lib.name, follow_symlinks=True)
    shutil.copytree(src / "lib" / version, interp / "lib" / version, symlinks=True,
                    ignore=shutil.ignore_patterns("site-packages", "test", "idlelib", "tkinter", "turtledemo"))
    (interp / "lib" / version / "site-packages").mkdir()
    env = {"LD_LIBRARY_PATH": str(interp / "lib")}  # searched before the binary's RUNPATH (the unreadable original)
    view = base / "env"
    _run([str(interp / "bin" / version), "-m", "venv", "--without-pip", str(view)], env=dict(os.environ, **env))
    purelib = Path(sysconfig.get_paths()["purelib"])
    (view / "lib" / version / "site-packages" / "_vae_course_env.pth").write_text(
        f"import site; site.addsitedir({str(purelib)!r})\n")
    venv_bin = Path(sys.executable).parent
    for script in venv_bin.iterdir():  # pip's console scripts: same code, the view's interpreter
        try:
            first, rest = script.read_text().split("\n", 1)
        except (UnicodeDecodeError, IsADirectoryError, ValueError):
            continue
        if first.startswith("#!") and "python" in first and not (view / "bin" / script.name).exists():
            (view / "bin" / script.name).write_text(f"#!{view / 'bin' / 'python'}\n{rest}")
            (view / "bin" / script.name).chmod(0o755)
    _run(["chmod", "-R", "a+rX", str(base)])
    py = view / "bin" / "python"
    proc = runs(py, env)
    if proc.returncode != 0:
        _unavailable(f"the view of the environment for other users does not import the course: {proc.stderr[-500:]}")
    return py, env


class Hub:
    """A JupyterHub process and a small client of its REST API and of the users' servers behind its proxy."""

    def __init__(self, base: Path, env_bin: Path, student_config: Path, spawn_env: dict, course: Path, course_env: dict):
        import requests

        self.requests = requests
        self.tokens: dict[str, str] = {}
        for attempt in range(2):  # a port picked free can be taken before the hub binds it: then once more
            try:
                return self._launch(base, env_bin, student_config, spawn_env, course, course_env)
            except AssertionError:
                retry = not attempt and self.proc.poll() is not None and "address already in use" in self.tail().lower()
                self._kill()
                if not retry:
                    raise

    def _launch(self, base: Path, env_bin: Path, student_config: Path, spawn_env: dict, course: Path, course_env: dict):
        self.port, self.api_port, self.hub_port = _free_port(), _free_port(), _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(32)
        self.log = base / "hub.log"
        cfg = base / "jupyterhub_config.py"
        # the same file as the README's recipe; the test only chooses ports, paths and the admin token
        cfg.write_text("\n".join([
            "c = get_config()",
            f"c.JupyterHub.bind_url = 'http://127.0.0.1:{self.port}'",
            f"c.JupyterHub.hub_port = {self.hub_port}",
            f"c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{self.api_port}'",
            f"c.JupyterHub.db_url = 'sqlite:///{base / 'jupyterhub.sqlite'}'",
            f"c.JupyterHub.cookie_secret_file = '{base / 'jupyterhub_cookie_secret'}'",
            "c.JupyterHub.spawner_class = 'jupyterhub.spawner.LocalProcessSpawner'",
            f"c.Spawner.cmd = ['{env_bin / 'jupyterhub-singleuser'}']",
            "c.Spawner.start_timeout = 180",
            "c.Spawner.http_timeout = 180",
            f"c.Authenticator.allowed_users = {set([INSTRUCTOR, *STUDENTS])!r}",
            f"c.Authenticator.admin_users = {{'{INSTRUCTOR}'}}",
            f"c.JupyterHub.services = [{{'name': 'course-admin', 'api_token': '{self.token}'}}]",
            "c.JupyterHub.load_roles = [{'name': 'admin', 'services': ['course-admin']}]",
            f"SPAWN_ENV = {spawn_env!r}",
            f"INSTRUCTOR, COURSE, COURSE_ENV = {INSTRUCTOR!r}, {str(course)!r}, {course_env!r}",
            f"STUDENT_CONFIG = {str(student_config)!r}",
            "def pre_spawn_hook(spawner):",
            "    # students: nbgrader's Assignments tab only; the instructor: every panel, started in the course",
            "    env = dict(SPAWN_ENV)",
            "    if spawner.user.name == INSTRUCTOR:",
            "        spawner.notebook_dir = COURSE",
            "        env.update(COURSE_ENV)",
            "    else:",
            "        env['JUPYTER_CONFIG_PATH'] = STUDENT_CONFIG + ':' + SPAWN_ENV['JUPYTER_CONFIG_PATH']",
            "    spawner.environment = env",
            "c.Spawner.pre_spawn_hook = pre_spawn_hook",
        ]) + "\n")
        self.config = cfg
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', SYSTEM_PATH)}")
        self.proc = subprocess.Popen([str(Path(sys.executable).parent / "jupyterhub"), "-f", str(cfg)], cwd=base, env=env,
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        self._wait(lambda: self.api("get", "/hub/api/", timeout=10).ok, 90, "the hub to answer")

    def tail(self) -> str:
        return self.log.read_text()[-4000:] if self.log.exists() else ""

    def _wait(self, ready, timeout: float, what: str) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"the hub exited (code {self.proc.returncode}) while waiting for {what}:\n{self.tail()}")
            try:
                if ready():
                    return
            except (self.requests.ConnectionError, self.requests.Timeout):
                pass
            time.sleep(1)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n{self.tail()}")

    def api(self, method: str, path: str, token: str | None = None, timeout: float = 120, **kw):
        headers = {"Authorization": f"token {token or self.token}"}
        return self.requests.request(method, self.url + path, headers=headers, timeout=timeout, allow_redirects=False,
                                     **kw)

    def start_server(self, user: str) -> None:
        r = self.api("post", f"/hub/api/users/{user}/server")
        assert r.status_code in (201, 202), f"starting {user}'s server: {r.status_code} {r.text}\n{self.tail()}"

    def wait_ready(self, user: str) -> None:
        def ready():
            r = self.api("get", f"/hub/api/users/{user}")
            return r.ok and (r.json().get("servers", {}).get("", {}) or {}).get("ready")

        self._wait(ready, 200, f"{user}'s server")
        r = self.api("post", f"/hub/api/users/{user}/tokens", json={"note": "course test"})
        assert r.status_code in (200, 201), f"token for {user}: {r.status_code} {r.text}"
        self.tokens[user] = r.json()["token"]

    def server(self, method: str, user: str, path: str, as_user: str | None = None, **kw):
        """``path`` on ``user``'s server, through the proxy, with the token of ``as_user`` (default: ``user``)."""
        return self.api(method, f"/user/{user}{path}", token=self.tokens[as_user or user], **kw)

    def run_in_kernel(self, user: str, code: str) -> str:
        """Run ``code`` in a new kernel of ``user``'s server (its Jupyter API, over the proxy); its stdout."""
        import websocket

        r = self.server("post", user, "/api/kernels", json={"name": "python3"})
        assert r.status_code == 201, f"{user}: starting a kernel: {r.status_code} {r.text}"
        kid = r.json()["id"]
        ws = websocket.create_connection(f"ws://127.0.0.1:{self.port}/user/{user}/api/kernels/{kid}/channels",
                                         header=[f"Authorization: token {self.tokens[user]}"], timeout=120)
        try:
            msg_id = uuid.uuid4().hex
            ws.send(json.dumps({
                "header": {"msg_id": msg_id, "username": user, "session": uuid.uuid4().hex, "msg_type": "execute_request",
                           "version": "5.3", "date": ""},
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                            "allow_stdin": False, "stop_on_error": True}}))
            # the reply (shell channel) and the output (iopub) come over different sockets, in either order:
            # done when the reply has come and iopub said "idle" for this request (after all its output)
            out, replied, idle, t0 = [], False, False, time.monotonic()
            while not (replied and idle):
                if time.monotonic() - t0 > 120:
                    raise AssertionError(f"{user}'s kernel did not finish in 120 s (output so far: {''.join(out)!r})")
                msg = json.loads(ws.recv())
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "stream":
                    out.append(msg["content"]["text"])
                elif msg["msg_type"] == "error":
                    raise AssertionError(f"{user}'s kernel: {msg['content']['ename']}: {msg['content']['evalue']}")
                elif msg["msg_type"] == "execute_reply":
                    replied = True
                elif msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                    idle = True
            return "".join(out)
        finally:
            ws.close()
            self.server("delete", user, f"/api/kernels/{kid}")

    def _kill(self) -> None:
        """Kill the hub and the proxy it started (in a process group of its own; its pid is in a file)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        pidfile = self.log.parent / "jupyterhub-proxy.pid"
        with contextlib.suppress(ValueError, OSError):
            pid = int(pidfile.read_text().strip())
            if b"configurable-http-proxy" in Path(f"/proc/{pid}/cmdline").read_bytes():  # that proxy, not a reused pid
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc.poll() is None:
            for user in [INSTRUCTOR, *STUDENTS]:  # each server: the hub stops it and its kernels
                with contextlib.suppress(Exception):
                    self.api("delete", f"/hub/api/users/{user}/server")
            os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
        self._kill()  # whatever is left: a hub that did not stop, a proxy it left behind


@pytest.fixture
def hub_setup():
    """Users, homes, the environment they run, the exchange, the instructor's course; all removed after."""
    if os.geteuid() != 0:
        _unavailable("the hub test creates system users and spawns their servers: run it as root (CI does)")
    if not shutil.which("configurable-http-proxy"):
        _unavailable("JupyterHub's proxy is missing: npm install -g configurable-http-proxy (see .ci/run)")
    if not shutil.which("useradd"):
        _unavailable("no useradd on this system")
    users = [INSTRUCTOR, *STUDENTS]
    base = Path(tempfile.mkdtemp(prefix="vae-hub-"))
    try:
        base.chmod(0o755)
        for user in users:
            _remove_user(user)  # a leftover of an interrupted run
            _run(["useradd", "-m", "-s", "/bin/bash", user])
            Path(pwd.getpwnam(user).pw_dir).chmod(0o700)  # Debian's useradd leaves homes 755: readable by all
        yield base, *_user_python(base, next(iter(STUDENTS)))
    finally:
        for user in users:
            _remove_user(user)
        shutil.rmtree(base, ignore_errors=True)


def test_hub_release_fetch_submit_collect_autograde_feedback_export(hub_setup):
    base, python, python_env = hub_setup
    env_bin = python.parent
    venv_prefix = Path(sys.executable).parent.parent  # the environment's share/ and etc/ (labextensions, server extensions)
    lesson = next(ls for ls in h.solution_lessons() if ls.name == LESSON)

    exchange = base / "exchange"
    exchange.mkdir()
    exchange.chmod(0o1777)  # nbgrader: every user writes, the sticky bit keeps their files theirs
    # what every user's Jupyter reads (the README's /etc/jupyter/nbgrader_config.py): exchange and course id
    shared_cfg = base / "etc-jupyter"
    shared_cfg.mkdir()
    (shared_cfg / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.Exchange.root = {str(exchange)!r}\nc.CourseDirectory.course_id = {COURSE_ID!r}\n")
    # students only: no formgrader, course list or create-assignment panels (the Assignments tab and Validate stay)
    student_cfg = base / "student-jupyter"
    (student_cfg / "labconfig").mkdir(parents=True)
    (student_cfg / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"jpserver_extensions": {
        "nbgrader.server_extensions.formgrader": False, "nbgrader.server_extensions.course_list": False,
        "nbgrader.server_extensions.assignment_list": True, "nbgrader.server_extensions.validate_assignment": True}}}))
    (student_cfg / "labconfig" / "page_config.json").write_text(json.dumps({"disabledExtensions": {
        "@jupyter/nbgrader:formgrader": True, "@jupyter/nbgrader:create-assignment": True,
        "@jupyter/nbgrader:course-list": True}}))
    for p in [shared_cfg, student_cfg, *shared_cfg.rglob("*"), *student_cfg.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)

    config_path = f"{shared_cfg}:{venv_prefix / 'etc' / 'jupyter'}"
    user_env = {"PATH": f"{env_bin}:{SYSTEM_PATH}", "OMP_NUM_THREADS": "1", "VAE_COURSE_QUICK": "1",
                "JUPYTER_CONFIG_PATH": config_path, "JUPYTER_PATH": str(venv_prefix / "share" / "jupyter"), **python_env}

    # --- the instructor's course: ~vaeinst/course, readable by the instructor only ----------------------
    home = Path(pwd.getpwnam(INSTRUCTOR).pw_dir)
    course = home / "course"
    (course / "solutions" / LESSON).mkdir(parents=True)
    shutil.copy2(lesson.solution, course / "solutions" / LESSON / NOTEBOOK)
    h.write_nbgrader_config(course, course)
    # the formgrader reads nbgrader_config.py from the server's working folder (the home) and ~/.jupyter
    (home / ".jupyter").mkdir()
    (home / ".jupyter" / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(course / 'nbgrader_config.py')!r})\n")
    _run(["chown", "-R", f"{INSTRUCTOR}:{INSTRUCTOR}", str(course), str(home / ".jupyter")])
    course.chmod(0o700)
    inst_env = dict(user_env, HOME=str(home), USER=INSTRUCTOR, LOGNAME=INSTRUCTOR,
                    VAE_COURSE_EXCHANGE=str(exchange), VAE_COURSE_ID=COURSE_ID)

    def instructor(*args: str) -> str:
        return h.run_nbgrader(course, inst_env, *args, user=INSTRUCTOR)

    hub = Hub(base, env_bin, student_cfg, user_env, course, {"VAE_COURSE_EXCHANGE": str(exchange), "VAE_COURSE_ID": COURSE_ID})
    try:
        for user in [INSTRUCTOR, *STUDENTS]:  # the servers start while the instructor prepares the lesson
            hub.start_server(user)
        instructor("generate_assignment", LESSON)
        instructor("release_assignment", LESSON)
        release = course / "lessons" / LESSON / NOTEBOOK
        assert (exchange / COURSE_ID / "outbound" / LESSON / NOTEBOOK).read_bytes() == release.read_bytes()
        for user in [INSTRUCTOR, *STUDENTS]:
            hub.wait_ready(user)

        # --- each student, through their own server only ---------------------------------------------
        lesson_json = {"course_id": COURSE_ID, "assignment_id": LESSON}
        for user, kind in STUDENTS.items():
            r = hub.server("get", user, "/assignments", params={"course_id": COURSE_ID})
            assert r.ok and r.json()["success"], f"{user}: assignment list: {r.status_code} {r.text[:2000]}"
            assert [(a["assignment_id"], a["status"]) for a in r.json()["value"]] == [(LESSON, "released")], r.text
            r = hub.server("post", user, "/assignments/fetch", json=lesson_json)
            assert r.ok and r.json()["success"], f"{user}: fetch: {r.status_code} {r.text[:2000]}"
            r = hub.server("get", user, f"/api/contents/{LESSON}/{NOTEBOOK}", params={"content": "1"})
            assert r.status_code == 200, f"{user}: reading the fetched lesson: {r.status_code} {r.text[:500]}"
            fetched = nbformat.from_dict(r.json()["content"])
            assert nbformat.writes(fetched) == nbformat.writes(nbformat.read(release, as_version=4)), \
                f"{user} did not fetch the released lesson"
            if h.FLOW_ANSWERS[kind] != []:
                answered = h.answer_exercises(fetched, lesson.solution, h.FLOW_ANSWERS[kind])
                r = hub.server("put", user, f"/api/contents/{LESSON}/{NOTEBOOK}",
                               json={"type": "notebook", "format": "json", "content": answered})
                assert r.status_code == 200, f"{user}: saving the answers: {r.status_code} {r.text[:500]}"
            r = hub.server("post", user, "/assignments/submit", json=lesson_json)
            assert r.ok and r.json()["success"], f"{user}: submit: {r.status_code} {r.text[:2000]}"
            assert any(a["status"] == "submitted" for a in r.json()["value"]), r.text[:2000]
        owner = {p.name.split("+")[0] for p in (exchange / COURSE_ID / "inbound").iterdir()}
        assert owner == set(STUDENTS), f"the inbox holds {owner}: each student submits as their login name"

        # --- permissions, through the students' servers ------------------------------------------------
        r = hub.server("get", "vaestu1", f"/api/contents/{LESSON}/{NOTEBOOK}", as_user="vaestu2")
        assert r.status_code == 403, f"vaestu2's token on vaestu1's server: expected 403, got {r.status_code}"
        r = hub.server("get", "vaestu2", f"/api/contents/..%2Fvaestu1%2F{LESSON}%2F{NOTEBOOK}")
        assert r.status_code in (403, 404), f"a path outside vaestu2's home: expected 403/404, got {r.status_code}"
        probe = "\n".join([
            "import json, os",
            "def attempt(f):",
            "    try:",
            "        f()",
            "        return 'allowed'",
            "    except PermissionError:",
            "        return 'denied'",
            "print(json.dumps({",
            f"    'own copy': attempt(lambda: open({f'/home/vaestu2/{LESSON}/{NOTEBOOK}'!r}).read()),",
            f"    'other student': attempt(lambda: open({f'/home/vaestu1/{LESSON}/{NOTEBOOK}'!r}).read()),",
            f"    'exchange inbox': attempt(lambda: os.listdir({str(exchange / COURSE_ID / 'inbound')!r})),",
            f"    'solutions': attempt(lambda: open({str(course / 'solutions' / LESSON / NOTEBOOK)!r}).read()),",
            f"    'gradebook': attempt(lambda: open({str(course / 'gradebook.db')!r}, 'rb').read()),",
            "}))",
        ])
        seen = json.loads(hub.run_in_kernel("vaestu2", probe).strip().splitlines()[-1])
        assert seen == {"own copy": "allowed", "other student": "denied", "exchange inbox": "denied",
                        "solutions": "denied", "gradebook": "denied"}, seen
        # extensions: students have no formgrader, the instructor's server (started in the course) has it
        assert hub.server("get", "vaestu3", "/formgrader").status_code == 404
        r = hub.server("get", INSTRUCTOR, "/formgrader/api/assignments")
        assert r.status_code == 200 and LESSON in r.text, f"instructor's formgrader: {r.status_code} {r.text[:500]}"

        # --- instructor: collect, autograde, feedback, export ------------------------------------------
        instructor("collect", LESSON)
        assert sorted(p.name for p in (course / "submitted").iterdir()) == sorted(STUDENTS)
        instructor("autograde", LESSON)
        instructor("generate_feedback", LESSON)
        instructor("release_feedback", LESSON)
        r = hub.server("post", "vaestu2", "/assignments/fetch_feedback", json=lesson_json)
        assert r.ok and r.json()["success"], f"vaestu2: fetch_feedback: {r.status_code} {r.text[:2000]}"
        r = hub.server("get", "vaestu2", f"/api/contents/{LESSON}/feedback")
        assert r.status_code == 200 and r.json()["content"], "vaestu2 got no feedback folder"
        stamp = r.json()["content"][0]["name"]
        r = hub.server("get", "vaestu2", f"/api/contents/{LESSON}/feedback/{stamp}/{LESSON}.html", params={"content": "1"})
        assert r.status_code == 200 and "Score:" in r.json()["content"], "vaestu2's feedback has no score"

        instructor("export", f"--to={course / 'grades.csv'}")
        rows = h.read_export(course / "grades.csv", LESSON)
        assert {u: rows[u][0] for u in STUDENTS} == {u: h.FLOW_SCORES[k] for u, k in STUDENTS.items()}, rows
        assert {rows[u][1] for u in STUDENTS} == {h.FLOW_MAX}, rows
        # the judge on the same submissions, as the instructor: the same scores in the same gradebook
        runuser = shutil.which("runuser", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin") or "runuser"
        proc = subprocess.run([runuser, "-u", INSTRUCTOR, "--", "env", *(f"{k}={v}" for k, v in inst_env.items()),
                               str(env_bin / "vae-course"), "grade-submissions", "00", "--force"],
                              cwd=course, env=inst_env, capture_output=True, text=True)
        assert proc.returncode == 0 and "3 submission(s)" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
        instructor("export", f"--to={course / 'judged.csv'}")
        judged = h.read_export(course / "judged.csv", LESSON)
        assert {u: judged[u][0] for u in STUDENTS} == {u: h.FLOW_SCORES[k] for u, k in STUDENTS.items()}, judged
        # the untouched stub in vaestu3's home was never modified by grading
        r = hub.server("get", "vaestu3", f"/api/contents/{LESSON}/{NOTEBOOK}", params={"content": "1"})
        assert nbformat.writes(nbformat.from_dict(r.json()["content"])) == nbformat.writes(
            nbformat.read(release, as_version=4))
    except BaseException:
        print(f"--- the hub's log ---\n{hub.tail()}")
        raise
    finally:
        hub.stop()
