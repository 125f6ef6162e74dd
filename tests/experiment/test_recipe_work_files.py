"""The files ``emkit run`` reads back from its work folder (step stamps, ``results.json``) are read
as untrusted: a named pipe in their place is never waited on, a link never followed, an
oversized file never read into memory, and a stamp it cannot use means the step is not done."""

import json
import os
import tracemalloc

import pytest

from emkit.io.untrusted import FeatureError
from emkit.recipe import FunctionStep, Runner


def read_results(path):
    from emkit.recipe._report import read_results as read  # (new: imported here, so that the
    return read(path)                                       # other tests run on older code)


def _step(tmp_path, calls):
    out = tmp_path / "out.txt"

    def run(ctx):
        calls.append(1)
        out.write_text("x")
        return "done"

    return FunctionStep("one", run, list, {"a": 1}, [out])


def _statuses(tmp_path, step):
    return [r.status for r in Runner(tmp_path / "w").run([step], None)]


def _stamp(tmp_path):
    return tmp_path / "w" / ".stamps" / "one.json"


def _replaced(path, by):
    os.unlink(path)
    by(path)


@pytest.mark.parametrize("kind", ["fifo", "link", "dangling link"])
def test_a_stamp_replaced_by_a_pipe_or_a_link_means_not_done_and_is_replaced(tmp_path, no_hang,
                                                                             kind):
    calls = []
    step = _step(tmp_path, calls)
    assert _statuses(tmp_path, step) == ["run"] and _statuses(tmp_path, step) == ["skipped"]
    stamp, elsewhere = _stamp(tmp_path), tmp_path / "elsewhere.json"
    elsewhere.write_bytes(stamp.read_bytes())  # a stamp that would match, read through a link
    if kind == "fifo":
        _replaced(stamp, os.mkfifo)  # before: read_text waited for a writer for ever
    elif kind == "link":
        _replaced(stamp, lambda p: os.symlink(elsewhere, p))
    else:  # before: the new stamp was written through the link, to where it points
        _replaced(stamp, lambda p: os.symlink(tmp_path / "created-through-the-link", p))
    assert _statuses(tmp_path, step) == ["run"] and calls == [1, 1]
    assert stamp.is_file() and not stamp.is_symlink()
    assert not (tmp_path / "created-through-the-link").exists()
    assert _statuses(tmp_path, step) == ["skipped"]


@pytest.mark.parametrize("outputs", [["out.txt"], "out.txt", 3, None])
def test_a_stamp_of_the_wrong_types_means_not_done(tmp_path, outputs):
    calls = []
    step = _step(tmp_path, calls)
    _statuses(tmp_path, step)
    stamp = json.loads(_stamp(tmp_path).read_text())
    stamp["outputs"] = ([str(tmp_path / "out.txt")] if outputs == ["out.txt"] else outputs)
    _stamp(tmp_path).write_text(json.dumps(stamp))  # before: a list of the outputs: TypeError
    assert _statuses(tmp_path, step) == ["run"] and calls == [1, 1]


def test_a_huge_stamp_is_not_read_and_means_not_done(tmp_path):
    calls = []
    step = _step(tmp_path, calls)
    _statuses(tmp_path, step)
    stamp = json.loads(_stamp(tmp_path).read_text())
    stamp["padding"] = "x" * (40 * 2**20)  # a stamp that matches, but 40 MB
    _stamp(tmp_path).write_text(json.dumps(stamp))
    tracemalloc.start()
    try:
        assert _statuses(tmp_path, step) == ["run"]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20 and calls == [1, 1]  # before: read whole (> 80 MB traced)


def test_a_stamp_of_many_inputs_is_within_its_limit(tmp_path):
    """The limit grows with the step's inputs (a features step lists every audio file)."""
    folder = tmp_path / ("é" * 120)  # (each a \u00e9 in the stamp: 6 bytes)
    folder.mkdir()
    inputs = []
    for i in range(900):
        path = folder / f"{'é' * 100}-{i:03d}.wav"
        path.write_bytes(b"")
        inputs.append(os.fspath(path))
    out, calls = tmp_path / "out.txt", []
    step = FunctionStep("one", lambda ctx: calls.append(out.write_text("x")) or "",
                        lambda: inputs, {"a": 1}, [out])
    assert _statuses(tmp_path, step) == ["run"]
    assert _stamp(tmp_path).stat().st_size > 2**20  # beyond the room left for names and keys
    assert _statuses(tmp_path, step) == ["skipped"]


def test_results_json_replaced_by_a_pipe_is_refused_naming_it(tmp_path, no_hang):
    os.mkfifo(tmp_path / "results.json")
    with pytest.raises(FeatureError, match=r"results\.json is a named pipe, not a regular file"):
        read_results(tmp_path / "results.json")


