"""What ``pip install emkit`` gets: the wheel holds every module and every data file emkit reads.

The tests run from the checkout, where a module or data file the wheel lacks still imports
(a folder without ``__init__.py`` is a namespace package here, and is left out of the wheel by
``packages.find``; a data file that no ``package-data`` pattern matches is not copied).  So the
wheel's contents are computed from pyproject.toml with setuptools' own package finder, and, where
setuptools is new enough to read pyproject.toml (>= 77), a wheel is built and listed as well.
Also: every package emkit imports is a requirement, the version has one source, the console
script exists, and --help cites no file of the source repository as if it were installed.
"""

from __future__ import annotations

import ast
import fnmatch
import os
import re
import shutil
import subprocess
import tarfile
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml needs tomllib or tomli")

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = SRC / "emkit"
LARGEST_DATA_FILE = 1 << 20  # the largest shipped now (japanese_vowels.npz) is 0.37 MB


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _files_under_package() -> list:
    """Every file under src/emkit, as its path relative to src (Python caches left out)."""
    found = []
    for folder, subfolders, names in os.walk(PACKAGE):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        found += [Path(folder, n).relative_to(SRC) for n in sorted(names) if not n.endswith(".pyc")]
    return found


def _shipped_packages() -> set:
    """The packages setuptools puts in the wheel, as [tool.setuptools.packages.find] configures."""
    setuptools = pytest.importorskip("setuptools", reason="setuptools (the build backend) is "
                                     "not installed")
    find = dict(_pyproject()["tool"]["setuptools"]["packages"]["find"])
    assert find.pop("where") == ["src"], "the tests below assume the src layout"
    return set(setuptools.find_packages(where=str(SRC), **find))


def _is_package_data(relative: Path) -> bool:
    """Whether a [tool.setuptools.package-data] pattern of a package above ``relative`` matches."""
    patterns = _pyproject()["tool"]["setuptools"].get("package-data", {})
    for package, globs in patterns.items():
        prefixes = [Path(*package.split("."))] if package != "*" else list(relative.parents)[:-1]
        for prefix in prefixes:
            if prefix in relative.parents and any(
                    _glob_matches(relative.relative_to(prefix), g) for g in globs):
                return True
    return False


def _glob_matches(path: Path, pattern: str) -> bool:
    """As setuptools' glob: ``*`` stays within one folder (``**`` patterns are not used here)."""
    parts = pattern.split("/")
    assert "**" not in parts, "extend this test to ** patterns"
    return len(parts) == len(path.parts) and all(
        fnmatch.fnmatchcase(name, glob) for name, glob in zip(path.parts, parts))


def _expected_wheel_files() -> set:
    packages = _shipped_packages()
    shipped = set()
    for relative in _files_under_package():
        if relative.suffix == ".py":
            in_package = ".".join(relative.parent.parts) in packages
        else:  # data belong to the package that names them, in any folder below it
            in_package = _is_package_data(relative)
        if in_package:
            shipped.add(relative.as_posix())
    return shipped


def test_every_module_is_in_a_package_the_wheel_ships():
    """A module in a folder without __init__.py imports from the checkout, not from a wheel."""
    packages = _shipped_packages()
    missing = [str(p) for p in _files_under_package()
               if p.suffix == ".py" and ".".join(p.parent.parts) not in packages]
    assert not missing, f"modules left out of the wheel (add an __init__.py): {missing}"
    assert {"emkit", "emkit.datasets", "emkit.cli", "emkit.io"} <= packages


def test_every_data_file_under_the_package_is_package_data():
    """emkit.datasets reads its .npz files with importlib.resources: they must be in the wheel.

    Every other file beside the modules is shipped too (or it would be dead weight in the
    checkout); the data's README carries the licence and attribution the data sets ask for.
    """
    data = [p for p in _files_under_package() if p.suffix != ".py"]
    not_shipped = [str(p) for p in data if not _is_package_data(p)]
    assert not not_shipped, f"files under src/emkit that no package-data pattern ships: " \
                            f"{not_shipped}"
    names = {p.as_posix() for p in data}
    assert {"emkit/datasets/data/japanese_vowels.npz", "emkit/datasets/data/old_faithful.npz",
            "emkit/datasets/data/README.md"} <= names


