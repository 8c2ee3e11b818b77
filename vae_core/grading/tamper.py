"""The tamper report for instructors, and the graded copy's preamble.

Scores are decided by the judge (:mod:`.judge`), outside the learner's kernel, so nothing here
defends a grade any more:

1. A static scan (:func:`scan_notebook`, ``vae-course check-tamper``) of every cell the learner
   can edit: solution cells, cells they added, and course cells they changed (locked cells are
   restored from ``solutions/`` anyway). It lists constructs that change how tests run: IPython
   input/AST transformers, custom exception handlers, ``sys.excepthook``/``settrace``, replaced
   builtins, monkeypatched library functions (``torch.allclose = ...``), redefined course helpers,
   ``ctypes``, frame hacking, unknown magics, objects that lie to comparisons
   (``__torch_function__``, ``__eq__``). ``vae-course grade`` grades such a notebook normally and
   adds the findings to the report and the grade record, for the instructor to look at.

2. The preamble of the graded copy (:func:`runtime_preamble`): the kernel's memory limit, and a
   call around each test cell that moves the learner's names shadowing builtins the tests use
   (``max = ...``) or the usual aliases (``F``, ``np``) out of the way during the test and hands
   them back after it, so an honest notebook's variable names cannot break a test.

The scan is a list of known tricks and errs on the side of reporting.
"""
from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass

# Attributes whose mere use means touching the interpreter's execution machinery.
HOOK_ATTRS = {
    "input_transformers_post": "installs an IPython input transformer, which can rewrite the tests before they run",
    "input_transformers_cleanup": "installs an IPython input transformer, which can rewrite the tests before they run",
    "input_splitter": "replaces IPython's input splitter, which can rewrite the tests before they run",
    "ast_transformers": "installs an IPython AST transformer, which can rewrite the tests before they run",
    "set_custom_exc": "installs a custom exception handler, which can hide failing tests",
    "custom_exceptions": "changes IPython's custom exception handling, which can hide failing tests",
    "CustomTB": "replaces IPython's exception display, which can hide failing tests",
    "InteractiveTB": "replaces IPython's traceback printer, which can hide failing tests",
    "SyntaxTB": "replaces IPython's traceback printer, which can hide failing tests",
    "showtraceback": "replaces IPython's traceback display, which can hide failing tests",
    "_showtraceback": "replaces IPython's traceback display, which can hide failing tests",
    "showsyntaxerror": "replaces IPython's traceback display, which can hide failing tests",
    "excepthook": "replaces the exception hook, which can hide failing tests",
    "displayhook": "replaces the display hook",
    "breakpointhook": "replaces the breakpoint hook",
    "settrace": "installs a trace function, which can skip or alter the lines of the tests",
    "setprofile": "installs a profile function, which can alter the tests while they run",
    "addaudithook": "installs an audit hook",
    "f_trace": "installs a frame trace function, which can skip lines of the tests",
    "f_locals": "reads or edits another frame's variables",
    "f_globals": "reads or edits another frame's variables",
    "f_builtins": "reads or edits the builtins seen by another frame",
    "f_back": "walks the call stack to edit the caller",
    "_getframe": "walks the call stack to edit the caller",
    "currentframe": "walks the call stack to edit the caller",
    "register_magic_function": "registers a new IPython magic, which can swallow errors",
    "register_magics": "registers new IPython magics, which can swallow errors",
    "magics_manager": "changes IPython's magics",
    "run_cell": "runs or replaces IPython's cell runner",
    "run_cell_async": "runs or replaces IPython's cell runner",
    "run_ast_nodes": "replaces IPython's cell runner",
    "run_code": "replaces IPython's code runner",
    "transform_cell": "replaces IPython's cell transformation",
    "transform_ast": "replaces IPython's AST transformation",
    "callbacks": "edits IPython's event callbacks",
    "__code__": "replaces a function's code object",
    "__globals__": "edits a function's global namespace",
    "__closure__": "edits a function's closure",
    "__builtins__": "replaces or edits the builtins",
    "get_objects": "walks every object in memory to edit it",
    "get_referrers": "walks the objects referring to another to edit them",
    "get_referents": "walks the objects referred to by another to edit them",
    # switching torch function modes off or on: the course's shortcut check is such a mode
    "DisableTorchFunction": "switches off torch function modes, which the tests use to see what an answer calls",
    "DisableTorchFunctionSubclass": "switches off torch function handling, which the tests rely on",
    "_disabled_torch_function_impl": "switches off torch function handling, which the tests rely on",
    "_pop_mode": "removes a torch function mode the tests installed",
    "_pop_torch_function_stack": "removes a torch function mode the tests installed",
    "_push_on_torch_function_stack": "installs a torch function mode that can change what the tests see",
    "_set_torch_function_mode": "replaces the torch function mode the tests installed",
    "TorchFunctionMode": "intercepts every torch call, so it can change what the tests see",
    "TorchDispatchMode": "intercepts every torch operation, so it can change what the tests see",
}
# `events.register(...)` is the only hook spelled with a common method name.
EVENT_METHODS = {"register", "unregister"}