@pytest.mark.parametrize("content, message", [
    (b"[{\"system\": \"gmm\"}", r"not valid JSON \(Expecting ',' delimiter at line 1"),
    (b"{\"system\": \"gmm\"}", r"expected a JSON list of objects .* got dict"),
    (b"[{}, 2]", r"expected a JSON list of objects .* got a list whose item 1 is int;"),
    (b"\xff[]", "not UTF-8 text")])
def test_results_json_that_is_not_a_list_of_rows_is_refused_naming_it(tmp_path, content, message):
    (tmp_path / "results.json").write_bytes(content)
    with pytest.raises(FeatureError, match=message) as info:
        read_results(tmp_path / "results.json")
    assert str(tmp_path / "results.json") in str(info.value)


def test_results_json_larger_than_any_is_refused_unread(tmp_path, monkeypatch):
    import emkit.recipe._report as report

    monkeypatch.setattr(report, "MAX_RESULTS_BYTES", 1000)
    (tmp_path / "results.json").write_text(json.dumps([{"system": "x" * 2000}]))
    with pytest.raises(FeatureError, match=r"results\.json': 2016 bytes, more than a results "
                                           r"file can be \(1000\); not read"):
        read_results(tmp_path / "results.json")


def test_the_report_refuses_a_results_json_replaced_by_a_pipe(tmp_path, no_hang):
    from emkit.recipe._report import write_report

    os.mkfifo(tmp_path / "results.json")  # before: write_report waited for a writer for ever
    recipe = {"work_dir": tmp_path, "recipe": "r", "evaluation": {"p_target": [0.01]}}
    with pytest.raises(FeatureError, match="is a named pipe, not a regular file"):
        write_report(recipe, [])
    assert not (tmp_path / "report.md").exists()


def test_the_demo_export_ignores_a_record_replaced_by_a_pipe_and_keeps_edited_files(tmp_path,
                                                                                     no_hang):
    from emkit.demo_recipe import _EXPORTED, _edited_since_export

    os.mkfifo(tmp_path / _EXPORTED)  # before: the demo waited for a writer for ever
    (tmp_path / "ours.txt").write_text("the demo's")
    (tmp_path / "edited.txt").write_text("the user's")
    (tmp_path / "big.txt").write_bytes(b"x" * (17 * 2**20))  # never read whole: edited
    texts = {"ours.txt": "the demo's", "edited.txt": "the demo's", "big.txt": "x",
             "absent.txt": "the demo's"}
    assert _edited_since_export(tmp_path, texts) == ["edited.txt", "big.txt"]


def test_a_recipe_file_larger_than_any_recipe_is_refused_unread(tmp_path):
    from emkit.recipe import load_recipe

    path = tmp_path / "recipe.toml"
    path.write_text("# " + "x" * (5 * 2**20) + "\nwork_dir = 'w'\n")
    tracemalloc.start()
    try:
        with pytest.raises(FeatureError, match=r"recipe\.toml': 5242898 bytes, more than a recipe "
                                               r"file can be \(4194304\); not read"):
            load_recipe(path)  # before: read and parsed whole (then refused for its sections)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20


@pytest.mark.parametrize("kind", ["fifo", "link"])
def test_the_demo_copies_no_pipe_or_link_in_place_of_its_raw_scores(tmp_path, monkeypatch,
                                                                    no_hang, kind):
    import emkit.recipe
    from emkit.demo_recipe import run_demo_recipe

    (tmp_path / "secret.txt").write_text("not a score file")

    def recipe_run(recipe, **options):  # what the recipe leaves, its raw scores replaced
        out = recipe.parent
        (out / "results.json").write_text(json.dumps(
            [{"system": "gmm-map", "eer": 0.1, "min_dcf": {"0.01": 0.5, "0.001": 0.6}}]))
        raw = out / "systems" / "gmm-map" / "eval.raw.txt"
        raw.parent.mkdir(parents=True)
        os.mkfifo(raw) if kind == "fifo" else os.symlink(tmp_path / "secret.txt", raw)
        return [], out / "report.md"

    monkeypatch.setattr(emkit.recipe, "run_recipe", recipe_run)
    name = "a named pipe" if kind == "fifo" else "a symbolic link"
    with pytest.raises(FeatureError, match=f"eval.raw.txt is {name}, not a regular file"):
        run_demo_recipe(tmp_path / "demo", progress=False, echo=lambda text: None)
    assert not (tmp_path / "demo" / "scores" / "gmm-map.txt").exists()  # before: the secret copied


def test_a_folder_in_place_of_a_stamp_is_refused_naming_it_before_the_step_runs(tmp_path):
    calls = []
    step = _step(tmp_path, calls)
    _statuses(tmp_path, step)
    _replaced(_stamp(tmp_path), os.mkdir)
    with pytest.raises(IsADirectoryError, match=r"step one: its stamp '.*one\.json' is a "
                                                "directory, not a file the runner wrote"):
        _statuses(tmp_path, step)  # before: "[Errno 21] Is a directory: '...'"
    assert calls == [1]