def test_package_data_holds_no_large_or_stray_files():
    """The package-data patterns pull in no large file, no cache and no editor or build debris."""
    shipped = [SRC / p for p in _expected_wheel_files()]
    large = [f"{p} ({p.stat().st_size} bytes)" for p in shipped
             if p.stat().st_size > LARGEST_DATA_FILE]
    assert not large, f"files over {LARGEST_DATA_FILE} bytes would be in the wheel: {large}"
    allowed = {".py", ".npz", ".md"}
    stray = [str(p) for p in shipped if p.suffix not in allowed]
    assert not stray, f"unexpected kinds of file would be in the wheel: {stray}"


def test_the_version_has_one_source():
    """pyproject.toml reads emkit.__version__, so 'emkit --version' and pip show agree."""
    project = _pyproject()["project"]
    assert "version" not in project and "version" in project.get("dynamic", [])
    dynamic = _pyproject()["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "emkit.__version__"}
    # a literal, so setuptools reads it without importing emkit (and numpy) at build time
    module = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    literals = [node.value.value for node in module.body if isinstance(node, ast.Assign)
                and [getattr(t, "id", None) for t in node.targets] == ["__version__"]
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)]
    import emkit
    assert literals == [emkit.__version__]


def test_the_entry_point_is_the_cli():
    """project.scripts names a callable that exists: the 'emkit' command of an installed wheel."""
    target = _pyproject()["project"]["scripts"]["emkit"]
    module_name, _, attribute = target.partition(":")
    import importlib
    command = getattr(importlib.import_module(module_name), attribute)
    assert callable(command) and command.__module__.startswith("emkit.cli")  # not click's group


#: imported by emkit, deliberately in no requirement: CuPy is installed by CUDA version
#: (cupy-cuda12x...), the user's choice beside the [gpu] extra's PyTorch (docs/gpu.md)
UNDECLARED_IMPORTS = {"cupy", "cupyx"}
#: Distributions of imports whose names differ, for Pythons whose packages_distributions() reads
#: only top_level.txt, which some wheels lack (Python 3.10 and scikit-learn 1.6's)
KNOWN_DISTRIBUTIONS = {"sklearn": ["scikit-learn"]}


def _third_party_imports() -> set:
    """Top-level names of the modules src/emkit imports that are neither stdlib nor emkit."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.partition(".")[0])
    # tomllib: the standard library's from Python 3.11 (tomli below, on 3.10)
    return names - set(sys.stdlib_module_names) - {"emkit", "tomllib"}


def _requirements() -> list:
    from packaging.requirements import Requirement

    project = _pyproject()["project"]
    extras = project.get("optional-dependencies", {}).values()
    return [Requirement(text) for text in project["dependencies"] + sum(extras, [])]


def test_every_imported_package_is_a_requirement():
    """A fresh 'pip install emkit[...]' installs what emkit imports, on every Python it allows.

    On Python 3.10 (requires-python >= 3.10) recipes are read with tomli, which nothing
    installed: 'emkit demo' (a recipe) failed there with "reading a recipe needs Python >= 3.11
    (tomllib) or the tomli package".
    """
    from importlib.metadata import packages_distributions
    from packaging.utils import canonicalize_name

    installed_as = packages_distributions()
    declared = {canonicalize_name(r.name) for r in _requirements()}
    missing = []
    for module in sorted(_third_party_imports() - UNDECLARED_IMPORTS):
        distributions = (installed_as.get(module) or KNOWN_DISTRIBUTIONS.get(module)
                         or [module])  # (not installed here: the same name)
        if not declared & {canonicalize_name(d) for d in distributions}:
            missing.append(module)
    assert not missing, f"imported by emkit but in no requirement of pyproject.toml: {missing}"
    (tomli,) = [r for r in _requirements() if r.name == "tomli"]
    assert not tomli.marker.evaluate({"python_version": "3.11"})
    assert tomli.marker.evaluate({"python_version": "3.10"})


def _help_texts() -> dict:
    """``emkit --help`` and every command's --help, white space folded: {command: text}."""
    import click

    from emkit.cli import _app

    top = click.Context(_app.cli, info_name="emkit")
    texts = {"emkit": _app.cli.get_help(top)}
    for name, command in _app.cli.commands.items():
        texts[name] = command.get_help(click.Context(command, info_name=name, parent=top))
    return {name: " ".join(text.split()) for name, text in texts.items()}


