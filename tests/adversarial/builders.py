"""Build a tiny nbgrader course and adversarial submissions for it, programmatically.

The fixture lesson ``00_fixture`` has three exercises (softplus, log-sum-exp, the KL of a
diagonal Gaussian to N(0, I)) whose tests lean on what real lessons lean on:
``torch.testing.assert_close``, a bare ``abs(...) < tol`` assert, ``torch.distributions`` as
the reference, and a course helper ``check_close`` defined in a locked cell.

Submissions are made from the solution notebook: hidden tests removed (as nbgrader's release
does), each answer either the solution, the stub (``raise NotImplementedError()``), or a wrong
answer of the right shape, plus cells the attacker adds.
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

LESSON = "00_fixture"
POINTS = {"test_ex1_softplus": 2, "test_ex2_lse": 2, "test_ex3_kl": 1}
TOTAL = sum(POINTS.values())


def _meta(grade_id, *, grade=False, solution=False, locked=False, points=None):
    m = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution}
    if points is not None:
        m["points"] = points
    return {"nbgrader": m}


def _code(src, meta=None):
    return {"cell_type": "code", "execution_count": None, "metadata": meta or {}, "outputs": [], "source": src}


def _md(src, meta=None):
    return {"cell_type": "markdown", "metadata": meta or {}, "source": src}


ANSWERS = {
    "ex1_softplus": (
        "def softplus(x):\n    ### BEGIN SOLUTION\n"
        "    return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))\n    ### END SOLUTION\n",
        "    return torch.zeros_like(x)\n",
    ),
    "ex2_lse": (
        "def logsumexp(x, dim=-1):\n    ### BEGIN SOLUTION\n"
        "    m = x.amax(dim=dim, keepdim=True)\n"
        "    return (m + (x - m).exp().sum(dim=dim, keepdim=True).log()).squeeze(dim)\n    ### END SOLUTION\n",
        "    return x.sum(dim=dim) * 0\n",
    ),
    "ex3_kl": (
        "def kl_std_normal(mu, logvar):\n    ### BEGIN SOLUTION\n"
        "    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)\n    ### END SOLUTION\n",
        "    return torch.zeros(mu.shape[:-1])\n",
    ),
}

TESTS = {
    "test_ex1_softplus": (
        "x = torch.tensor([-1000.0, -1.0, 0.0, 1.0, 1000.0])\n"
        "out = softplus(x)\n"
        "assert torch.isfinite(out).all(), 'softplus must stay finite for large |x|: use log1p(exp(-|x|))'\n"
        "torch.testing.assert_close(out, torch.nn.functional.softplus(x))\n"
        "### BEGIN HIDDEN TESTS\n"
        "g = torch.Generator().manual_seed(0)\n"
        "for shape in [(3,), (4, 5)]:\n"
        "    y = torch.randn(shape, generator=g) * 50\n"
        "    torch.testing.assert_close(softplus(y), torch.nn.functional.softplus(y))\n"
        "### END HIDDEN TESTS\n"
    ),
    "test_ex2_lse": (
        "out = logsumexp(torch.tensor([0.0, 0.0]))\n"
        "assert abs(float(out) - math.log(2)) < 1e-6, f'logsumexp([0, 0]) should be log 2 = 0.6931, got {float(out):.4f}'\n"
        "### BEGIN HIDDEN TESTS\n"
        "y = torch.randn(4, 6, generator=torch.Generator().manual_seed(1)) * 100\n"
        "assert abs(float((logsumexp(y, dim=1) - torch.logsumexp(y, dim=1)).abs().max())) < 1e-4, 'logsumexp differs from torch.logsumexp'\n"
        "### END HIDDEN TESTS\n"
    ),
    "test_ex3_kl": (
        "mu, logvar = torch.zeros(2, 3), torch.zeros(2, 3)\n"
        "assert float(kl_std_normal(mu, logvar).abs().max()) < 1e-7, 'KL at mu=0, logvar=0 should be 0'\n"
        "mu = torch.full((2, 3), 2.0)\n"
        "ref = torch.distributions.kl_divergence(\n"
        "    torch.distributions.Normal(mu, (0.5 * logvar).exp()), torch.distributions.Normal(0.0, 1.0)).sum(-1)\n"
        "check_close(kl_std_normal(mu, logvar), ref, 'KL at mu=2 should be 2 per dimension')\n"
        "### BEGIN HIDDEN TESTS\n"
        "check_close(kl_std_normal(mu, logvar + 1.0), torch.distributions.kl_divergence(\n"
        "    torch.distributions.Normal(mu, (0.5 * (logvar + 1.0)).exp()), torch.distributions.Normal(0.0, 1.0)).sum(-1),\n"
        "    'KL with logvar=1 is off')\n"
        "### END HIDDEN TESTS\n"
    ),
}


def solution_notebook() -> dict:
    cells = [
        _md("# 00 fixture\nA tiny lesson for testing the grader."),
        _code("import math\n\nimport torch\n"),
        _code("def check_close(a, b, msg):\n    assert torch.allclose(a, b, atol=1e-5), f'{msg}: got {a}, expected {b}'\n",
              _meta("helpers", locked=True)),
        _md("## Exercise 1"),
        _code(ANSWERS["ex1_softplus"][0], _meta("ex1_softplus", solution=True)),
        _code(TESTS["test_ex1_softplus"], _meta("test_ex1_softplus", grade=True, locked=True, points=2)),
        _md("## Exercise 2"),
        _code(ANSWERS["ex2_lse"][0], _meta("ex2_lse", solution=True)),
        _code(TESTS["test_ex2_lse"], _meta("test_ex2_lse", grade=True, locked=True, points=2)),
        _md("## Exercise 3"),
        _code(ANSWERS["ex3_kl"][0], _meta("ex3_kl", solution=True)),
        _code(TESTS["test_ex3_kl"], _meta("test_ex3_kl", grade=True, locked=True, points=1)),
        _code("print('done')\n"),
    ]
    return {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                                         "name": "python3"}, "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def make_course(root: Path, lessons=(LESSON,)) -> Path:
    """A course folder: nbgrader_config.py, solutions/<lesson>/<lesson>.ipynb, lessons/ and workspace/."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text("c = get_config()\n")
    for name in lessons:
        d = root / "solutions" / name
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{name}.ipynb").write_text(json.dumps(solution_notebook(), indent=1))
        (root / "lessons" / name).mkdir(parents=True, exist_ok=True)
        (root / "workspace" / name).mkdir(parents=True, exist_ok=True)
    return root


_HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)
_SOLUTION = re.compile(r"    ### BEGIN SOLUTION\n.*?    ### END SOLUTION\n", re.S)


def submission(answers: str | dict = "solution", added: dict | None = None, before_tests: dict | None = None) -> dict:
    """A learner notebook.

    answers: "solution" | "stub" | "wrong", or {exercise_id: one of those or a function body}.
    added: {position: source} cells inserted before cell ``position`` (0-based, in the solution order).
    before_tests: {test_id: source}: a cell inserted right before that test cell.
    """
    nb = copy.deepcopy(solution_notebook())
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        gid = meta.get("grade_id")
        if meta.get("grade"):
            cell["source"] = _HIDDEN.sub("", cell["source"])
        if meta.get("solution"):
            choice = answers if isinstance(answers, str) else answers.get(gid, "solution")
            if choice == "solution":
                body = None
            elif choice == "stub":
                body = "    # YOUR CODE HERE\n    raise NotImplementedError()\n"
            elif choice == "wrong":
                body = ANSWERS[gid][1]
            else:
                body = choice
            if body is not None:
                cell["source"] = _SOLUTION.sub(lambda m: body, cell["source"])
            else:
                cell["source"] = cell["source"].replace("    ### BEGIN SOLUTION\n", "").replace("    ### END SOLUTION\n", "")
    for test_id, src in (before_tests or {}).items():
        i = next(i for i, c in enumerate(nb["cells"]) if c["metadata"].get("nbgrader", {}).get("grade_id") == test_id)
        nb["cells"].insert(i, _code(src))
    for pos, src in sorted((added or {}).items(), reverse=True):
        nb["cells"].insert(pos, _code(src))
    return nb


def write(nb: dict, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1))
    return path


# ---------------------------------------------------------------------------------------------
# Adversarial cases: (answers, added cell source, construct the scan must name).
# Each would earn points without a defence: either it swallows the exceptions of stub answers,
# or it makes the checks of wrong answers pass.
WRAP = ("def _wrap(lines):\n"
        "    return ['try:\\n'] + ['    ' + l for l in lines] + ['\\nexcept BaseException:\\n    pass\\n']\n")
