"""Fuzzing the feature readers (Kaldi ark/scp, .npy/.npz, HDF5) with hypothesis.

Inputs are random bytes and mutations of valid files (byte flips, truncations, insertions,
deletions, int32 fields and header numbers overwritten with extreme values).  Each is read in one
long-lived child process (one interpreter start for the whole module) under

* a memory cap: ``RLIMIT_AS`` = the child's address space before the read + 2 x the input's size
  + 64 MiB (any allocation a header could declare beyond that fails), and the peak of the
  allocations ``tracemalloc`` sees (numpy's included) at most 2 x the input's size + 1 MiB (the
  interpreter's own bookkeeping);
* a time limit: an interval timer of 5 s in the child, and 60 s in the parent for a child stuck in
  C code.

The only outcomes allowed are a result of finite float64 matrices or emkit's documented
``InvalidFileError`` naming the file.  The examples are derandomised (the suite is reproducible);
``EMKIT_FUZZ_EXAMPLES=5000`` runs a longer campaign with fresh random examples.
"""

import functools
import io
import json
import os
import pathlib
import re
import select
import struct
import subprocess
import sys
import tempfile
import zipfile

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feature_files import compressed, kaldi_binary

EXAMPLES = int(os.environ.get("EMKIT_FUZZ_EXAMPLES", "0"))
SETTINGS = settings(max_examples=EXAMPLES or 50, derandomize=not EXAMPLES, deadline=None,
                    database=None, suppress_health_check=list(HealthCheck))

WORKER = r'''
import importlib.util, json, os, re, resource, signal, sys, tracemalloc, types
import numpy as np
# the readers need only emkit.io and emkit.features: skip emkit/__init__ (scikit-learn, scipy)
package = types.ModuleType("emkit")
package.__path__ = list(importlib.util.find_spec("emkit").submodule_search_locations)
sys.modules["emkit"] = package
from emkit.features import read_features
from emkit.io.arrays import HDF5RowReader
from emkit.io.errors import InvalidFileError
import emkit.io.hdf5_features  # imported on first use by read_features: not part of a read's peak

class Hang(BaseException):
    pass

def on_alarm(signum, frame):
    raise Hang()

signal.signal(signal.SIGALRM, on_alarm)

def vm_size():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))

def read(kind, path):
    if kind == "rows":  # the lazy reader: shape and dtype checked, values not scanned
        reader = HDF5RowReader.open(path, "frames")
        array = reader[0:reader.shape[0]]
        assert array.ndim == 2 and array.size > 0 and array.dtype.kind in "fiu"
        return 1
    out = read_features(path)
    for array in out.values():
        assert array.dtype == np.float64 and array.ndim == 2 and array.size > 0
        assert np.isfinite(array).all()
    return len(out)

tracemalloc.start()
hard = resource.getrlimit(resource.RLIMIT_AS)[1]
for line in sys.stdin:
    request = json.loads(line)
    kind, path, n_bytes = request["kind"], request["path"], request["bytes"]
    reply = {}
    base = vm_size()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    if request.get("limits", True):
        resource.setrlimit(resource.RLIMIT_AS, (base + 2 * n_bytes + 64 * 2**20, hard))
        signal.setitimer(signal.ITIMER_REAL, 5.0)
    try:
        reply["outcome"], reply["n"] = "ok", read(kind, path)
    except InvalidFileError as exc:
        reply["outcome"], reply["message"] = "refused", str(exc)
    except KeyError as exc:
        reply["outcome"], reply["message"] = "keyerror", str(exc)
    except BaseException as exc:
        reply["outcome"], reply["message"] = "bad", f"{type(exc).__name__}: {exc}"[:2000]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    reply["peak"] = tracemalloc.get_traced_memory()[1] - before
    print(json.dumps(reply), flush=True)
'''


class Worker:
    def __init__(self, tmp):
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                     text=True, cwd=tmp)

    def ask(self, kind, path, n_bytes, limits=True) -> dict:
        request = {"kind": kind, "path": str(path), "bytes": n_bytes, "limits": limits}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        if not ready:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the reader hung on {path} (no answer in 60 s)")
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            pytest.fail(f"the reader crashed on {path}: exit {self.proc.returncode}, "
                        f"{self.proc.stderr.read()[-2000:]}")
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def worker(workdir):
    w = Worker(workdir)
    yield w
    w.close()


def check(worker, kind, path, files, *, allow_keyerror=False):
    """Read ``path`` in the child; assert one of the allowed outcomes within the limits."""
    n_bytes = sum(os.path.getsize(f) for f in files)
    reply = worker.ask(kind, path, n_bytes)
    content = b"".join(f.read_bytes() for f in files)
    assert reply["outcome"] in ("ok", "refused") or (allow_keyerror
                                                     and reply["outcome"] == "keyerror"), \
        (reply, content[:400])
    if reply["outcome"] == "refused":
        assert str(files[0]) in reply["message"] or str(path) in reply["message"], reply
        assert "memory" not in reply["message"].lower(), reply
    assert reply["peak"] <= 2 * n_bytes + 2**20, (reply, content[:400])
    return reply


