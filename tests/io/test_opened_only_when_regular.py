"""A path that is not a regular file is refused before it is opened (opening a device can act:
a tape rewinds, a terminal may become the process's), and a terminal put there after the check
is opened with ``O_NOCTTY``: the feature readers (open_checked), the run's lock, spill files."""

import os
import stat

import numpy as np
import pytest

import emkit.io.untrusted as untrusted
from emkit._backend import _spill_files
from emkit.recipe import FunctionStep, Runner


@pytest.fixture
def opened(monkeypatch):
    """The ``(path, flags)`` of every ``os.open`` while the test runs."""
    calls, real = [], os.open

    def recording(path, flags, *args, **kwargs):
        calls.append((os.fspath(path), flags))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording)
    return calls


def _device(path):
    """A character device node at ``path`` (the numbers of /dev/null: harmless), or a skip."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except (PermissionError, AttributeError):
        pytest.skip("making a device node needs root (CAP_MKNOD)")
    return path


def _named(calls, path):
    return [flags for p, flags in calls if os.path.basename(p) == os.path.basename(path)]


def test_the_feature_readers_check_before_they_open_and_never_take_a_terminal(tmp_path, opened):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(untrusted.FeatureError, match="is a named pipe"):
        untrusted.open_regular(tmp_path / "pipe")
    assert _named(opened, "pipe") == []  # (a guard: open_checked stat-ed first already)
    (tmp_path / "file").write_bytes(b"x")
    untrusted.open_regular(tmp_path / "file").close()
    flags, = _named(opened, "file")
    assert flags & os.O_NONBLOCK and flags & os.O_NOCTTY  # before: no O_NOCTTY


def test_a_device_at_the_runs_lock_is_refused_unopened(tmp_path, opened):
    out = tmp_path / "out.txt"
    step = FunctionStep("one", lambda ctx: out.write_text("x") or "", list, {}, [out])
    (tmp_path / "w" / ".stamps").mkdir(parents=True)
    _device(tmp_path / "w" / ".stamps" / "lock")
    with pytest.raises(untrusted.FeatureError, match=r"the run's lock '.*lock' is a character "
                                                     "device, not the regular file emkit makes: "
                                                     "remove it and run again"):
        Runner(tmp_path / "w").run([step], None)
    assert _named(opened, "lock") == [] and not out.exists()  # before: opened read-write, run


@pytest.mark.parametrize("kind", ["fifo", "link"])
def test_a_pipe_or_a_link_at_the_runs_lock_is_refused_naming_it(tmp_path, kind):
    out = tmp_path / "out.txt"
    step = FunctionStep("one", lambda ctx: out.write_text("x") or "", list, {}, [out])
    lock = tmp_path / "w" / ".stamps" / "lock"
    lock.parent.mkdir(parents=True)
    if kind == "fifo":
        os.mkfifo(lock)  # before: opened read-write (no wait) and locked: a run went on
    else:
        os.symlink(tmp_path / "elsewhere", lock)  # before: "[Errno 40] Too many levels of ..."
    name = "a named pipe" if kind == "fifo" else "a symbolic link"
    with pytest.raises(untrusted.FeatureError, match=f"the run's lock '.*lock' is {name}"):
        Runner(tmp_path / "w").run([step], None)
    assert not out.exists() and not (tmp_path / "elsewhere").exists()


def test_a_device_at_a_spill_files_path_is_refused_unopened(tmp_path, opened):
    path = _spill_files.write_partition([np.arange(3.0)], str(tmp_path), "emkit-spill-t", 0)[0]
    os.unlink(path)
    _device(path)
    opened.clear()
    with pytest.raises(OSError, match="is a character device, not the regular file emkit wrote"):
        _spill_files.read_partitions(path)
    assert _named(opened, path) == []


def test_a_small_file_read_bounded_allocates_its_size_not_the_limit(tmp_path, monkeypatch):
    import tracemalloc

    from emkit.io import small_files

    path = tmp_path / "small.json"
    path.write_text('{"a": 1}')
    tracemalloc.start()
    try:
        assert small_files.read_json(path, 64 * 2**20, "results file") == {"a": 1}
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20  # (read(limit + 1) allocated the 64 MiB limit first)
    monkeypatch.setattr(small_files, "file_size", lambda f: 3)  # as if it grew after fstat
    assert small_files.read_bounded(path, 100, "file") == b'{"a": 1}'
    with pytest.raises(untrusted.FeatureError, match=r"small\.json': over 5 bytes \(grown while "
                                                     r"read\), more than a file can be \(5\)"):
        small_files.read_bounded(path, 5, "file")
