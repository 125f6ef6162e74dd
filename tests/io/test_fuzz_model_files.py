"""Fuzzing the HDF5 model readers with hypothesis: random bytes and damaged valid files.

Each example is loaded in a forked child under a memory cap (``resource.RLIMIT_AS``: the child's
address space when it starts, plus twice the file's size, plus ``ALLOWANCE`` for the interpreter's
own small objects) and a time limit.  A load must either succeed with finite parameters or raise
:class:`emkit.io.InvalidFileError` (or ``FileNotFoundError``); a ``MemoryError`` (an allocation
the file's size does not justify), any other exception, a crash or a hang fails the test.

``EMKIT_FUZZ_EXAMPLES`` (default 30) sets the number of examples per test.
"""

from __future__ import annotations

import os
import resource
import select
import signal
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import _model_files as mf
from emkit.io import InvalidFileError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ALLOWANCE = 2**20  # bytes: headroom for the allocator (valid files load with 0 here)
TIME_LIMIT = 60.0  # seconds per load: far above any load here; only a hang reaches it
EXAMPLES = int(os.environ.get("EMKIT_FUZZ_EXAMPLES", "30"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    paths = mf.write_all(tmp_path_factory.mktemp("fuzz"))
    for kind, path in paths.items():  # every lazy import happens here, not in the children
        mf.LOADERS[kind](path)
    return paths


def _address_space() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _all_finite(obj) -> bool:
    values = [v for v in vars(obj).values() if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
    return all(np.all(np.isfinite(v)) for v in values)


def _child(load, path, size, write_fd) -> None:
    limit = _address_space() + 2 * size + ALLOWANCE
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        obj = load(path)
        outcome = "ok" if _all_finite(obj) else "loaded non-finite parameters"
    except (InvalidFileError, FileNotFoundError):
        outcome = "refused"
    except MemoryError:
        outcome = "MemoryError (allocated more than twice the file's size)"
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        outcome = f"unexpected {type(exc).__name__}: {str(exc)[:300]}"
    os.write(write_fd, outcome.encode())


def load_capped(kind: str, content: bytes) -> str:
    """Write ``content`` to a file, load it as ``kind`` in a capped child; return the outcome."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.h5")
        with open(path, "wb") as f:
            f.write(content)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child never returns into pytest
            try:
                os.close(read_fd)
                _child(mf.LOADERS[kind], path, len(content), write_fd)
            finally:
                os._exit(0)
        os.close(write_fd)
        try:
            ready, _, _ = select.select([read_fd], [], [], TIME_LIMIT)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return "hang"
            chunks = []
            while chunk := os.read(read_fd, 4096):
                chunks.append(chunk)
        finally:
            os.close(read_fd)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            return f"crash (signal {os.WTERMSIG(status)})"
        return b"".join(chunks).decode() or "child died without a word"


KINDS = sorted(mf.BUILDERS)


@FUZZ
@given(kind=st.sampled_from(KINDS),
       content=st.one_of(st.binary(max_size=2048),
                         st.binary(max_size=2048).map(lambda b: HDF5_MAGIC + b)))
def test_random_bytes(valid, kind, content):
    assert load_capped(kind, content) in ("refused", "ok")


@FUZZ
@given(kind=st.sampled_from(KINDS),
       flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                      min_size=1, max_size=8))
def test_flipped_bytes(valid, kind, flips):
    content = bytearray(valid[kind].read_bytes())
    for where, value in flips:
        content[int(where * len(content))] = value
    assert load_capped(kind, bytes(content)) in ("refused", "ok")


@FUZZ
@given(kind=st.sampled_from(KINDS), keep=st.floats(0, 1, exclude_max=True))
def test_truncated(valid, kind, keep):
    content = valid[kind].read_bytes()
    assert load_capped(kind, content[: int(keep * len(content))]) == "refused"


def test_the_cap_catches_a_real_overallocation(valid):
    """The harness itself: a loader that allocates 1 GiB for a small file is caught."""
    mf.LOADERS["__greedy"] = lambda path: np.ones(2**27)
    try:
        assert load_capped("__greedy", valid["gmm"].read_bytes()).startswith("MemoryError")
    finally:
        del mf.LOADERS["__greedy"]


def test_valid_files_load_under_the_cap(valid):
    for kind in KINDS:
        assert load_capped(kind, valid[kind].read_bytes()) == "ok"


def _free_space_entry(content: bytes) -> int:
    """Offset of the size field of the free-space entry of the file's first global heap."""
    start = content.find(b"GCOL\x01\x00\x00\x00")
    end = start + int.from_bytes(content[start + 8:start + 16], "little")
    p = start + 16
    while int.from_bytes(content[p:p + 2], "little") != 0:
        p += 16 + -(-int.from_bytes(content[p + 8:p + 16], "little") // 8) * 8
    assert p < end
    return p + 8


@pytest.mark.parametrize("size", [0, 8, 39])
def test_damaged_global_heap_is_refused_not_a_hang(valid, size):
    # found by the fuzzer: HDF5 2.0 loops forever reading a variable-length string whose global
    # heap has a free-space entry of size 0 (or wanders off with other wrong sizes)
    content = bytearray(valid["gmm"].read_bytes())
    where = _free_space_entry(bytes(content))
    content[where:where + 8] = size.to_bytes(8, "little")
    assert load_capped("gmm", bytes(content)) == "refused"


@pytest.mark.parametrize("damaged", [False, True])
def test_heap_check_reads_in_windows_and_finds_a_collection_across_two(valid, damaged, tmp_path,
                                                                        monkeypatch):
    # the scan reads the file a window at a time (a map of a whole 4 GB feature file counted in
    # a dask worker's memory); a signature that starts 2 bytes before a window's end is found
    from emkit.io import heaps

    content = bytearray(valid["gmm"].read_bytes())
    if damaged:
        where = _free_space_entry(bytes(content))
        content[where:where + 8] = (0).to_bytes(8, "little")
    path = tmp_path / "model.h5"
    path.write_bytes(bytes(content))
    start = content.find(b"GCOL\x01\x00\x00\x00")
    monkeypatch.setattr(heaps, "_WINDOW", start + 2)
    reads = []

    class Recording:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def seek(self, offset):
            return self.f.seek(offset)

        def read(self, n):
            reads.append(n)
            return self.f.read(n)

        def fileno(self):
            return self.f.fileno()

    with Recording(open(path, "rb")) as f:
        if damaged:
            with pytest.raises(InvalidFileError, match="global heap .* is inconsistent"):
                heaps.check_global_heaps(f, str(path))
        else:
            heaps.check_global_heaps(f, str(path))
    assert max(reads) <= start + 2 + 7  # a window and the signature's overlap
    assert reads.count(8) >= 1  # the collection's size was read: the signature was found
