"""A recipe step's stamp (``<work_dir>/.stamps/<step>.json``) read as an untrusted file: whatever
is in its place, the step is out of date (it runs again and writes a new stamp), never a hang, an
endless read or a crash of the runner."""

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emkit.recipe import FunctionStep, Runner


@pytest.fixture
def stamped(tmp_path):
    """A step run once (its stamp written) and the runner's work directory."""
    output = tmp_path / "out.txt"

    def write(context):
        output.write_text("x")
        return "wrote"

    step = FunctionStep("s", write, param_values={"a": 1}, output_paths=[str(output)])
    work = tmp_path / "work"
    assert Runner(work).run([step], None)[0].status == "run"
    stamp = work / ".stamps" / "s.json"
    assert Runner(work).up_to_date(step, {})
    return step, work, stamp


def _replace(stamp, content=None, make=None):
    stamp.unlink()
    if make is not None:
        make(stamp)
    else:
        stamp.write_bytes(content)


@pytest.mark.parametrize("make", [os.mkfifo, lambda p: os.symlink("/dev/zero", p)],
                         ids=["named pipe", "link to /dev/zero"])
def test_a_stamp_that_is_a_pipe_or_an_endless_device_is_out_of_date_not_a_hang(stamped, no_hang,
                                                                                make):
    # the stamp was read by name (Path.read_text): a named pipe blocked the run forever, and a
    # link to /dev/zero read until memory ran out
    step, work, stamp = stamped
    _replace(stamp, make=make)
    assert not Runner(work).up_to_date(step, {})
    assert Runner(work).run([step], None)[0].status == "run"  # the step runs; a new stamp
    assert not stamp.is_symlink() and json.loads(stamp.read_text())["step"] == "s"
    assert Runner(work).run([step], None)[0].status == "skipped"


def test_a_stamp_that_is_a_link_to_a_valid_stamp_is_not_followed(stamped, tmp_path):
    step, work, stamp = stamped
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(stamp.read_bytes())
    _replace(stamp, make=lambda p: os.symlink(elsewhere, p))
    assert not Runner(work).up_to_date(step, {})


def _edited(stamp, **fields):
    return json.dumps(dict(json.loads(stamp.read_text()), **fields)).encode()


@pytest.mark.parametrize("edit", [
    lambda stamp: b"[" * 100_000,  # RecursionError from json
    lambda stamp: _edited(stamp, outputs=list(json.loads(stamp.read_text())["outputs"])),
    lambda stamp: _edited(stamp, outputs=5),
    lambda stamp: _edited(stamp, outputs=[1, "a"]),
    lambda stamp: _edited(stamp, outputs={p: 5 for p in json.loads(stamp.read_text())["outputs"]}),
    lambda stamp: b"[]",
    lambda stamp: b"\xff\xfe{}",
], ids=["nested", "outputs a list", "outputs a number", "outputs mixed", "digests numbers",
        "a list", "not UTF-8"])
def test_a_stamp_of_another_layout_is_out_of_date_not_a_crash(stamped, edit):
    # a stamp nested 10^5 deep raised RecursionError, outputs as a list of the paths TypeError
    # ("list indices must be integers"), outputs 5 or [1, "a"] TypeError, out of the runner
    step, work, stamp = stamped
    _replace(stamp, edit(stamp))
    assert not Runner(work).up_to_date(step, {})
    assert Runner(work).run([step], None)[0].status == "run"


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["step", "params", "inputs", "outputs", "x"]),
                                      inner, max_size=4), max_leaves=12)


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(doc=JSON, raw=st.binary(max_size=64), pick=st.sampled_from(["json", "raw", "spliced"]))
def test_fuzz_stamps_are_out_of_date_or_valid(stamped, doc, raw, pick):
    step, work, stamp = stamped
    valid = json.loads(stamp.read_text()) if not stamp.is_symlink() and stamp.exists() else None
    content = {"json": json.dumps(doc).encode(), "raw": raw,
               "spliced": json.dumps(dict(valid or {}, outputs=doc)).encode()}[pick]
    stamp.write_bytes(content)
    assert Runner(work).up_to_date(step, {}) in (True, False)
    if valid is not None:
        stamp.write_text(json.dumps(valid))
