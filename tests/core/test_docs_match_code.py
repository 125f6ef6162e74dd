"""What docs/ and README.md state about keys, defaults and links is what the code does.

Guards against drift: the tables of docs/recipes.md against the recipe schema, the command-line
defaults the README quotes against click's, and every link between the documents."""

import ast
import dataclasses
import inspect
import pathlib
import re
import textwrap

ROOT = pathlib.Path(__file__).parents[2]
RECIPES = ROOT / "docs" / "recipes.md"
README = ROOT / "README.md"

REQUIRED = ...


def _default_cell(text: str):
    """A default as docs/recipes.md writes it: a literal in backquotes, or words."""
    text = text.strip()
    if text in ("required", "none") or text.startswith("(this or"):
        return REQUIRED if text == "required" else None
    return ast.literal_eval(text.strip("`"))


def _sections() -> dict:
    """``{heading: {key: default}}`` of the key tables of docs/recipes.md."""
    sections, heading = {}, None
    for line in RECIPES.read_text().splitlines():
        if line.startswith("### "):
            heading = re.match(r"### `?([^`:]+)", line).group(1)
        elif heading and line.startswith("| `"):
            cells = re.split(r"(?<!\\)\|", line)[1:-1]  # an escaped \| is in a cell
            if len(cells) != 4:  # the table of system kinds: the next test reads it
                continue
            key, _type, default, _meaning = (cell.strip() for cell in cells)
            sections.setdefault(heading, {})[key.strip("`")] = _default_cell(default)
        elif line.startswith("## ") and heading:
            break
    return sections


def _schema_defaults(spec: dict) -> dict:
    return {key: default for key, (_kind, default) in spec.items()}


def test_recipe_key_tables_are_the_schema():
    from emkit.recipe import _schema

    documented = _sections()
    assert documented.pop("Top level") == _schema_defaults(_schema.TOP)
    headings = {"[data.NAME]": "data", "[ubm]": "ubm", "[conditions.NAME]": "conditions",
                "[norm]": "norm", "[calibration]": "calibration", "[evaluation]": "evaluation"}
    assert {headings[h] for h in documented} == set(_schema.SECTIONS)
    for heading, keys in documented.items():
        assert keys == _schema_defaults(_schema.SECTIONS[headings[heading]]), heading


def test_recipe_system_keys_are_the_schema():
    from emkit.recipe import _schema

    text = RECIPES.read_text()
    rows = dict(re.findall(r'^\| `"([a-z-]+)"` \| (.*) \|$', text, re.M))
    assert set(rows) == set(_schema.SYSTEM_KINDS)
    for kind, cell in rows.items():
        documented = {key: None if default == "none" else ast.literal_eval(default.strip("`"))
                      for key, default in re.findall(r"`(\w+)` \((`?[\w.\"]+`?)", cell)}
        if "`lda_dim` and `plda_dim` (none" in cell:
            documented.update(lda_dim=None, plda_dim=None)
        assert documented == _schema_defaults(_schema.SYSTEM_KINDS[kind]), kind
    common = _schema_defaults(_schema.COMMON_SYSTEM)
    assert common["relevance_factor"] == 4.0 and "`relevance_factor` (default `4.0`" in text


def test_recipe_feature_keys_are_the_feature_options():
    from emkit.audio import FeatureConfig, KaldiOptions

    paragraph = RECIPES.read_text().split("### `[features]`")[1].split("See `emkit.audio")[0]
    documented = set(re.findall(r"`([a-z_]+)`", paragraph))
    fields = {f.name for cls in (KaldiOptions, FeatureConfig) for f in dataclasses.fields(cls)}
    # not feature options: the data sets' key, the step's own option and words quoted in passing
    others = {"audio", "keep_going", "segments", "true", "false"}
    assert documented - others == fields - {"kaldi"}
    assert {"audio", "keep_going"} <= documented


def test_command_line_defaults_the_readme_quotes():
    from emkit.cli import _app

    def default(command, name):
        (param,) = [p for p in _app.cli.get_command(None, command).params if p.name == name]
        return param.default

    text = " ".join(README.read_text().split())
    assert "`--top-n` (adaptive S-norm only, default 200)" in text
    from emkit.evaluation import cohort
    from emkit.cli._norm import NORM_HELP

    assert "[default: 200;" in NORM_HELP["top_n"]  # (None in click: the command fills it in)
    assert inspect.signature(cohort.normalise).parameters["top_n"].default == 200
    assert "`--dither-seed N` (0 by default" in text and default("features", "dither_seed") == 0
    assert "emkit does not (`0`" in text and default("features", "dither") == 0.0
    assert "`--channel=-1` (the default)" in text and default("features", "channel") is None
    assert "`--verbose=N` (N >= 1)" in text and default("features", "verbose") is None
    assert "-2 or less" in text  # the README says what --verbose=-2 does (hides warnings)
    assert "a recipe's i-vector system to `plda`" in RECIPES.read_text()
    assert "`emkit enroll --backend` defaults to `cosine`" in RECIPES.read_text()
    assert default("enroll", "backend") == "cosine"


