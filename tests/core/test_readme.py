"""The README's Python examples run and print what they should (the cluster one needs a grid), its
command lines use real options, and the files and names the README and docs/ cite exist."""

import pathlib
import re
import warnings

README = pathlib.Path(__file__).parents[2] / "README.md"


def test_readme_examples_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the example writes a model file
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    runnable = [b for b in blocks if "dask_jobqueue" not in b]
    assert runnable
    with warnings.catch_warnings(record=True) as caught:  # a first example runs clean
        warnings.simplefilter("always")
        for block in runnable:
            exec(compile(block, str(README), "exec"), {})
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
    *_, score, batched = (float(x) for x in capsys.readouterr().out.strip().splitlines()[-2:])
    assert abs(score) < 1e3  # an ISV score, printed by the example
    assert abs(batched - score) <= 1e-10 * abs(score)  # the same pair through score_matrix
    assert (tmp_path / "isv.h5").is_file()


def _readme_commands():
    """``(command, arguments)`` of every ``emkit`` line of the README's shell blocks."""
    import shlex

    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("emkit "):
                _, name, *args = shlex.split(line)
                yield name, args


def test_readme_command_lines_use_real_options_and_consistent_dimensions():
    from emkit.cli import _app
    from emkit.cli._train_options import check_ivector_dims

    commands = list(_readme_commands())
    assert any(name == "train-ivector" for name, _ in commands)
    for name, args in commands:
        command = _app.cli.get_command(None, name)
        assert command is not None, name
        known = {opt for param in command.params for opt in param.opts + param.secondary_opts}
        unknown = [a.split("=")[0] for a in args if a.startswith("-") and a.split("=")[0] not in known]
        assert not unknown, (name, unknown)
        params = command.make_context(name, args, resilient_parsing=True).params
        if name == "train-ivector":  # the dimensions' usage errors, as the command raises them
            labels = "--labels" in args  # (file arguments parse to None: the files are not here)
            check_ivector_dims(labels, params["dim"], params["plda"], params["lda_dim"],
                               params["plda_dim"])


ROOT = README.parent
_PATH = re.compile(r"`([A-Za-z0-9_./-]+/[A-Za-z0-9_.-]+\.(?:py|md))`((?:[:,] `[A-Za-z_][A-Za-z0-9_.]*`)*)")


def _in_repository(path: str):
    for base in (ROOT, ROOT / "docs", ROOT / "src", ROOT / "src" / "emkit", ROOT / "tests"):
        found = (base / path).resolve()
        if found.is_file() and found.is_relative_to(ROOT.resolve()):
            return found
    return None


def test_file_paths_and_names_in_the_docs_are_in_the_repository():
    for doc in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for path, names in _PATH.findall(doc.read_text()):
            found = _in_repository(path)
            assert found is not None, f"{doc.name}: {path} is not in the repository"
            for name in re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)", names):
                assert re.search(rf"^(def|class) {name}\b|^{name} = ", found.read_text(), re.M), \
                    f"{doc.name}: {path} defines no {name}"
