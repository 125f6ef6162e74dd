"""Record the public API of bob.learn.em 3.3.1 for ``tests/core/test_reference_signatures.py``.

Run with the reference's interpreter (it writes ``signatures.json`` next to this file)::

    cd /tmp && /work/refenv/bin/python /work/wt-dropin/tests/data/reference_api/make_signatures.py

What is recorded, read from the installed reference by ``inspect``:

* ``modules``: for the package and each submodule, the public names (classes and functions of
  bob.learn.em, re-exports included) a user can import from it;
* ``functions``: the signature of every public module-level function, under its defining module;
* ``classes``: for each public class, its constructor signature and every public method,
  classmethod, staticmethod and property defined by a bob.learn.em class of its MRO (members
  inherited from scikit-learn are left out: emkit inherits the same ones), the operators it
  defines, and the public instance attributes of an object built (and, where cheap, fitted) as in
  the reference's tests.

A parameter is ``[name, kind, default]``; ``default`` is ``{"value": v}`` for JSON scalars,
``{"repr": r}`` otherwise, or ``null`` when the parameter is required.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import pathlib
import warnings

warnings.simplefilter("ignore")

import numpy as np  # noqa: E402

import bob.learn.em as bob  # noqa: E402

SUBMODULES = ["factor_analysis", "gmm", "ivector", "kmeans", "linear_scoring", "utils", "wccn",
              "whitening"]
OPERATORS = ["__add__", "__iadd__", "__eq__", "__ne__", "__len__", "__getitem__", "__call__"]


def is_reference(obj):
    return getattr(obj, "__module__", "").startswith("bob.learn.em")


def default_of(value):
    if value is inspect.Parameter.empty:
        return None
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return {"value": value}
    if isinstance(value, float) and math.isfinite(value):
        return {"value": value}
    return {"repr": repr(value)}


def parameters(function):
    return [[p.name, p.kind.name, default_of(p.default)]
            for p in inspect.signature(function).parameters.values()]


def defined_in(cls, short):
    """Whether ``cls`` is written in ``bob/learn/em/<short>.py`` (its ``__module__`` may be the
    package's, rewritten by bob.learn.em)."""
    return cls.__init__.__code__.co_filename.endswith(f"/{short}.py")


def public_names(module):
    return sorted(name for name, obj in vars(module).items()
                  if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
                  and is_reference(obj))


def class_members(cls):
    members = {}
    for owner in reversed(cls.__mro__):
        if not is_reference(owner):
            continue
        for name, raw in vars(owner).items():
            if name.startswith("_") and name not in OPERATORS:
                continue
            if isinstance(raw, property):
                members[name] = {"kind": "property", "settable": raw.fset is not None}
            elif isinstance(raw, classmethod):
                members[name] = {"kind": "classmethod", "params": parameters(raw.__func__)}
            elif isinstance(raw, staticmethod):
                members[name] = {"kind": "staticmethod", "params": parameters(raw.__func__)}
            elif inspect.isfunction(raw):
                members[name] = {"kind": "method", "params": parameters(raw)}
    return members


def example_objects():
    """Objects built (and fitted on toy data) the way the reference's tests do."""
    rng = np.random.RandomState(0)
    data = rng.normal(size=(60, 3))
    labels = np.repeat([0, 1, 2], 20)
    kmeans = bob.KMeansMachine(2)
    fitted_kmeans = bob.KMeansMachine(2).fit(data)
    ubm = bob.GMMMachine(2).fit(data)
    stats = [ubm.acc_stats(data[i::6]) for i in range(6)]
    session_labels = [0, 0, 1, 1, 2, 2]
    ivector = bob.IVectorMachine(ubm, dim_t=2, max_iterations=2)
    return {
        "KMeansMachine": [kmeans, fitted_kmeans],
        "GMMStats": [bob.GMMStats(2, 3), ubm.acc_stats(data)],
        "GMMMachine": [bob.GMMMachine(2), ubm,
                       bob.GMMMachine(2, trainer="map", ubm=ubm).fit(data)],
        "ISVMachine": [bob.ISVMachine(2, ubm=ubm), bob.ISVMachine(2, ubm=ubm).fit(stats, session_labels)],
        "JFAMachine": [bob.JFAMachine(2, 1, ubm=ubm),
                       bob.JFAMachine(2, 1, ubm=ubm).fit(stats, session_labels)],
        "IVectorMachine": [bob.IVectorMachine(ubm), ivector.fit(stats)],
        "WCCN": [bob.WCCN(), bob.WCCN().fit(data, labels)],
        "Whitening": [bob.Whitening(), bob.Whitening().fit(data)],
    }


def instance_attributes(objects):
    names = set()
    for obj in objects:
        names |= {name for name in vars(obj) if not name.startswith("_")}
    return sorted(names)


def main():
    modules = {"bob.learn.em": sorted(bob.__all__)}
    functions, classes = {}, {}
    examples = example_objects()
    for short in SUBMODULES:
        module = importlib.import_module(f"bob.learn.em.{short}")
        modules[short] = public_names(module)
        for name in modules[short]:
            obj = getattr(module, name)
            if inspect.isfunction(obj) and obj.__module__ == module.__name__:
                functions[f"{short}.{name}"] = parameters(obj)
            elif inspect.isclass(obj) and obj.__module__ in (module.__name__, "bob.learn.em"):
                if name in classes or not defined_in(obj, short):
                    continue
                classes[name] = {
                    "module": short,
                    "init": parameters(obj.__init__)[1:],
                    "members": class_members(obj),
                    "instance_attributes": instance_attributes(examples.get(name, [])),
                }
    out = {"reference": "bob.learn.em 3.3.1", "numpy": np.__version__, "modules": modules,
           "functions": functions, "classes": classes}
    path = pathlib.Path(__file__).with_name("signatures.json")
    path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"{path}: {len(functions)} functions, {len(classes)} classes, "
          f"{sum(len(c['members']) for c in classes.values())} members")


if __name__ == "__main__":
    main()
