"""Every file emkit writes for a user to keep (tests/support/writer_cases.py), when the write
fails midway: a full disk, Ctrl-C, a file size limit, a directory where no file can be made.

What a user must meet: an error naming the file and the cause, the previous content of every
target as it was, and no temporary file left in the directory.  Before: a full disk while an
HDF5 file was written crashed the process (SIGSEGV inside libhdf5, h5py issue 914), and a full
disk under a text or binary writer raised ``[Errno 28] No space left on device`` naming no file.
"""

import builtins
import errno
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from writer_cases import WRITERS

OLD = b"previous content"
FAIL_AFTER = 100  # bytes: every case writes more


def _folder_with_old_targets(tmp_path, targets) -> Path:
    folder = tmp_path / "out"
    for name in targets:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(OLD)
    return folder


def _assert_left_as_it_was(folder, targets):
    for name in targets:
        assert (folder / name).read_bytes() == OLD, name
    left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    kept = {str(Path(name)) for name in targets} | {str(Path(name).parent) for name in targets}
    assert set(left) <= kept, left  # no temporary file


class _FailingFile:
    """A file whose writes fail once ``budget`` bytes are written: on an unbuffered file, the
    write that crosses it writes what fits (as the kernel does) and the next raises
    ``failure``; on a buffered or text file (whose writes are whole or fail), it raises."""

    def __init__(self, file, budget: list, failure):
        self._file, self._budget, self._failure = file, budget, failure

    def write(self, data):
        size = len(data) if isinstance(data, str) else memoryview(data).nbytes
        if size > self._budget[0] and (self._budget[0] == 0 or not isinstance(self._file, io.FileIO)):
            raise self._failure
        if size > self._budget[0]:
            size = self._budget[0]
            data = memoryview(data).cast("B")[:size]
        self._budget[0] -= size
        return self._file.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()

    def __getattr__(self, name):
        return getattr(self._file, name)


def _fail_writes(monkeypatch, modules, failure):
    budget = [FAIL_AFTER]

    def failing_open(path, mode="r", *args, **kwargs):
        file = builtins.open(path, mode, *args, **kwargs)
        return _FailingFile(file, budget, failure) if set(mode) & set("wa+") else file

    for module in modules:
        monkeypatch.setattr(f"{module}.open", failing_open, raising=False)


@pytest.mark.parametrize("writer", WRITERS)
def test_a_full_disk_names_the_file_and_leaves_it_as_it_was(tmp_path, monkeypatch, writer):
    write, targets, modules = WRITERS[writer]
    folder = _folder_with_old_targets(tmp_path, targets)
    _fail_writes(monkeypatch, modules, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    with pytest.raises(OSError) as info:
        write(folder)
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename in [str(folder / name) for name in targets], str(info.value)
    assert str(info.value).startswith("[Errno 28] No space left on device: ")
    _assert_left_as_it_was(folder, targets)


@pytest.mark.parametrize("writer", WRITERS)
def test_ctrl_c_in_the_middle_of_a_write_leaves_the_file_as_it_was(tmp_path, monkeypatch, writer):
    write, targets, modules = WRITERS[writer]
    folder = _folder_with_old_targets(tmp_path, targets)
    _fail_writes(monkeypatch, modules, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        write(folder)
    _assert_left_as_it_was(folder, targets)


# the kernel's own failure of a write (a file size limit: EFBIG, the path of ENOSPC), every
# writer in one child process, which a crash ends
UNDER_A_SIZE_LIMIT = textwrap.dedent("""
    import json, resource, signal, sys
    from pathlib import Path
    from writer_cases import WRITERS
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    folder = Path(sys.argv[1])
    for writer, (write, targets, modules) in WRITERS.items():
        here = folder / writer.replace(" ", "_")
        for name in targets:
            (here / name).parent.mkdir(parents=True, exist_ok=True)
            (here / name).write_bytes(b"previous content")
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (%d, limit[1]))
        try:
            write(here)
            error = None
        except OSError as exc:
            error = [exc.errno, exc.filename, str(exc)]
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        print(json.dumps([writer, error]), flush=True)
""" % FAIL_AFTER)


@pytest.fixture(scope="module")
def under_a_size_limit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("limited")
    support = str(Path(__file__).parents[1] / "support")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([support, *sys.path])}
    child = subprocess.run([sys.executable, "-c", UNDER_A_SIZE_LIMIT, str(folder)], env=env,
                           capture_output=True, text=True, timeout=300)
    results = dict(json.loads(line) for line in child.stdout.splitlines())
    return folder, results, child


@pytest.mark.parametrize("writer", WRITERS)
def test_a_write_the_kernel_refuses_is_an_error_not_a_crash(under_a_size_limit, writer):
    folder, results, child = under_a_size_limit
    assert writer in results, f"exit status {child.returncode}: {child.stderr[-2000:]}"
    _, targets, _ = WRITERS[writer]
    here = folder / writer.replace(" ", "_")
    code, filename, _ = results[writer]
    assert code == errno.EFBIG and filename in [str(here / name) for name in targets]
    _assert_left_as_it_was(here, targets)
