"""The README's Python examples run and print what they should (the cluster one needs a grid)."""

import pathlib
import re

README = pathlib.Path(__file__).parents[2] / "README.md"


def test_readme_examples_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the example writes a model file
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    runnable = [b for b in blocks if "dask_jobqueue" not in b]
    assert runnable
    for block in runnable:
        exec(compile(block, str(README), "exec"), {})
    *_, score, batched = (float(x) for x in capsys.readouterr().out.strip().splitlines()[-2:])
    assert abs(score) < 1e3  # an ISV score, printed by the example
    assert abs(batched - score) <= 1e-10 * abs(score)  # the same pair through score_matrix
    assert (tmp_path / "isv.h5").is_file()
