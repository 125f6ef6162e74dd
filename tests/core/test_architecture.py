"""The layering rules of docs/architecture.md, checked on the source (not on behaviour).

* no module is longer than ``MAX_LINES``;
* no ``emkit.io`` module imports an estimator or experiment module (persistence goes through the
  registry, estimators import io, never the reverse);
* no module sets an attribute of an object of a class defined in another emkit module: objects
  built in a function may be filled in only when their class is defined in the same module, and
  objects received as arguments are never written to (third-party option objects excepted).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parents[2] / "src" / "emkit"
MAX_LINES = 450
MODULES = sorted(SRC.rglob("*.py"))

#: emkit modules that define estimators, systems or experiments (io must not import them)
UPPER = ("gmm", "kmeans", "factor_analysis", "ivector", "plda", "whitening", "wccn", "lda",
         "experiment", "evaluation", "calibration", "score_norm", "cohort", "recipe", "cli",
         "linear_scoring", "demo", "demo_recipe", "datasets", "audio")

#: attribute stores on objects that are not emkit's: scikit-learn tags, kaldi-native-fbank
#: options, a thread-local, exceptions annotated for the command line, docstrings of commands, the
#: state of a numpy bit generator read from a file
FOREIGN = {"tags", "f", "m", "o", "_WORKER", "exc", "sys", "bit_generator"}

#: known exceptions (module -> stores), each with the reason it is still there
KNOWN: dict = {}


def _name(path: pathlib.Path) -> str:
    return str(path.relative_to(SRC.parent)).removesuffix(".py").replace("/", ".")


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_module_is_short_enough_to_read(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{_name(path)} has {n} lines (at most {MAX_LINES})"


def _imported_modules(path: pathlib.Path):
    package = _name(path).rsplit(".", 1)[0].split(".")
    if path.name == "__init__.py":
        package = _name(path).split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            yield module
            for alias in node.names:
                yield f"{module}.{alias.name}"


@pytest.mark.parametrize("path", sorted((SRC / "io").rglob("*.py")), ids=_name)
def test_io_imports_no_estimator(path):
    bad = sorted({m for m in _imported_modules(path)
                  if m.startswith("emkit.") and m.split(".")[1] in UPPER})
    assert not bad, f"{_name(path)} imports {bad}"


def _classes(tree) -> set:
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}


def _constructed_class(call):
    """``Foo`` for ``Foo(...)``, ``Foo.__new__(Foo)``, ``Foo.something(...)``; "cls" for cls(...)."""
    func = call.func
    if isinstance(func, ast.Attribute):
        func = func.value
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Call) and isinstance(func.func, ast.Name) and func.func.id == "type":
        return "cls"  # type(self)(...)
    return None


def _functions(tree):
    """Every function of ``tree`` with whether it is a method or nested in one (a closure over
    ``self``)."""
    in_class = {id(f) for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for f in ast.walk(c)
                if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield fn, id(fn) in in_class


def _foreign_stores(tree):
    classes = _classes(tree)
    for fn, is_method in _functions(tree):
        # ``cls`` is the class itself in a classmethod, a class received from elsewhere in a
        # module-level function (a file reader given the class to build)
        own = classes | ({"cls", "self"} if is_method else set())
        made = {}
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        made[t.id] = _constructed_class(node.value)
        params = {a.arg for a in ast.walk(fn.args) if isinstance(a, ast.arg)}
        for node in ast.walk(fn):
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            for t in targets:
                for sub in ast.walk(t):
                    if not (isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store)
                            and isinstance(sub.value, ast.Name)):
                        continue
                    name = sub.value.id
                    if name in FOREIGN or sub.attr == "writeable" or (is_method and name in ("self", "cls")):
                        continue
                    # an argument, or an object built from a class of another module
                    if name in params or (name in made and made[name] not in own):
                        yield f"{sub.lineno}: {ast.unparse(sub)}"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_module_sets_attributes_of_another_modules_objects(path):
    known = KNOWN.get(_name(path), set())
    bad = [s for s in _foreign_stores(ast.parse(path.read_text())) if s.split(": ", 1)[1] not in known]
    assert not bad, f"{_name(path)} sets attributes of objects it does not define: {bad}"