# Modules with no business in a lesson answer.
FORBIDDEN_MODULES = {
    "ctypes": "can rewrite any object in memory",
    "builtins": "can replace the builtins the tests use",
    "atexit": "registers exit hooks",
    "signal": "installs signal handlers",
    "resource": "changes the grader's resource limits",
    "unittest.mock": "patches functions the tests rely on",
    "mock": "patches functions the tests rely on",
    "gc": None,  # allowed; only gc.get_objects/get_referrers are flagged (HOOK_ATTRS)
    "inspect": None,
    "importlib": None,
}
FORBIDDEN_CALLS = {
    "exec": "runs code hidden in a string, which the scan cannot check",
    "eval": "runs code hidden in a string, which the scan cannot check",
    "compile": "builds code from a string, which the scan cannot check",
    "__import__": "imports a module by a computed name",
    "globals": "edits the notebook's global namespace indirectly",
}
# Dunders that make an object lie to comparisons and assertions.
LYING_DUNDERS = {
    "__torch_function__", "__torch_dispatch__", "__array_function__", "__array_ufunc__",
    "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__",
    "__instancecheck__", "__subclasscheck__", "__getattribute__", "__setattr__", "__class__",
    # arithmetic a check leans on: abs(got - want) < tol with a number whose __sub__ or __abs__ returns 0
    "__sub__", "__rsub__", "__abs__", "__float__", "__int__", "__index__", "__neg__", "__round__",
    "__add__", "__radd__", "__truediv__", "__rtruediv__", "__mul__", "__rmul__", "__pow__",
}
ALLOWED_MAGICS = {
    "matplotlib", "time", "timeit", "capture", "autoreload", "xmode", "pwd", "who", "whos",
    "env", "pip", "conda", "prun", "memit", "load_ext", "writefile", "debug", "pdb", "tb",
}
ALLOWED_EXTENSIONS = {"autoreload", "memory_profiler", "line_profiler"}
# Attribute stores on library modules that are harmless settings.
ALLOWED_STORE_PREFIXES = ("torch.backends.", "matplotlib.rcParams", "plt.rcParams", "np.random.seed")
KNOWN_MODULE_ALIASES = {
    "torch": "torch", "np": "numpy", "numpy": "numpy", "nn": "torch.nn", "F": "torch.nn.functional",
    "math": "math", "vae_core": "vae_core", "sys": "sys", "os": "os", "plt": "matplotlib.pyplot",
    "traceback": "traceback", "warnings": "warnings", "IPython": "IPython", "pytest": "pytest",
    "unittest": "unittest", "scipy": "scipy", "sklearn": "sklearn", "matplotlib": "matplotlib",
    "threading": "threading", "io": "io", "random": "random",
}
# Builtins a test cell leans on: shadowing one can make a failing check pass.
# (Names a learner may well use for a variable of their own and that no check leans on, such as
# id, input, filter, map, str or dir, are left out: shadowing them is not flagged nor hidden.)
PROTECTED_BUILTINS = {
    "isinstance", "issubclass", "abs", "all", "any", "len", "float", "int", "bool", "round", "min",
    "max", "sum", "print", "type", "getattr", "hasattr", "setattr", "callable", "range", "zip",
    "sorted", "exec", "eval", "compile", "__import__", "display", "get_ipython",
}
PROTECTED_BUILTINS |= {n for n in dir(builtins) if n.endswith(("Error", "Exception")) or n in
                       ("BaseException", "Exception", "AssertionError", "StopIteration", "Warning",
                        "KeyboardInterrupt", "SystemExit", "GeneratorExit")}
