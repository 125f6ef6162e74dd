"""``__all__`` of every public module (no part of its dotted path starts with ``_``): there is
one, each public name once, no private name, every name there, every function and class the
module defines either listed or declared internal (``internal_names.txt``; an exception that emkit
raises is part of the API, never internal), a name re-exported from another public module listed
there too, and the reference-compatible modules list the whole namespace of bob.learn.em 3.3.1's
modules (the helpers they import from ``utils`` included), so that ``from emkit.X import *`` gives
what ``from bob.learn.em.X import *`` gave.  ``from emkit.X import *`` gives exactly ``__all__``
and imports none of the heavy optional extras."""

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import emkit
from public_modules import public_modules

REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "reference_api" / "signatures.json")
                       .read_text())["modules"]

PUBLIC_MODULES = public_modules()

INTERNAL = {line.strip() for line in Path(__file__).with_name("internal_names.txt").read_text()
            .splitlines() if line.strip() and not line.startswith("#")}


def _defined_here(module) -> list:
    """The un-underscored functions and classes ``module`` defines (not those it imports)."""
    return [n for n, obj in vars(module).items() if not n.startswith("_")
            and (inspect.isclass(obj) or inspect.isfunction(obj))
            and obj.__module__ == module.__name__]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_lists_each_public_name_once_and_declares_the_rest_internal(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    listed = module.__all__
    assert len(listed) == len(set(listed)), sorted({n for n in listed if listed.count(n) > 1})
    assert not [n for n in listed if n.startswith("_")]
    assert not [n for n in listed if not hasattr(module, n)]
    undeclared = [n for n in _defined_here(module)
                  if n not in listed and f"{module.__name__}.{n}" not in INTERNAL]
    assert not undeclared, f"{name} defines them: list them in __all__ or internal_names.txt"


def test_internal_names_are_unlisted_functions_and_classes_ofpublic_modules():
    for dotted in sorted(INTERNAL):
        name, _, attr = dotted.rpartition(".")
        assert name in PUBLIC_MODULES, dotted
        module = importlib.import_module(name)
        assert attr in _defined_here(module) and attr not in module.__all__, dotted
        value = getattr(module, attr)
        assert not (inspect.isclass(value) and issubclass(value, BaseException)), dotted


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_a_name_reexported_from_a_public_module_is_listed_there(name):
    module = importlib.import_module(name)
    for listed in module.__all__:
        value = getattr(module, listed)
        home = getattr(value, "__module__", None)
        if (inspect.isclass(value) or inspect.isfunction(value)) and home in PUBLIC_MODULES:
            assert value.__name__ in importlib.import_module(home).__all__, (listed, home)


#: the optional extras (audio, gpu): a public module never imports them when imported
HEAVY_EXTRAS = ("torch", "cupy", "soundfile", "kaldi_native_fbank")

#: Imports every public module, then ``from module import *``, in one fresh interpreter; a meta
#: path finder records and refuses each import of a heavy extra that either step attempts, whether
#: or not the extra is installed, so no extra is ever loaded and each module's attempts are seen
#: (a guarded import that falls back quietly too) whatever the modules before it imported.
_STAR_IMPORTS = """
import importlib, importlib.abc, json, sys
heavy, tried = set(sys.argv[1].split(",")), []

class Refuser(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in heavy:
            tried.append(fullname)
            raise ImportError(f"{fullname} refused by the test")

def attempted(step):
    tried.clear()
    try:
        step()
    except Exception as exc:
        tried.append(f"{type(exc).__name__}: {exc}")
    return sorted(set(tried))

sys.meta_path.insert(0, Refuser())
found = {}
for name in sys.argv[2:]:
    namespace = {}
    plain = attempted(lambda: importlib.import_module(name))
    star = attempted(lambda: exec(f"from {name} import *", namespace))
    module = sys.modules.get(name)
    found[name] = {"names": sorted(set(namespace) - {"__builtins__"}),
                   "all": sorted(set(module.__all__)) if hasattr(module, "__all__") else None,
                   "import": plain, "star": star}
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def star_imports() -> dict:
    process = subprocess.run([sys.executable, "-W", "error", "-c", _STAR_IMPORTS,
                              ",".join(HEAVY_EXTRAS), *PUBLIC_MODULES],
                             capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(process.stdout)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_star_import_gives_all_and_no_heavy_extra(name, star_imports):
    found = star_imports[name]
    assert found["import"] == [], f"import {name} imports {found['import']}"
    assert found["star"] == [], f"from {name} import * imports {found['star']}"
    assert found["all"] is not None, f"{name} has no __all__"
    assert found["names"] == found["all"]


@pytest.mark.parametrize("short", sorted(set(REFERENCE) - {"bob.learn.em"}))
def test_a_reference_module_lists_the_reference_namespace(short):
    module = importlib.import_module(f"emkit.{short}")
    assert not sorted(set(REFERENCE[short]) - set(module.__all__))


def test_the_package_lists_the_reference_namespace():
    assert not sorted(set(REFERENCE["bob.learn.em"]) - set(emkit.__all__))
