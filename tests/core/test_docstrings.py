"""Every public object of emkit has a numpy-style docstring that matches its signature.

The public API is what every public module (no part of its dotted path starts with ``_``;
``emkit.metrics``, ``emkit.calibration``... are the same modules as ``emkit.evaluation.*``)
lists in its ``__all__``, which tests/core/test_public_names.py requires of each (a module in an
``__all__`` is walked through its own ``__all__``), and the public methods and properties of the
classes among them that emkit itself defines (methods inherited from scikit-learn are not emkit's
to document).

The rules, for each function, method and class:

* it has a docstring (a property: a docstring, no sections required);
* its ``Parameters`` section (with ``Other Parameters``, if any) names exactly the parameters of
  its signature, in order: a method's ``self`` or ``cls`` is left out; ``*args`` / ``**kwargs`` may be
  left undocumented, but when documented are in order like the others.  A class is documented at
  class level as scikit-learn does: its docstring's ``Parameters`` are those of ``cls(...)``
  (a dataclass may call them ``Attributes``), and ``__init__`` needs no docstring;
* array entries state a shape: an entry of ``Parameters`` or ``Returns`` whose type (the text
  after ``name :``, or a bare ``Returns`` type line) mentions an array (``ndarray``,
  ``array-like``, ``dask array``...) says, in its type or description, either the word
  ``shape`` or a tuple of dimensions such as ``(n_samples, n_features)`` or ``(C * D,)``;
* a function that returns a value (a ``return <value>`` or ``yield`` in its body, or a return
  annotation other than ``None``) has a ``Returns`` (or ``Yields``) section, and one that never
  returns a value has none.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pathlib
import re
import textwrap
import types

import pytest

from public_modules import public_modules

AUDITED = public_modules()

_SECTION = re.compile(r"^([A-Z][A-Za-z ]+)\n-{3,}$", re.M)
_ARRAY = re.compile(r"array|ndarray", re.I)
_SHAPE = re.compile(r"\bshape\b|\((?:\s*[\w.*+\- ]+,)+(?:\s*[\w.*+\- ]+)?\s*\)")


def sections(doc: str) -> dict:
    """``{header: [(entry line, description), ...]}`` of a numpy-style docstring."""
    doc = inspect.cleandoc(doc)
    headers = list(_SECTION.finditer(doc))
    out = {}
    for i, match in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(doc)
        entries = []
        for line in doc[match.end():end].splitlines():
            if line.strip() and not line.startswith(" "):
                entries.append([line.strip(), ""])
            elif entries:
                entries[-1][1] += line.strip() + " "
        out[match.group(1)] = entries
    return out


def documented_names(entries) -> list:
    names = []
    for line, _ in entries:
        head = line.split(" : ")[0] if " : " in line else line.rstrip(":")
        names += [n.strip().lstrip("*") for n in head.split(",")]
    return names


def signature_names(sig: inspect.Signature, method: bool) -> tuple[list, list]:
    """(the parameters a docstring must name, the ``*args``/``**kwargs`` it may name); a
    method's first parameter ``self`` or ``cls`` is not named."""
    required, optional = [], []
    for i, p in enumerate(sig.parameters.values()):
        if method and i == 0 and p.name in ("self", "cls"):
            continue
        variadic = p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        (optional if variadic else required).append(p.name)
    return required, optional


def returns_value(func) -> bool:
    annotation = func.__annotations__.get("return")
    if annotation is not None:
        return annotation not in (None, "None", "NoReturn", type(None))
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError):
        return False
    body = tree.body[0]
    todo, found = list(body.body), False
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            found = True
        if isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            found = True
        todo.extend(ast.iter_child_nodes(node))
    return found


def shape_problems(entries, what: str) -> list:
    problems = []
    for line, description in entries:
        kind = line.split(" : ", 1)[1] if " : " in line else line
        if _ARRAY.search(kind) and not _SHAPE.search(line + " " + description):
            problems.append(f"{what} {line!r} is an array and states no shape")
    return problems


def check(obj, *, is_class=False) -> list:
    """The problems of ``obj``'s docstring (an empty list: it follows the rules)."""
    doc = obj.__doc__ if is_class else inspect.getdoc(obj)
    if isinstance(obj, property):
        return [] if obj.__doc__ and obj.__doc__.strip() else ["no docstring"]
    if not doc or not doc.strip():
        return ["no docstring"]
    found = sections(doc)
    params = found.get("Parameters", []) + found.get("Other Parameters", [])
    if is_class and dataclasses.is_dataclass(obj) and not params:
        params = found.get("Attributes", [])
    try:
        sig = inspect.signature(obj.__func__ if isinstance(obj, classmethod) else obj)
    except (TypeError, ValueError):
        sig = inspect.Signature()
    method = not is_class and "." in getattr(obj, "__qualname__", "")
    required, optional = signature_names(sig, method)
    named = documented_names(params)
    expected = [n for n in sig.parameters if n in required + optional
                and (n in required or n in named)]
    problems = []
    if named != expected:
        missing = [n for n in required if n not in named]
        stale = [n for n in named if n not in required + optional]
        problems.append(f"Parameters names {named}, the signature {expected}"
                        + (f" (missing {missing})" if missing else "")
                        + (f" (not parameters: {stale})" if stale else ""))
    problems += shape_problems(params, "parameter")
    returned = found.get("Returns", []) + found.get("Yields", [])
    problems += shape_problems(returned, "return")
    if not is_class:
        func = inspect.unwrap(obj.__func__ if isinstance(obj, (classmethod, staticmethod))
                              else obj)
        gives = returns_value(func)
        if gives and not returned:
            problems.append("returns a value but has no Returns section")
        elif returned and not gives:
            problems.append("has a Returns section but returns nothing")
    return problems