GRADER_PREFIX = "_vae_grader"


@dataclass(frozen=True)
class Finding:
    """One flagged construct. ``cell`` is 1-based in the learner's notebook."""

    cell: int
    where: str  # "a cell you added", "solution cell ex1_kl", "course cell you edited"
    line: int
    construct: str
    why: str

    def message(self) -> str:
        return f"cell {self.cell} ({self.where}), line {self.line}: `{self.construct}` {self.why}"


def _nbgrader(cell) -> dict:
    return (cell.get("metadata") or {}).get("nbgrader") or {}


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def to_python(source: str) -> str:
    """IPython syntax (magics, ``!shell``) -> plain Python, as the kernel will see it."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython ships with the course
        return source
    try:
        return TransformerManager().transform_cell(source)
    except Exception:
        return source


def _dotted(node) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    if isinstance(node, ast.Call):
        inner = _dotted(node.func)
        if inner:
            parts.append(inner + "()")
            return ".".join(reversed(parts))
    return None


def _root_name(node) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _import_bindings(tree: ast.AST) -> dict[str, str]:
    """alias -> dotted module or object path, for every import in ``tree``."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _toplevel_defs(tree: ast.Module) -> set[str]:
    """Functions and classes defined at the top level of a cell."""
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _bound_names(tree: ast.Module) -> list[tuple[str, int, str]]:
    """(name, line, how) for names a cell binds in the notebook namespace: top-level statements
    (looking inside if/for/while/with/try) and ``global`` names assigned inside functions."""
    out = []

    def targets(t, line, how):
        for n in ast.walk(t):
            if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
                out.append((n.id, line, how))

    def visit(stmts):
        for s in stmts:
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.append((s.name, s.lineno, "def"))
            elif isinstance(s, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                for t in (s.targets if isinstance(s, ast.Assign) else [s.target]):
                    targets(t, s.lineno, "assign")
            elif isinstance(s, (ast.For, ast.AsyncFor)):
                targets(s.target, s.lineno, "assign")
            elif isinstance(s, (ast.With, ast.AsyncWith)):
                for item in s.items:
                    if item.optional_vars is not None:
                        targets(item.optional_vars, s.lineno, "assign")
            elif isinstance(s, ast.Delete):
                for t in s.targets:
                    targets(t, s.lineno, "del")
            elif isinstance(s, (ast.Import, ast.ImportFrom)):
                for a in s.names:
                    name = a.asname or a.name.split(".")[0]
                    if name != "*":
                        out.append((name, s.lineno, "import"))
            for field_name in ("body", "orelse", "finalbody", "handlers"):
                sub = getattr(s, field_name, None)
                if isinstance(sub, list) and not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    visit(sub)
            if isinstance(s, ast.ExceptHandler) and s.name:
                out.append((s.name, s.lineno, "assign"))
    visit(tree.body)
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            declared = {n for g in ast.walk(fn) if isinstance(g, ast.Global) for n in g.names}
            for n in ast.walk(fn):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id in declared:
                    out.append((n.id, n.lineno, "global"))
    return out


@dataclass
class CourseFacts:
    """What the scan needs to know about the instructor's notebook."""

    restored_ids: frozenset  # grade_ids of cells grading restores from solutions/ (locked)
    course_sources: frozenset  # sources of course code cells, to skip unedited ones
    protected: dict  # name -> how the course binds it (locked helpers, imports, helpers the tests use)
    imports: dict  # alias -> dotted path, from the course's imports
    editable_defs: tuple = ()  # def/class names of each unlocked course cell (a learner may edit those)

    @classmethod
    def from_solution(cls, nb) -> "CourseFacts":
        restored, sources, protected, imports, editable = set(), set(), {}, {}, []
        solution_bound, test_names, narrative = set(), set(), {}
        for cell in nb.get("cells", []):
            meta = _nbgrader(cell)
            locked = bool(meta.get("grade_id") and (meta.get("locked") or (meta.get("grade") and not meta.get("solution"))))
            if locked:
                restored.add(meta["grade_id"])
            if cell.get("cell_type") != "code":
                continue
            src = _source(cell)
            try:
                tree = ast.parse(to_python(src))
            except SyntaxError:
                continue
            if meta.get("solution"):
                solution_bound |= {n for n, _, _ in _bound_names(tree)}
                continue
            sources.add(src.strip())
            imp = _import_bindings(tree)
            imports.update(imp)
            for name in imp:
                protected[name] = f"imported by the course as {imp[name]}"
            defs = _toplevel_defs(tree)
            if meta.get("grade"):
                test_names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
            if locked:
                for name in defs:
                    protected[name] = "a helper defined in a locked course cell"
            else:
                editable.append(frozenset(defs))
                for name in defs:
                    narrative[name] = "a helper defined by the course"
        for name, how in narrative.items():
            if name in test_names and name not in protected:
                protected[name] = how + " and used by the tests"
        for name in solution_bound:
            protected.pop(name, None)  # the learner's own answers may bind these
        return cls(frozenset(restored), frozenset(sources), protected, imports, tuple(editable))

    @classmethod
    def empty(cls) -> "CourseFacts":
        return cls(frozenset(), frozenset(), {}, {})


class _Scanner(ast.NodeVisitor):
    def __init__(self, facts: CourseFacts, cell_imports: dict[str, str]):
        self.facts = facts
        self.module_names = {**KNOWN_MODULE_ALIASES, **facts.imports, **cell_imports}
        self.found: list[tuple[int, str, str]] = []

    def flag(self, node, construct, why):
        self.found.append((getattr(node, "lineno", 1), construct, why))

    # interpreter hooks -----------------------------------------------------------------
    def visit_Attribute(self, node):
        if node.attr in HOOK_ATTRS:
            self.flag(node, _dotted(node) or node.attr, HOOK_ATTRS[node.attr])
        elif node.attr in EVENT_METHODS and isinstance(node.value, ast.Attribute) and node.value.attr == "events":
            self.flag(node, _dotted(node) or node.attr, "registers an IPython event callback, which runs around the tests")
        elif node.attr == "__dict__" and _root_name(node) in self.module_names:
            self.flag(node, _dotted(node) or "__dict__", "edits a library module's namespace directly")
        elif node.attr == "modules" and _dotted(node) == "sys.modules" and isinstance(node.ctx, ast.Load):
            pass  # reading sys.modules is fine; stores are caught in visit_Subscript/visit_Call
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self._attribute_store(node)
        self.generic_visit(node)

    def _attribute_store(self, node):
        root = _root_name(node)
        dotted = _dotted(node) or node.attr
        if node.attr in LYING_DUNDERS:
            self.flag(node, dotted, "replaces a comparison or type check, so an assertion can pass on a wrong answer")
        elif root in self.module_names or root in self.facts.protected:
            if not dotted.startswith(ALLOWED_STORE_PREFIXES):
                self.flag(node, f"{dotted} = ...", "monkeypatches a library or course function the tests rely on")

    def visit_Subscript(self, node):
        if isinstance(node.ctx, (ast.Store, ast.Del)) and _dotted(node.value) in ("sys.modules",):
            self.flag(node, "sys.modules[...] = ...", "swaps a library module for another object")
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id == "__builtins__":
            self.flag(node, "__builtins__", HOOK_ATTRS["__builtins__"])
        elif node.id.startswith(GRADER_PREFIX):
            self.flag(node, node.id, "touches the grader's own guard")
        self.generic_visit(node)

    def visit_Constant(self, node):
        if isinstance(node.value, str) and GRADER_PREFIX in node.value:
            self.flag(node, repr(node.value)[:40], "touches the grader's own guard")

    # imports ----------------------------------------------------------------------------
    def _check_module(self, node, module: str):
        for name, why in FORBIDDEN_MODULES.items():
            if why and (module == name or module.startswith(name + ".")):
                self.flag(node, f"import {module}", why)

    def visit_Import(self, node):
        for a in node.names:
            self._check_module(node, a.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        mod = node.module or ""
        self._check_module(node, mod)
        for a in node.names:
            self._check_module(node, f"{mod}.{a.name}")
            if a.name in HOOK_ATTRS:  # from torch.overrides import TorchFunctionMode
                self.flag(node, f"from {mod} import {a.name}", HOOK_ATTRS[a.name])
        self.generic_visit(node)

    # calls ------------------------------------------------------------------------------
    def visit_Call(self, node):
        fn = _dotted(node.func) or ""
        short = fn.rsplit(".", 1)[-1]
        if isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            self.flag(node, f"{node.func.id}(...)", FORBIDDEN_CALLS[node.func.id])
        if short in ("setattr", "delattr") and node.args:
            tgt = node.args[0]
            root = _root_name(tgt)
            if root in self.module_names or root in self.facts.protected or root == "__builtins__":
                self.flag(node, f"{short}({_dotted(tgt) or root}, ...)", "monkeypatches a library or course function the tests rely on")
        if short in ("__setattr__", "__delattr__"):
            self.flag(node, fn, "monkeypatches an object behind the tests' back")
        if fn in ("vars", "vars()") or (isinstance(node.func, ast.Name) and node.func.id == "vars" and node.args
                                        and _root_name(node.args[0]) in self.module_names):
            self.flag(node, "vars(module)", "edits a library module's namespace directly")
        if fn.startswith("sys.modules.") and short in ("update", "pop", "setdefault", "__setitem__", "clear", "popitem"):
            self.flag(node, fn, "swaps library modules for other objects")
        if short in ("run_line_magic", "run_cell_magic", "magic") and node.args and isinstance(node.args[0], ast.Constant):
            magic = str(node.args[0].value).split()[0] if str(node.args[0].value).split() else ""
            if magic not in ALLOWED_MAGICS:
                self.flag(node, f"%{magic}", "is a magic the grader cannot vouch for (it may swallow errors or run hidden code)")
            elif magic == "load_ext" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                ext = str(node.args[1].value).strip()
                if ext not in ALLOWED_EXTENSIONS:
                    self.flag(node, f"%load_ext {ext}", "loads an IPython extension, which can install hooks")
        elif short in ("run_line_magic", "run_cell_magic", "magic"):
            self.flag(node, fn, "runs a magic chosen at run time")
        if short == "import_module" and node.args and isinstance(node.args[0], ast.Constant):
            self._check_module(node, str(node.args[0].value))
        self.generic_visit(node)

    # definitions ------------------------------------------------------------------------
    def visit_ClassDef(self, node):
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in LYING_DUNDERS:
                self.flag(item, f"class {node.name}: def {item.name}",
                          "makes objects that can lie to comparisons and assertions")
            elif isinstance(item, ast.Assign):
                for t in item.targets:
                    if isinstance(t, ast.Name) and t.id in LYING_DUNDERS:
                        self.flag(item, f"class {node.name}: {t.id} = ...",
                                  "makes objects that can lie to comparisons and assertions")
        self.generic_visit(node)


def scan_source(source: str, facts: CourseFacts | None = None) -> list[tuple[int, str, str]]:
    """Flag tampering constructs in one cell: a list of (line, construct, why).

    A cell that is not valid Python is not flagged (it fails on its own when run).
    """
    facts = facts or CourseFacts.empty()
    try:
        tree = ast.parse(to_python(source))
    except (SyntaxError, ValueError):
        return []
    cell_imports = _import_bindings(tree)
    defs = _toplevel_defs(tree)
    scanner = _Scanner(facts, cell_imports)
    scanner.visit(tree)
    found = list(scanner.found)
    for name, line, how in _bound_names(tree):
        if name in PROTECTED_BUILTINS and how != "import":
            found.append((line, f"{name} = ..." if how != "def" else f"def {name}",
                          "shadows a builtin the tests use"))
        elif name in PROTECTED_BUILTINS:
            found.append((line, f"import ... as {name}", "shadows a builtin the tests use"))
        elif name in facts.protected:
            if how == "import" and facts.imports.get(name) == cell_imports.get(name):
                continue  # re-importing the same thing under the same name is fine
            if how == "def" and "locked" not in facts.protected[name] and any(
                    name in d and d <= defs for d in facts.editable_defs):
                continue  # the course's own (editable) cell, edited in place
            found.append((line, f"{name} (rebound by {how})",
                          f"redefines {name}, {facts.protected[name]}, which the tests rely on"))
        elif name in KNOWN_MODULE_ALIASES and how != "import":
            found.append((line, f"{name} = ...", f"rebinds {name}, the usual name of the module "
                                                 f"{KNOWN_MODULE_ALIASES[name]}, which the tests rely on"))
        elif name in KNOWN_MODULE_ALIASES and cell_imports.get(name, "").split(".")[0] not in (
                KNOWN_MODULE_ALIASES[name].split(".")[0], ""):
            found.append((line, f"import ... as {name}", f"binds {name} to something other than "
                                                         f"{KNOWN_MODULE_ALIASES[name]}, which the tests rely on"))
    return sorted(set(found))


def scan_notebook(nb, solution_nb=None) -> list[Finding]:
    """Scan every learner-editable code cell of ``nb`` (an nbformat notebook or dict).

    ``solution_nb``: the instructor notebook from ``solutions/``; its locked cells are not
    scanned (grading restores them) and its helpers and imports are protected from rebinding.
    Without it every code cell except locked ones is scanned.
    """
    facts = CourseFacts.from_solution(solution_nb) if solution_nb is not None else CourseFacts.empty()
    findings = []
    for index, cell in enumerate(nb.get("cells", []), start=1):
        if cell.get("cell_type") != "code":
            continue
        meta = _nbgrader(cell)
        gid = meta.get("grade_id")
        if solution_nb is not None and gid in facts.restored_ids:
            continue  # replaced by the course's version before it runs
        if solution_nb is None and meta.get("locked") and not meta.get("solution"):
            continue
        src = _source(cell)
        if src.strip() in facts.course_sources:
            continue  # an unedited course cell
        if meta.get("solution"):
            where = f"solution cell {gid}"
        elif gid or src.strip() == "":
            where = f"cell {gid}" if gid else "an empty cell"
        else:
            where = "a cell you added or edited"
        for line, construct, why in scan_source(src, facts):
            findings.append(Finding(index, where, line, construct, why))
    return findings


# ---------------------------------------------------------------------------------------------
# The graded copy's preamble and per-test cells. They are not a defence any more (the judge decides,
# outside the kernel): they set the kernel's memory limit and keep an honest notebook's names from
# breaking the tests, e.g. a variable called `max` or `sum`, or `F` bound to something else.

_PREAMBLE = r"""# vae-course grader: preamble (added to the graded copy only; not part of your notebook)
def _vae_grader_make(memory_bytes, shadow_names):
    import builtins, importlib
    if memory_bytes:
        try:
            import resource
            # RLIMIT_DATA counts memory actually allocated (heap, anonymous mappings), not address
            # space merely reserved, so CUDA's large reservations still work under it
            resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
        except (ImportError, ValueError, OSError):
            pass
    ip = get_ipython()
    aliases = {}
    for alias, name in {"torch": "torch", "np": "numpy", "numpy": "numpy", "nn": "torch.nn",
                        "F": "torch.nn.functional", "math": "math", "vae_core": "vae_core"}.items():
        try:
            aliases[alias] = importlib.import_module(name)
        except Exception:
            pass
    pristine = dict(vars(builtins))
    stash = {}

    def guard(index, after=False):
        ns = ip.user_ns
        if after:  # hand the learner's own names back
            for k, v in list(stash.items()):
                if k not in ns or ns[k] is aliases.get(k):
                    ns[k] = v
            stash.clear()
            return
        for k in [k for k in shadow_names if k in ns and k in pristine and ns[k] is not pristine[k]]:
            stash[k] = ns.pop(k)  # a name shadowing a builtin the tests use: hidden during the test
        for k, module in aliases.items():
            if k in ns and ns[k] is not module:
                stash.setdefault(k, ns[k])
                ns[k] = module

    return guard

{name} = _vae_grader_make({memory!r}, {shadow!r})
del _vae_grader_make
"""


def runtime_preamble(name: str, memory_bytes: int | None) -> str:
    """Source of the preamble cell; ``name`` is the per-run guard name (starts with ``_vae_grader``)."""
    if not name.startswith(GRADER_PREFIX):
        raise ValueError(f"guard name must start with {GRADER_PREFIX!r}, got {name!r}")
    return _PREAMBLE.replace("{name}", name).replace(
        "{memory!r}", repr(int(memory_bytes) if memory_bytes else None)).replace(
        "{shadow!r}", repr(sorted(PROTECTED_BUILTINS)))


def guard_cell_source(name: str, index: int, after: bool = False) -> str:
    """Source of one cell placed before (or after) test cell number ``index``."""
    tail = ", after=True" if after else ""
    return f"# vae-course grader (graded copy only): your names that shadow builtins step aside during the test\n{name}({index}{tail})"


def guard_name(nonce: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{8,64}", nonce):
        raise ValueError(f"nonce must be 8-64 lowercase hex digits, got {nonce!r}")
    return f"{GRADER_PREFIX}_{nonce}"