CASES = {
    "input_transformer": ("stub", "ip = get_ipython()\n" + WRAP + "ip.input_transformers_post.append(_wrap)\n",
                          "input_transformers_post"),
    "input_transformer_cleanup": ("stub", WRAP + "get_ipython().input_transformers_cleanup.append(_wrap)\n",
                                  "input_transformers_cleanup"),
    "ast_transformer": ("stub", (
        "import ast\n"
        "class Swallow(ast.NodeTransformer):\n"
        "    def visit_Module(self, node):\n"
        "        h = ast.ExceptHandler(type=ast.Name('BaseException', ast.Load()), name=None, body=[ast.Pass()])\n"
        "        node.body = [ast.Try(body=node.body or [ast.Pass()], handlers=[h], orelse=[], finalbody=[])]\n"
        "        return ast.fix_missing_locations(node)\n"
        "get_ipython().ast_transformers.append(Swallow())\n"), "ast_transformers"),
    "custom_exc": ("stub", "get_ipython().set_custom_exc((Exception,), lambda *a, **k: None)\n", "set_custom_exc"),
    "excepthook": ("stub", "import sys\nsys.excepthook = lambda *a: None\n", "excepthook"),
    "excepthook_os_exit": ("stub", "import os, sys\nsys.excepthook = lambda *a: os._exit(0)\n", "excepthook"),
    "traceback_patch": ("stub", "import traceback\ntraceback.format_exception = lambda *a, **k: []\n",
                        "traceback.format_exception"),
    "print_shadow": ("stub", "def print(*a, **k):\n    pass\n", "def print"),
    "display_patch": ("stub", "import IPython.display\nIPython.display.display = lambda *a, **k: None\n",
                      "IPython.display.display"),
    "builtins_module": ("wrong", "import builtins\nbuiltins.abs = lambda x: 0\n", "import builtins"),
    "builtins_assertion": ("stub", "import builtins\nbuiltins.AssertionError = type('Fine', (Exception,), {})\n",
                           "import builtins"),
    "dunder_builtins": ("wrong", "__builtins__.abs = lambda x: 0\n", "__builtins__"),
    "shadow_abs": ("wrong", "abs = lambda x: 0\n", "abs = ..."),
    "shadow_isinstance": ("wrong", "def isinstance(*a):\n    return True\n", "def isinstance"),
    "shadow_exception": ("stub", "NotImplementedError = StopIteration\n", "NotImplementedError = ..."),
    "redefine_helper": ("wrong", "def check_close(*a, **k):\n    pass\n", "check_close"),
    "assert_close_patch": ("wrong", "torch.testing.assert_close = lambda *a, **k: None\n",
                           "torch.testing.assert_close"),
    "allclose_patch": ("wrong", "torch.allclose = lambda *a, **k: True\n", "torch.allclose"),
    "setattr_patch": ("wrong", "setattr(torch.testing, 'assert_close', lambda *a, **k: None)\n", "setattr"),
    "reference_patch": ("wrong", "torch.distributions.kl_divergence = lambda p, q: torch.zeros_like(p.loc)\n",
                        "torch.distributions.kl_divergence"),
    "numpy_patch": ("wrong", "import numpy as np\nnp.testing.assert_allclose = lambda *a, **k: None\n",
                    "np.testing.assert_allclose"),
    "rebind_torch": ("wrong", "class T:\n    def __getattr__(self, k):\n        return lambda *a, **k: None\ntorch = T()\n",
                     "torch"),
    "import_as_torch": ("wrong", "import unittest as torch\n", "import"),
    "sys_modules": ("wrong", "import sys, types\nsys.modules['torch.testing'] = types.SimpleNamespace()\n",
                    "sys.modules"),
    "settrace": ("stub", "import sys\nsys.settrace(lambda *a: None)\n", "settrace"),
    "ctypes": ("stub", "import ctypes\n", "ctypes"),
    "exec_hidden": ("wrong", "exec('torch.testing.assert_close = lambda *a, **k: None')\n", "exec"),
    "events_hook": ("stub", "get_ipython().events.register('pre_run_cell', lambda *a: None)\n", "events.register"),
    "register_magic": ("stub", "get_ipython().register_magic_function(lambda line, cell=None: None, 'cell', 'quiet')\n",
                       "register_magic_function"),
    "unknown_magic": ("stub", "%config InteractiveShell.ast_node_interactivity = 'none'\n", "%config"),
    "lying_tensor": ("wrong", (
        "class Always(torch.Tensor):\n"
        "    @classmethod\n"
        "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
        "        return True\n"), "__torch_function__"),
    "tensor_method_patch": ("wrong", "torch.Tensor.__sub__ = lambda a, b: torch.zeros(())\n", "torch.Tensor.__sub__"),
    "atexit_hook": ("stub", "import atexit, os\natexit.register(lambda: os._exit(0))\n", "atexit"),
    "frame_hack": ("stub", "import sys\nf = sys._getframe()\n", "_getframe"),
    "grader_guard": ("stub", "_vae_grader_x = None\n", "_vae_grader"),
    "global_in_function": ("wrong", "def sneaky():\n    global check_close\n    check_close = lambda *a: None\nsneaky()\n",
                           "check_close"),
}


def adversarial(name: str, where: str = "top") -> dict:
    """The submission for ``CASES[name]``: answers + the tamper cell (top: right after setup;
    solution: inside the first answer cell)."""
    answers, src, _ = CASES[name]
    if where == "solution":
        nb = submission(answers)
        cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "ex1_softplus")
        cell["source"] = src + "\n" + cell["source"]
        return nb
    return submission(answers, added={2: src})


# Legitimate learner code the scan must leave alone.
LEGIT = [
    "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.rcParams['figure.figsize'] = (4, 3)\n",
    "%%time\ntotal = 0\nfor i in range(10):\n    total += i\n",
    "import numpy as np\nx = np.linspace(0, 1, 5)\nprint(x.sum())\n",
    "torch.backends.cudnn.deterministic = True\ntorch.manual_seed(0)\n",
    "import warnings\nwarnings.filterwarnings('ignore', category=UserWarning)\n",
    "!ls\n",
    "import torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    "        self.fc = nn.Linear(2, 2)\n    def forward(self, x):\n        return self.fc(x)\n",
    "%%capture\nimport math\n",
    "from vae_core import seed_everything\nseed_everything(0)\n",
    "results = {}\nresults['kl'] = 1.0\nsum_kl = sum([1.0, 2.0])\n",
    "import torch\nimport math\n",
    "id = 3\ninput = torch.zeros(2)\nfilter = None\n",
]