# ---------------------------------------------------------------------------------------------
# mutations
# ---------------------------------------------------------------------------------------------

EXTREMES = [0, 1, -1, 2, 255, 256, 65535, 2**20, 2**24 + 1, 2**31 - 1, -2**31, 2**30, 3, 40]

MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 2**16), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 2**16)),
    st.tuples(st.just("int32"), st.integers(0, 2**16), st.sampled_from(EXTREMES)),
    st.tuples(st.just("insert"), st.integers(0, 2**16), st.binary(min_size=1, max_size=12)),
    st.tuples(st.just("delete"), st.integers(0, 2**16), st.integers(1, 12)),
    st.tuples(st.just("number"), st.integers(0, 8), st.sampled_from(EXTREMES + [10**12])),
)
LARGE = [2**31 - 1, 10**12, 2**30, 2**24 + 1, -2**31, 2**20, 65535, -1, 0]
HEADER_EDIT = st.one_of(  # aimed at the sizes a header declares
    st.tuples(st.just("size"), st.integers(0, 16), st.sampled_from(LARGE[:1] + LARGE[2:])),
    st.tuples(st.just("number"), st.integers(0, 8), st.sampled_from(LARGE)),
)


def mutate(data: bytes, mutations) -> bytes:
    data = bytearray(data)
    for op, where, value in ((m + (None,))[:3] for m in mutations):
        if not data:
            break
        i = where % len(data)
        if op == "flip":
            data[i] ^= value
        elif op == "truncate":
            del data[i:]
        elif op == "int32":
            data[i:i + 4] = struct.pack("<i", value)
        elif op == "insert":
            data[i:i] = value
        elif op == "delete":
            del data[i:i + value]
        elif op == "number":  # a number in a text header (npy shape, scp offset or range)
            numbers = list(re.finditer(rb"\d+", bytes(data[:512])))
            if numbers:
                m = numbers[where % len(numbers)]
                data[m.start():m.end()] = str(abs(value)).encode()
        elif op == "size":  # a Kaldi int32 (size byte 4 + value) or a compressed-matrix header
            fields = [m.start() + 1 for m in re.finditer(rb"\x04", bytes(data))]
            fields += [m.end() + 8 for m in re.finditer(rb"CM[23]? ", bytes(data))]
            if fields:
                at = fields[where % len(fields)]
                data[at:at + 4] = struct.pack("<i", value)
    return bytes(data)


def inputs(seeds):
    mutated = st.tuples(st.sampled_from(seeds), st.lists(MUTATION, max_size=4)).map(
        lambda pair: mutate(*pair))
    edited = st.tuples(st.sampled_from(seeds), st.lists(HEADER_EDIT, min_size=1, max_size=2)).map(
        lambda pair: mutate(*pair))
    return st.one_of(mutated, edited, mutated, edited, st.binary(max_size=600))


# ---------------------------------------------------------------------------------------------
# seeds: small valid files of every kind
# ---------------------------------------------------------------------------------------------

M = np.random.default_rng(0).normal(size=(4, 3))


def _ark_seeds():
    plain = b"".join(f"u{k} \0B".encode() + kaldi_binary(M + k, token)
                     for k, token in enumerate(["FM", "DM"]))
    vectors = b"a \0B" + kaldi_binary(M[0], "FV") + b"b \0B" + kaldi_binary(M[1], "DV")
    headers = np.array([[0, 10000, 40000, 65535]] * 3, dtype="<u2").tobytes()
    packed = (b"c1 \0B" + compressed("CM", -1.0, 2.0, 4, 3, headers + bytes(range(12)))
              + b"c2 \0B" + compressed("CM2", -1.0, 2.0, 4, 3, bytes(range(24)))
              + b"c3 \0B" + compressed("CM3", -1.0, 2.0, 4, 3, bytes(range(12))))
    text = b"t1 [\n 1 2 3\n 4 5 6 ]\nt2 [ 7 8 9 ]\n"
    return [plain, vectors, packed, text, plain + text]


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz(compress: bool, **arrays) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buffer, **arrays)
    return buffer.getvalue()


NPY_SEEDS = [_npy(M), _npy(M.astype(">f4")), _npy(np.asfortranarray(M)),
             _npy((M * 100).astype("<i2")), _npy(M[:1])]
NPZ_SEEDS = [_npz(False, a=M, b=M[:2]), _npz(True, a=M, b=M.astype(np.float32)),
             _npz(False, arr_0=M)]


@functools.lru_cache(maxsize=None)
def _h5_seeds():
    """Small valid HDF5 files (as bytes), written once."""
    seeds = []
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="emkit-fuzz-"))
    for k, build in enumerate([
        lambda f: f.create_dataset("frames", data=M),
        lambda f: f.create_dataset("frames", data=np.tile(M, (20, 1)), chunks=(10, 3),
                                   compression="gzip"),
        lambda f: (f.create_dataset("spk/a", data=M), f.create_dataset("spk/b", data=M[:2])),
    ]):
        path = workdir / f"seed{k}.h5"
        with h5py.File(path, "w") as f:
            build(f)
        seeds.append(path.read_bytes())
        path.unlink()
    workdir.rmdir()
    return seeds


