"""The front door, tried as a learner tries it: `make lab`, then the server's API and a real browser.

One JupyterLab server per module, started exactly as the README says (`make lab`, with
`ARGS="--no-browser --port P ..."` for headless use) in a temporary copy of the course, so the
learner's workspace it creates is not the developer's. Where this test runs from a virtual
environment `make setup` did not build (a conda env), it runs `vae-course lab`, the command
`make lab` calls, instead.

- REST API: every lesson in lessons/MANIFEST.json is in the workspace and opens (HTTP 200, the
  released cells); lessons/, README.md and vae_core/ are reachable; nbgrader's instructor server
  extensions are off and Validate's is on, and Validate answers from the course root (where
  nbgrader_config.py is).
- Browser: headless Chromium (Debian's `chromium` + `chromium-driver`, driven by selenium) opens
  lesson 05 from the file browser, finds Validate in the notebook toolbar, runs the setup cell
  and reads its output. Skipped with a reason where Chromium is not installed, unless
  VAE_COURSE_REQUIRE_BROWSER=1 (set by .ci/run, which installs it), where that is a failure.
  On failure a screenshot is saved and its path given; VAE_COURSE_SCREENSHOTS=DIR keeps one of
  every run.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from vae_core.grading import lab
from vae_core.grading.course import list_lessons, read_manifest

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
BROWSER, DRIVER = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
pytestmark = [pytest.mark.slow]


# --- the command line make lab builds (fast) --------------------------------------------------

def test_lab_command_roots_the_server_at_the_course_and_keeps_allow_root_with_extra_args(tmp_path, monkeypatch):
    (tmp_path / "workspace" / "00_x").mkdir(parents=True)
    (tmp_path / "solutions" / "00_x").mkdir(parents=True)
    (tmp_path / "solutions" / "00_x" / "00_x.ipynb").write_text("{}")
    (tmp_path / "workspace" / "00_x" / "00_x.ipynb").write_text("{}")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    argv = lab.lab_command(tmp_path, ["--no-browser", "--port", "8899"])
    assert f"--ServerApp.root_dir={tmp_path.resolve()}" in argv and "--allow-root" in argv
    assert argv[-3:] == ["--port", "8899", "workspace/00_x/00_x.ipynb"]
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "--allow-root" not in lab.lab_command(tmp_path, [])
    env = lab.lab_environment(tmp_path, {"JUPYTER_CONFIG_PATH": "/elsewhere"})
    assert env["JUPYTER_CONFIG_PATH"] == f"{tmp_path.resolve() / 'jupyter_config'}{os.pathsep}/elsewhere"
    assert env["OMP_NUM_THREADS"] == "1"
    assert lab.lab_environment(tmp_path, {"OMP_NUM_THREADS": "4"})["OMP_NUM_THREADS"] == "4"


# --- one real server, started the way the README says -----------------------------------------

def _copy_course(dest: Path) -> Path:
    """The tracked files of the course, with their timestamps (so make sees the venv as up to date)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, root: Path, port: int, token: str, proc: subprocess.Popen, log: Path):
        self.root, self.port, self.token, self.proc, self.log = root, port, token, proc, log

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}{sep}token={self.token}"

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def post_json(self, path: str, body: dict, timeout: float = 240) -> dict:
        req = urllib.request.Request(self.url(path), data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def jupyter_process(self):
        import psutil

        for child in psutil.Process(self.proc.pid).children(recursive=True) + [psutil.Process(self.proc.pid)]:
            if "jupyterlab" in " ".join(child.cmdline()):
                return child
        raise AssertionError(f"no jupyterlab process under PID {self.proc.pid}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not shutil.which("git") or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout of the course to copy")
    tmp = tmp_path_factory.mktemp("front-door")
    root = _copy_course(tmp / "course")
    port, token = _free_port(), os.urandom(12).hex()
    args = f"--no-browser --ServerApp.ip=127.0.0.1 --port={port} --IdentityProvider.token={token}"
    stamp = VENV / ".installed"
    if shutil.which("make") and stamp.exists():  # exactly the README's command, on this venv, no reinstall
        cmd = ["make", "--no-print-directory", "lab", f"VENV={VENV}", "-o", str(stamp), f"ARGS={args}"]
    else:
        cmd = [sys.executable, "-m", "vae_core.grading.cli", "lab", *args.split()]
    env = dict(os.environ, VAE_COURSE_QUICK="1", OMP_NUM_THREADS="1",
               PATH=f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
               JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))
    log = tmp / "lab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    srv = Server(root, port, token, proc, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"`{' '.join(cmd)}` exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if srv.get("api/status")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer on port {port} within 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield srv
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_make_lab_says_what_it_did(server):
    text = server.log.read_text()
    assert "Your workspace: copied lesson(s) 00, 01" in text, text[-2000:]
    assert f"Opening the course at {server.root}" in text


def test_every_lesson_is_in_the_file_browser_and_opens(server):
    manifest = read_manifest(server.root)["lessons"]
    assert set(manifest) == {lesson.name for lesson in list_lessons(server.root)}
    for folder in ("workspace", "lessons"):
        status, body = server.get(f"api/contents/{folder}")
        assert status == 200, f"/api/contents/{folder}: HTTP {status}"
        listed = {item["name"] for item in json.loads(body)["content"]}
        assert set(manifest) <= listed, f"{folder}/ lists {sorted(listed)}, expected every lesson in {sorted(manifest)}"
    for name in manifest:
        rel = f"workspace/{name}/{name}.ipynb"
        status, body = server.get(f"api/contents/{rel}?content=1")
        assert status == 200, f"{rel}: HTTP {status}"
        model = json.loads(body)
        released = json.loads((server.root / "lessons" / name / f"{name}.ipynb").read_text())
        assert model["type"] == "notebook"
        assert [c["source"] for c in model["content"]["cells"]] == [
            "".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in released["cells"]]
    for path in ("README.md", "vae_core/losses.py", "nbgrader_config.py"):
        assert server.get(f"api/contents/{path}")[0] == 200, f"{path} is not reachable from the file browser"