def test_links_between_the_documents_resolve():
    docs = [README, *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("examples/*/*.md"))]
    for doc in docs:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", doc.read_text()):
            if not target.startswith(("http://", "https://")):
                assert (doc.parent / target).exists(), f"{doc.name}: {target}"


def test_every_table_row_has_the_cells_of_its_header():
    """A bare ``|`` inside a cell (``target|nontarget``, ``k-means||``) splits it: it must be
    written ``\\|``, or the table shows the rest of the row under the wrong heading."""
    for doc in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        header = None
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            if not line.startswith("|"):
                header = None
                continue
            cells = len(re.split(r"(?<!\\)\|", line))
            header = cells if header is None else header
            assert cells == header, f"{doc.name}:{number}: {cells - 2} cells, not {header - 2}"


def test_python_blocks_of_the_docs_run(tmp_path, monkeypatch):
    """docs/*.md's Python examples run as written (README.md's: tests/core/test_readme.py)."""
    monkeypatch.chdir(tmp_path)
    blocks = [(doc, block) for doc in sorted((ROOT / "docs").glob("*.md"))
              for block in re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)]
    assert blocks
    import emkit

    try:
        for doc, block in blocks:
            exec(compile(block, str(doc), "exec"), {})
    finally:
        emkit.set_config(device="cpu")


def _resolves(package: str, target: str) -> bool:
    import importlib

    name = package + target if target.startswith(".") else target
    for candidate in (name, f"{package}.{name}"):
        parts = candidate.split(".")
        for split in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            try:
                for part in parts[split:]:
                    obj = getattr(obj, part)
                return True
            except AttributeError:
                break
    return False


def test_package_docstrings_name_what_exists():
    import importlib
    import pkgutil

    import emkit

    packages = ["emkit", *(f"emkit.{m.name}" for m in pkgutil.iter_modules(emkit.__path__)
                           if m.ispkg and not m.name.startswith("_"))]
    for package in packages:
        doc = importlib.import_module(package).__doc__
        for target in re.findall(r":(?:func|class|mod|data|meth|attr):`~?([^`]+)`", doc):
            assert _resolves(package, target), f"{package}'s docstring: {target}"


def test_ivector_docstring_pipeline_runs_on_ivectors():
    import numpy as np

    import emkit.ivector

    code = emkit.ivector.__doc__.split("WCCN::\n")[1]
    ivectors = np.random.default_rng(0).normal(size=(400, 160))

    class Machine:  # stands for a trained IVectorMachine: (S, R) i-vectors
        def transform(self, stats):
            return ivectors

    namespace = {"machine": Machine(), "train_stats": None, "test_stats": None,
                 "speaker_labels": np.repeat(np.arange(200), 2)}
    exec(compile(textwrap.dedent(code), "emkit.ivector.__doc__", "exec"), namespace)
    assert namespace["projected"].shape == (400, 150)


MINIMAL_RECIPE = """\
[data.train]
features = ["a.npy"]
[ubm]
data = "train"
[systems.map]
kind = "gmm-map"
[conditions.eval]
data = "train"
enroll = "enroll"
trials = "trials"
"""


def test_recipe_tables_docs_call_required_are_the_required_ones(tmp_path):
    import numpy as np
    import pytest

    from emkit.recipe import RecipeError, load_recipe

    text = " ".join(RECIPES.read_text().split())
    documented = re.search(r"The tables (.*?) are required;", text).group(1)
    required = sorted(re.findall(r"`\[(\w+)", documented))
    assert required == ["conditions", "data", "systems", "ubm"]
    np.save(tmp_path / "a.npy", np.zeros((20, 2)))
    for name in ("enroll", "trials"):
        (tmp_path / name).write_text("")
    tables = re.split(r"(?m)^(?=\[)", MINIMAL_RECIPE)[1:]
    (tmp_path / "recipe.toml").write_text(MINIMAL_RECIPE)
    load_recipe(tmp_path / "recipe.toml")  # [features], [norm], [calibration], [evaluation]: none
    for table in tables:
        (tmp_path / "recipe.toml").write_text(MINIMAL_RECIPE.replace(table, ""))
        section = table[1:].split(".")[0].split("]")[0]
        with pytest.raises(RecipeError, match=rf": {section}: missing \(required table\)"):
            load_recipe(tmp_path / "recipe.toml")