# ---------------------------------------------------------------------------------------------
# the fuzz tests
# ---------------------------------------------------------------------------------------------


def test_valid_seeds_are_read_within_the_limits(worker, workdir):
    for k, data in enumerate(_ark_seeds()):
        (workdir / f"v{k}.ark").write_bytes(data)
        assert check(worker, "features", workdir / f"v{k}.ark", [workdir / f"v{k}.ark"])[
            "outcome"] == "ok"
    for k, data in enumerate(NPY_SEEDS + NPZ_SEEDS):
        path = workdir / (f"v{k}.npy" if k < len(NPY_SEEDS) else f"v{k}.npz")
        path.write_bytes(data)
        assert check(worker, "features", path, [path])["outcome"] == "ok"
    for k, data in enumerate(_h5_seeds()):
        path = workdir / f"v{k}.h5"
        path.write_bytes(data)
        assert check(worker, "features", path, [path])["outcome"] == "ok"


@SETTINGS
@given(data=inputs(_ark_seeds()))
def test_fuzz_kaldi_archives(worker, workdir, data):
    path = workdir / "f.ark"
    path.write_bytes(data)
    check(worker, "features", path, [path])


@SETTINGS
@given(ark=inputs(_ark_seeds()[:1]), scp=st.sampled_from([0, 1, 2]), edits=st.lists(MUTATION,
                                                                                    max_size=3))
def test_fuzz_kaldi_script_files(worker, workdir, ark, scp, edits):
    (workdir / "s.ark").write_bytes(ark)
    seed = ["u0 s.ark:3\nu1 s.ark:69\n", "u0 s.ark:3[1:2]\nu1 s.ark:69[0:3,1:2]\n",
            "\ufeffu0 s.ark:3\n# comment\n\nu1 s.ark\n"][scp]
    (workdir / "s.scp").write_bytes(mutate(seed.encode(), edits))
    check(worker, "features", workdir / "s.scp", [workdir / "s.scp", workdir / "s.ark"])


@SETTINGS
@given(data=inputs(NPY_SEEDS))
def test_fuzz_npy(worker, workdir, data):
    path = workdir / "f.npy"
    path.write_bytes(data)
    check(worker, "features", path, [path])


@SETTINGS
@given(data=inputs(NPZ_SEEDS))
def test_fuzz_npz(worker, workdir, data):
    path = workdir / "f.npz"
    path.write_bytes(data)
    check(worker, "features", path, [path])


@SETTINGS
@given(pick=st.integers(0, 2), edits=st.lists(MUTATION, min_size=1, max_size=4),
       rows=st.booleans())
def test_fuzz_hdf5(worker, workdir, pick, edits, rows):
    path = workdir / "f.h5"
    path.write_bytes(mutate(_h5_seeds()[pick], edits))
    check(worker, "rows" if rows else "features", path, [path], allow_keyerror=rows)


def test_the_memory_cap_is_effective(worker, workdir):
    """The child really fails (and reports) an allocation beyond the cap: the cap is not void."""
    path = workdir / "big.npy"
    np.save(path, np.ones((2**20, 10), dtype=np.int8))  # 10 MiB; 80 MiB as float64: over the cap
    reply = worker.ask("features", path, 0)
    assert reply["outcome"] == "bad" and "MemoryError" in reply["message"], reply
    assert worker.ask("features", path, 0, limits=False)["outcome"] == "ok"


def test_a_zip_bomb_is_refused_within_the_limits(worker, workdir):
    path = workdir / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.npy", _npy(np.zeros((2000, 1000))))
    reply = check(worker, "features", path, [path])
    assert reply["outcome"] == "refused" and "zip bomb" in reply["message"]


def test_a_damaged_global_heap_is_refused_not_a_hang(worker, workdir):
    # HDF5 2.0 loops forever reading a variable-length string whose global heap has a
    # free-space entry of size 0: here the 'writer_class' attribute that marks a model
    path = workdir / "heap.h5"
    with h5py.File(path, "w") as f:
        f["u1"] = M
        f.attrs.create("writer_class", "bob", dtype=h5py.string_dtype())
    content = bytearray(path.read_bytes())
    start = content.find(b"GCOL\x01\x00\x00\x00")
    p = start + 16
    while int.from_bytes(content[p:p + 2], "little") != 0:  # to the free-space entry (index 0)
        p += 16 + -(-int.from_bytes(content[p + 8:p + 16], "little") // 8) * 8
    content[p + 8:p + 16] = bytes(8)
    path.write_bytes(bytes(content))
    reply = check(worker, "features", path, [path])
    assert reply["outcome"] == "refused" and "global heap" in reply["message"], reply