def test_instructor_extensions_are_off_validate_is_on_and_runs_from_the_course_root(server):
    assert server.get("formgrader")[0] == 404, "the formgrader server extension should be off for learners"
    status, page = server.get("lab")
    assert status == 200
    config = re.search(r'<script id="jupyter-config-data"[^>]*>(.*?)</script>', page.decode(), re.S)
    assert config, "the /lab page carries no jupyter-config-data"
    disabled = json.loads(config.group(1))["disabledExtensions"]
    for ext in ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                "@jupyter/nbgrader:course-list", "@jupyter/nbgrader:assignment-list",
                "@jupyterlab/apputils-extension:announcements"):
        assert ext in disabled, f"{ext} should be disabled in the learner's JupyterLab; disabled: {disabled}"
    assert "@jupyter/nbgrader:validate-assignment" not in disabled
    # Validate reads nbgrader_config.py from the server's working folder: it must be the course root
    assert Path(server.jupyter_process().cwd()).resolve() == server.root.resolve()
    result = server.post_json("assignments/validate", {"path": "workspace/00_orientation/00_orientation.ipynb"})
    assert result["success"] is True, result
    assert result["value"].get("failed"), f"the untouched stub should fail validation, got {result['value']}"


# --- a real browser ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    if not (BROWSER and DRIVER):
        reason = "no Chromium here (Debian packages chromium and chromium-driver); .ci/run installs them"
        if os.environ.get("VAE_COURSE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"VAE_COURSE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = BROWSER
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _screenshot(driver, name: str) -> Path:
    folder = Path(os.environ.get("VAE_COURSE_SCREENSHOTS") or (REPO / ".vae_course" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def test_a_browser_opens_lesson_05_from_the_file_browser_validates_and_runs_the_setup_cell(server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    driver, wait = browser, WebDriverWait(browser, 180)
    lesson = "05_latent_spaces"
    step = "load JupyterLab"
    try:
        driver.get(server.url("lab"))

        def open_in_file_browser(name: str) -> None:
            xpath = (f"//li[contains(@class, 'jp-DirListing-item')]"
                     f"[.//span[contains(@class, 'jp-DirListing-itemText')][normalize-space()='{name}']]")
            item = wait.until(EC.element_to_be_clickable((By.XPATH, xpath)))
            ActionChains(driver).double_click(item).perform()

        for step_name in ("workspace", lesson, f"{lesson}.ipynb"):
            step = f"open {step_name} in the file browser"
            open_in_file_browser(step_name)

        step = "find the notebook and its Validate button"
        panel_xpath = ("//div[contains(@class, 'jp-NotebookPanel') and not(contains(@class, 'lm-mod-hidden'))]"
                       f"[.//div[contains(@class, 'jp-Cell')]]")
        tab = wait.until(EC.presence_of_element_located(
            (By.XPATH, f"//li[contains(@class, 'lm-TabBar-tab') and contains(@class, 'lm-mod-current')]"
                       f"[.//div[normalize-space()='{lesson}.ipynb']]")))
        assert tab is not None
        validate = wait.until(EC.visibility_of_element_located(
            (By.XPATH, panel_xpath + "//*[contains(@class, 'validate-button')]")))
        assert "Validate" in validate.text, f"the toolbar button reads {validate.text!r}"

        step = "wait for the kernel"
        wait.until(EC.presence_of_element_located(
            (By.XPATH, panel_xpath + "//*[contains(@class, 'jp-Notebook-ExecutionIndicator')][@data-status='idle']")))

        step = "run the setup cell"
        first_cell = f"({panel_xpath}//div[contains(@class, 'jp-CodeCell')])[1]"

        def fresh(action):  # JupyterLab re-renders cells and outputs while a notebook settles: look them up again
            def attempt(d):
                try:
                    return action(d)
                except StaleElementReferenceException:
                    return False
            return attempt

        def click_editor(d):
            editor = d.find_element(By.XPATH, first_cell + "//div[contains(@class, 'cm-content')]")
            if not (editor.is_displayed() and editor.is_enabled()):
                return False
            editor.click()
            return True

        def printed(d):
            text = "".join(e.text for e in d.find_elements(By.XPATH, first_cell + "//div[contains(@class, 'jp-OutputArea-output')]"))
            return text.strip() if "device" in text else False

        wait.until(fresh(click_editor))
        ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
        text = wait.until(fresh(printed))
        assert text == "quick mode: True; device: cpu", f"setup cell printed {text!r}"
        print(f"browser: opened workspace/{lesson}/{lesson}.ipynb from the file browser; toolbar button "
              f"{validate.text!r}; setup cell printed {text!r}")
        if os.environ.get("VAE_COURSE_SCREENSHOTS"):
            print(f"screenshot: {_screenshot(driver, 'lesson05-setup-cell')}")
    except Exception as err:
        shot = _screenshot(driver, "front-door-failure")
        raise AssertionError(f"browser test failed at step '{step}' ({type(err).__name__}: {err}); "
                             f"screenshot: {shot}; server log: {server.log}") from err