def test_help_cites_checkout_only_files_as_such():
    """docs/, examples/, scripts/ are not in the wheel: --help says where they are, or is silent.

    'emkit demo --help' pointed at examples/demo_recipe.toml and 'emkit run --help' at
    docs/recipes.md as if they were at hand; an installed emkit has neither.
    """
    unplaced = []
    for name, text in _help_texts().items():
        for sentence in re.split(r"(?<=[.;])\s", text):
            cited = re.findall(r"\b(?:docs|examples|scripts|benchmarks)/[\w./-]*", sentence)
            if cited and "source repository" not in sentence:
                unplaced.append(f"emkit {name}: {', '.join(cited)}")
    assert not unplaced, f"help texts citing files the wheel does not hold: {unplaced}"


def _setuptools_reads_pyproject() -> bool:
    try:
        from importlib.metadata import version
        major = int(version("setuptools").split(".")[0])
    except Exception:
        return False
    return major >= 77  # license = "BSD-3-Clause" (an SPDX expression) needs setuptools >= 77


@pytest.mark.slow
@pytest.mark.skipif(not _setuptools_reads_pyproject(),
                    reason="building the wheel offline needs setuptools >= 77 in this environment")
def test_the_built_wheel_holds_what_the_package_list_says(tmp_path):
    """A wheel built from a clean copy (no stale build/ folder) holds exactly the expected files."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(PACKAGE, project / "src" / "emkit",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "-w", str(out), str(project)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("emkit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt")))
    modules = {n for n in names if not n.startswith("emkit-")}
    assert modules == _expected_wheel_files()
    assert b"emkit = emkit.cli:main" in entry_points


# -- the sdist: what distribution packagers build and run the tests from -------------------------

SDIST_FOLDERS = ("tests", "docs", "examples", "scripts", "benchmarks")  # what the tests read


def _manifest_lines() -> list:
    path = ROOT / "MANIFEST.in"
    if not path.is_file():
        return []
    lines = (line.split("#")[0].split() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def test_the_sdist_manifest_grafts_the_tests_and_what_they_read():
    grafted = {line[1] for line in _manifest_lines() if line[0] == "graft"}
    assert set(SDIST_FOLDERS) <= grafted, f"MANIFEST.in grafts {sorted(grafted)}"
    for folder in SDIST_FOLDERS:
        assert (ROOT / folder).is_dir(), folder
    excluded = {pattern for line in _manifest_lines() if line[0] == "global-exclude"
                for pattern in line[1:]}
    assert {"__pycache__/*", "*.py[cod]"} <= excluded


def test_the_metadata_names_the_authors_and_urls():
    project = _pyproject()["project"]
    assert project["authors"] == [{"name": "the emkit developers"}]
    assert project["urls"] and all(url.startswith("https://") for url in project["urls"].values())


def _source_copy(destination: Path) -> Path:
    """The checkout's files (not .git, .venv, build outputs), plus local junk the sdist must skip."""
    shutil.copytree(ROOT, destination, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".pytest_cache",
        ".hypothesis", "emkit-demo", "demo-output", ".gpu-anchor"))
    for junk in ("tests/.hypothesis/examples/x", "tests/core/__pycache__/x.cpython-311.pyc",
                 ".venv/lib/x.py"):
        (destination / junk).parent.mkdir(parents=True, exist_ok=True)
        (destination / junk).write_text("junk")
    return destination


@pytest.mark.slow
@pytest.mark.skipif(not _setuptools_reads_pyproject(),
                    reason="building the sdist offline needs setuptools >= 77 in this environment")
def test_the_built_sdist_holds_the_tests_docs_and_examples(tmp_path):
    project = _source_copy(tmp_path / "project")
    out = tmp_path / "sdist"
    subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                    "build_meta.build_sdist(sys.argv[1])", str(out)],
                   cwd=project, check=True, capture_output=True, timeout=300)
    (sdist,) = out.glob("emkit-*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = {m.name.split("/", 1)[1]: m.size for m in archive.getmembers() if m.isfile()}
    for folder in SDIST_FOLDERS:
        expected = {p.relative_to(project).as_posix() for p in (project / folder).rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts and ".hypothesis" not in p.parts}
        assert expected and expected <= set(members), (folder, sorted(expected - set(members))[:5])
    assert not [name for name in members if "__pycache__" in name or ".hypothesis" in name
                or name.startswith(".venv/")]
    assert max(members.values()) <= LARGEST_DATA_FILE
    assert "tests/core/test_packaging.py" in members and "src/emkit/__init__.py" in members