def test_kept_statistics_size_the_readme_and_help_quote():
    from emkit.cli import _app
    from emkit.experiment._stats_file import statistics_bytes

    quoted = ("U (16 C D + 8 C + 16) bytes for U utterances, C Gaussians and D features "
              "(198 GB at U=100,000, C=2048, D=60)")
    assert quoted in " ".join(README.read_text().split())
    command = _app.cli.get_command(None, "train-isv")
    (checkpoint,) = [p for p in command.params if p.name == "checkpoint"]
    assert "U (16 C D + 8 C + 16) bytes" in checkpoint.help and "198 GB at" in checkpoint.help
    assert round(statistics_bytes(100_000, 2048, 60) / 1e9) == 198
    assert statistics_bytes(1, 3, 2) == 16 * 3 * 2 + 8 * 3 + 16


def test_every_top_level_module_imports_first():
    """Each top-level public module and package of ``emkit`` (``emkit.demo``, ``emkit.recipe``...:
    those the docs name; not their submodules) imports in an interpreter that has loaded no emkit
    module yet: no import cycle among them depends on which comes first.  One process, emkit's
    modules dropped from ``sys.modules`` before each (the third-party ones stay: only emkit's code
    runs again)."""
    import subprocess
    import sys

    code = textwrap.dedent("""
        import importlib, pkgutil, sys
        import emkit
        names = sorted(m.name for m in pkgutil.iter_modules(emkit.__path__, "emkit.")
                       if not m.name.startswith("emkit._"))
        assert "emkit.demo" in names and "emkit.experiment" in names
        for name in names:
            for loaded in [m for m in sys.modules if m == "emkit" or m.startswith("emkit.")]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except Exception as exc:
                print(name, type(exc).__name__, exc)
        print("done")
        """)
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                          text=True, timeout=300)
    assert proc.stdout.splitlines()[-1:] == ["done"], proc.stderr
    assert proc.stdout.splitlines()[:-1] == []


def _demo(**config):
    import dataclasses
    import warnings

    from emkit.experiment import DemoConfig, run_demo

    with warnings.catch_warnings():  # the UBM's 50 EM iterations do not converge (as documented)
        warnings.simplefilter("ignore")
        return run_demo(None, config=dataclasses.replace(DemoConfig(), **config),
                        progress=False, echo=lambda text: None)


def test_demo_table_in_the_readme_is_what_the_demo_prints():
    quoted = README.read_text().split("With seed 0:\n\n  ```\n")[1].split("  ```")[0]
    assert [line.strip() for line in quoted.splitlines()] == _demo().table.splitlines()


def test_gselect_page_demo_eers_are_what_the_demo_gives():
    text = (ROOT / "docs" / "gselect.md").read_text()
    rows = dict(re.findall(r"^\| (exact|gselect [^|]+?) \| (.*) \|$", text, re.M))
    assert len(rows) == 5
    for name, cells in rows.items():
        if name == "exact":
            config = {}
        else:
            k, _, posterior = name.removeprefix("gselect ").partition(", min_posterior ")
            config = {"gselect": int(k), "min_posterior": float(posterior or 0.0)}
        eers = [f"{100 * row[2]:.2f}" for row in _demo(**config).rows]
        assert eers == [cell.strip() for cell in cells.split("|")], name


def test_old_faithful_example_runs_and_finds_the_two_eruption_kinds(capsys):
    import runpy
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runpy.run_path(str(ROOT / "examples" / "old_faithful.py"), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("UBM after ") and lines[0].endswith(" EM iterations")
    assert lines[1] == "weights   [0.3565 0.6435]"  # short and long eruptions, as is well known
    assert lines[-1].startswith("MAP means adapted to short eruptions [[2.03")


def test_espeak_recipe_uses_only_known_keys(tmp_path):
    """examples/espeak_recipe/recipe.toml is read by the recipe schema (its audio made empty)."""
    import shutil

    from emkit.recipe import load_recipe

    recipe = tmp_path / "recipe.toml"
    shutil.copy(ROOT / "examples" / "espeak_recipe" / "recipe.toml", recipe)
    for split in ("train", "cohort", "dev", "eval"):
        data = tmp_path / "data" / split
        (data / "wav").mkdir(parents=True)
        (data / "wav.scp").write_text(f"{split}-1 wav/{split}-1.wav\n")
        (data / "utt2spk").write_text(f"{split}-1 spk\n")
    (tmp_path / "lists").mkdir()
    for name in ("dev.enroll", "dev.trials", "eval.enroll", "eval.trials"):
        (tmp_path / "lists" / name).write_text("")
    sections = load_recipe(recipe)
    assert sorted(sections["systems"]) == ["gmm", "isv", "ivector-cosine", "ivector-plda"]


def test_dither_note_the_readme_quotes():
    from emkit.cli._kaldi_config import dither_note

    text = " ".join(README.read_text().split())
    quoted = re.search(r"\(`emkit features: note: (no --dither in [^`]*)`\)", text).group(1)
    note = dither_note({"conf/mfcc.conf": ["num-mel-bins"]}, "mfcc")
    head, _, tail = quoted.partition(" ...,")  # the README elides the middle and the end
    assert note.startswith(head) and tail.removesuffix(" ...").strip() in note, (quoted, note)