def _exported(module) -> list:
    return module.__all__  # (every public module has one: tests/core/test_public_names.py)


def _emkit_defined(obj) -> bool:
    return (getattr(obj, "__module__", None) or "").startswith("emkit")


def walked_modules() -> list:
    """The modules the audit walks: those of :data:`AUDITED` and, recursively, the modules
    their exported names are."""
    walked, todo = [], list(AUDITED)
    while todo:
        module = importlib.import_module(todo.pop(0))
        if module in walked:
            continue
        walked.append(module)
        todo += [value.__name__ for value in (getattr(module, n) for n in _exported(module))
                 if isinstance(value, types.ModuleType)]
    return walked


def public_api() -> dict:
    """``{"module.name[.member]": (object, is_class)}`` of the whole public API."""
    found = {}
    for module in walked_modules():
        for name in _exported(module):
            value = getattr(module, name)
            if inspect.isclass(value) and _emkit_defined(value):
                found.setdefault(f"{value.__module__}.{value.__qualname__}", (value, True))
                for func, attr in _members(value):
                    found.setdefault(f"{func.__module__}.{func.__qualname__}", (attr, False))
            elif inspect.isfunction(value) and _emkit_defined(value):
                found.setdefault(f"{value.__module__}.{value.__qualname__}", (value, False))
    return found


def _members(cls):
    for klass in cls.__mro__:
        for name, attr in vars(klass).items():
            if name.startswith("_") and name != "__call__":
                continue
            if isinstance(attr, property):
                func = attr.fget
            elif isinstance(attr, (classmethod, staticmethod)):
                func = attr.__func__
            elif inspect.isfunction(attr):
                func = attr
            else:
                continue
            if _emkit_defined(func) and getattr(cls, name, None) is not None:
                yield func, attr if not isinstance(attr, staticmethod) else attr.__func__


API = public_api()

#: objects whose docstrings do not follow the rules yet (one name a line); each is an expected
#: failure, strictly: fixing one without taking it off the list fails too, so the list only shrinks
GAPS_FILE = pathlib.Path(__file__).with_name("docstring_gaps.txt")
GAPS = {line.strip() for line in GAPS_FILE.read_text().splitlines()
        if line.strip() and not line.startswith("#")}


def _case(name):
    if name in GAPS:
        return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason="docstring gap"))
    return name


@pytest.mark.parametrize("name", [_case(n) for n in sorted(API)])
def test_docstring_follows_the_rules(name):
    obj, is_class = API[name]
    problems = check(obj, is_class=is_class)
    assert not problems, f"{name}: " + "; ".join(problems)


def test_gaps_list_names_only_public_objects():
    assert GAPS <= set(API), sorted(GAPS - set(API))


_ROOT = pathlib.Path(__file__).resolve().parents[2]
_DOTTED_NAME = re.compile(r"\bemkit(?:\.[A-Za-z_]\w*)+")


def _module_named(dotted: str):
    """The module a dotted name in the documentation is in: ``emkit.lda.LDA`` -> ``emkit.lda``,
    ``emkit.linear_scoring`` (the function) -> ``emkit``, ``emkit.metrics`` -> the module that
    alias is; None for a name with a private part (``emkit._kernels``)."""
    parts = dotted.split(".")
    if any(part.startswith("_") for part in parts):
        return None
    module = importlib.import_module(parts[0])
    for part in parts[1:]:
        value = getattr(module, part, None)  # (emkit's lazy names are attributes)
        if value is None:
            try:
                value = importlib.import_module(f"{module.__name__}.{part}")
            except ImportError:
                break
        if not isinstance(value, types.ModuleType):
            break
        module = value
    return module


def documented_modules() -> dict:
    """``{module name: file}`` of the public emkit modules that README.md, docs/ and examples/
    name."""
    files = [_ROOT / "README.md", *sorted((_ROOT / "docs").glob("*.md")),
             *sorted(p for p in (_ROOT / "examples").rglob("*") if p.is_file())]
    found = {}
    for path in files:
        for dotted in _DOTTED_NAME.findall(path.read_text(encoding="utf-8", errors="replace")):
            module = _module_named(dotted)
            if module is not None:
                found.setdefault(module.__name__, path.relative_to(_ROOT).as_posix())
    return found


def test_every_module_the_documentation_names_is_audited():
    walked = {module.__name__ for module in walked_modules()}
    documented = documented_modules()
    assert {"emkit.experiment", "emkit.io.arrays", "emkit.datasets"} <= set(documented)
    missing = {name: where for name, where in documented.items() if name not in walked}
    assert not missing, f"named in the documentation but not audited: {missing}"


def _good(X, y=None, *, block_rows=1024, **kwargs):
    """Fit.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data.
    y : None
        Ignored.
    block_rows : int
        Rows per block.

    Returns
    -------
    means : ndarray, shape (C, D)
    """
    return X


def _stale(X, n_components):
    """Fit.

    Parameters
    ----------
    X : array-like of shape (n, d)
    n_gaussians : int

    Returns
    -------
    ndarray of shape (n,)
    """
    return X


def _shapeless(X):
    """Fit.

    Parameters
    ----------
    X : array-like
        The data, one row a sample.
    """


def _undeclared_return(X):
    """Fit.

    Parameters
    ----------
    X : int
    """
    return X


def test_the_checker_finds_what_it_is_meant_to():
    assert check(_good) == []
    assert any("missing ['n_components']" in p and "not parameters: ['n_gaussians']" in p
               for p in check(_stale))
    assert check(_shapeless) == ["parameter 'X : array-like' is an array and states no shape"]
    assert check(_undeclared_return) == ["returns a value but has no Returns section"]
    assert check(lambda: None) == ["no docstring"]
