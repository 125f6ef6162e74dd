"""``__all__`` of every public module: each public name once, no private name, every name there,
every public class the module defines listed (an exception that emkit raises is part of the API),
and the reference-compatible modules list the whole namespace of bob.learn.em 3.3.1's modules
(the helpers they import from ``utils`` included), so that ``from emkit.X import *`` gives what
``from bob.learn.em.X import *`` gave."""

import importlib
import inspect
import json
import pkgutil
from pathlib import Path

import pytest

import emkit

REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "reference_api" / "signatures.json")
                       .read_text())["modules"]


def _public_modules() -> list:
    names = ["emkit"]
    for info in pkgutil.walk_packages(emkit.__path__, "emkit."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _public_modules())
def test_all_lists_each_public_name_once_and_every_public_class(name):
    module = importlib.import_module(name)
    listed = getattr(module, "__all__", None)
    if listed is None:
        pytest.skip(f"{name} has no __all__")
    assert len(listed) == len(set(listed)), sorted({n for n in listed if listed.count(n) > 1})
    assert not [n for n in listed if n.startswith("_")]
    assert not [n for n in listed if not hasattr(module, n)]
    defined = [n for n, obj in vars(module).items() if not n.startswith("_")
               and inspect.isclass(obj) and obj.__module__ == name]
    assert not [n for n in defined if n not in listed], f"{name} defines them, __all__ lacks them"


@pytest.mark.parametrize("short", sorted(set(REFERENCE) - {"bob.learn.em"}))
def test_a_reference_module_lists_the_reference_namespace(short):
    module = importlib.import_module(f"emkit.{short}")
    assert not sorted(set(REFERENCE[short]) - set(module.__all__))


def test_the_package_lists_the_reference_namespace():
    assert not sorted(set(REFERENCE["bob.learn.em"]) - set(emkit.__all__))
