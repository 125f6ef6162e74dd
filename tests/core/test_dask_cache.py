"""Dask training inputs computed once per fit (emkit._backend._cache): the per-file statistics
of a directory are computed once however many passes EM makes, kept on the workers or spilled to
per-worker files (removed after fit), with the numbers of the in-memory fit."""

import collections
import contextlib
import glob
import os
import stat
import threading
import time

import dask
import h5py
import numpy as np
import pytest
from _parity import max_rel_diff

import emkit
import emkit.io.arrays as arrays
from emkit import GMMMachine, IVectorMachine
from emkit._backend import _cache, _spill_dirs, _spill_files
from emkit.factor_analysis import ISVMachine, JFAMachine

distributed = pytest.importorskip("distributed")

TOL = 1e-10
N_FILES = 12


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    directory = tmp_path_factory.mktemp("feats")
    rng = np.random.default_rng(0)
    for i in range(N_FILES):
        x = rng.normal(size=(40 + 7 * i, 3)) + (i % 3)
        np.save(directory / f"utt{i:03d}.npy", x)
    ubm = GMMMachine(4)
    ubm.means = rng.normal(size=(4, 3))
    ubm.variances = np.full((4, 3), 1.5)
    ubm.weights = np.full(4, 0.25)
    files = sorted(glob.glob(str(directory / "*.npy")))
    stats = ubm.transform([np.load(p) for p in files])
    return directory, ubm, stats


@pytest.fixture
def loads(monkeypatch):
    """Paths read by the per-file statistics (the feature reads of directory_statistics)."""
    seen, lock = [], threading.Lock()
    original = arrays._load

    def counted(path):
        with lock:
            seen.append(path)
        return original(path)

    monkeypatch.setattr(arrays, "_load", counted)
    return seen


# (module-level, so that the in-process workers run these very functions, not pickled copies)
_SPILLED, _DERIVED, _READ, _ITEMS = [], [], [], {}
_SPILL, _DERIVE = _spill_files.write_partition, _spill_files.write_derived
_READ_FILE = _spill_files._read_spill_file


def _recording_spill(part, *args):
    written = _SPILL(part, *args)
    _SPILLED.append(written[0])
    _ITEMS[written[0]] = written[1]
    return written


def _recording_derive(*args):
    written = _DERIVE(*args)
    _DERIVED.append(written[0])
    return written


def _recording_read(path, *rows, **piece):
    found = os.path.exists(path)
    items = _READ_FILE(path, *rows, **piece)
    if items:
        _READ.append((path, found, len(items)))
    return items


@pytest.fixture
def spills(monkeypatch):
    """Paths of the statistics' spill files written (the derived data's in _DERIVED, the number
    of items of each in _ITEMS; each read of a file that returned items in _READ: its path,
    whether it found its file, how many items it read)."""
    _SPILLED.clear()
    _DERIVED.clear()
    _READ.clear()
    _ITEMS.clear()
    monkeypatch.setattr(_spill_files, "write_partition", _recording_spill)
    monkeypatch.setattr(_spill_files, "write_derived", _recording_derive)
    monkeypatch.setattr(_spill_files, "_read_spill_file", _recording_read)
    return _SPILLED


@contextlib.contextmanager
def _traced():
    """tracemalloc started for the body, with the event loop of this module's in-process cluster
    (its scheduler, two workers and client, when a test has started it) held still meanwhile.
    tracemalloc counts the allocations of every thread of the process, and that loop's periodic
    callbacks (heartbeats, memory and system monitors) allocated 130-175 KB in 2 s of an idle
    cluster, 520 bytes with the loop held: a fit slowed down by a loaded machine spanned more of
    them, and a peak bound was exceeded by 3%.  The fits traced here run on the synchronous
    scheduler and need no cluster."""
    import tracemalloc

    try:
        loop = distributed.default_client().loop
    except ValueError:  # no cluster started in this process
        loop = None
    held, release = threading.Event(), threading.Event()
    if loop is not None:
        loop.add_callback(lambda: held.set() or release.wait(120))
        assert held.wait(60), "the in-process cluster's event loop could not be held"
    tracemalloc.start()
    try:
        yield lambda: tracemalloc.get_traced_memory()[1]  # (the peak so far, bytes)
    finally:
        tracemalloc.stop()
        release.set()


def test_a_traced_peak_counts_nothing_of_the_idle_in_process_cluster(client):
    """The peak bounds below hold whatever the load: in a second of an idle in-process cluster,
    tracemalloc counted 130-175 KB of its event loop's allocations (2 s, measured on the 2-core
    machine); :func:`_traced` holds that loop still, and lets it go on afterwards."""
    assert client.submit(sum, [1, 2]).result() == 3  # (the cluster up and running)
    with _traced() as traced_peak:
        time.sleep(1.0)
        peak = traced_peak()
    assert peak < 16 << 10, peak
    assert client.submit(sum, [3, 4]).result() == 7


LABELS = [f"spk{i % 3}" for i in range(N_FILES)]


def _fit(kind, ubm, X):
    if kind == "isv":
        return ISVMachine(2, em_iterations=3, ubm=ubm).fit(X, LABELS), ("U", "D")
    if kind == "jfa":
        return JFAMachine(2, 1, em_iterations=2, ubm=ubm).fit(X, LABELS), ("U", "V", "D")
    return IVectorMachine(ubm, dim_t=2, max_iterations=3, random_state=0).fit(X), ("T", "sigma")


def _check_same(got, ref, names):
    for name in names:
        assert max_rel_diff(getattr(got, name), getattr(ref, name)) < TOL, name


@pytest.mark.parametrize("kind", ["isv", "jfa", "ivector"])
@pytest.mark.parametrize("mode", ["auto", "memory", "disk"])
def test_statistics_of_a_directory_are_computed_once_per_fit(client, features, loads, spills,
                                                             kind, mode, tmp_path):
    directory, ubm, stats = features
    ref, names = _fit(kind, ubm, stats)
    with emkit.config_context(dask_cache=mode, spill_directory=tmp_path):
        bag, paths = arrays.directory_statistics(ubm, directory, npartitions=5)
        got, _ = _fit(kind, ubm, bag)
    assert sorted(loads) == sorted(paths)  # every file read once, whatever the number of passes
    _check_same(got, ref, names)
    assert (len(spills) == bag.npartitions) == (mode == "disk")  # (auto: these fit in memory)
    if mode == "disk":  # the statistics read back once, to derive what every pass then reads
        # (twice by i-vector training: it centres each batch block by block, its largest
        # entries read first, so that it never holds the batch's statistics whole)
        reads_per_item = 2 if kind == "ivector" else 1
        for path in spills:
            assert sum(n for read, _, n in _READ if read == path) == reads_per_item * _ITEMS[path]
        reads = [path for path, _, _ in _READ]
        assert _DERIVED and all(reads.count(path) >= 2 for path in _DERIVED)
    assert all(p.startswith(str(tmp_path)) for p in spills + _DERIVED)
    assert os.listdir(tmp_path) == []  # the spill directory is removed after fit


def test_auto_spills_what_does_not_fit_and_removes_it_after_fit(client, features, loads, spills,
                                                               tmp_path):
    directory, ubm, stats = features
    ref, names = _fit("isv", ubm, stats)
    with emkit.config_context(dask_cache_fraction=1e-12, spill_directory=tmp_path):
        bag, paths = arrays.directory_statistics(ubm, directory, npartitions=4)
        got, _ = _fit("isv", ubm, bag)
    reads = [path for path, _, _ in _READ]
    assert len(spills) == 4 and all(found for _, found, _ in _READ)
    assert all(reads.count(path) >= 3 for path in _DERIVED) and _DERIVED  # at every pass
    assert sorted(loads) == sorted(paths)
    _check_same(got, ref, names)
    assert os.listdir(tmp_path) == []


def test_spill_directory_is_removed_when_fit_fails(client, features, tmp_path):
    directory, ubm, _ = features
    bag, _ = arrays.directory_statistics(ubm, directory, npartitions=3)
    with emkit.config_context(dask_cache="disk", spill_directory=tmp_path):
        with pytest.raises(ValueError, match="inconsistent|sessions"):
            ISVMachine(2, em_iterations=2, ubm=ubm).fit(bag, LABELS[:-1])
    assert os.listdir(tmp_path) == []


def test_spill_files_are_private_and_a_missing_one_says_what_to_configure(tmp_path):
    """The per-worker spill directory is the owner's alone; a task that cannot see a file (a
    worker on another host, no shared spill_directory) says what to set."""
    path, n_items, _ = _spill_files.write_partition([np.arange(3.0)], str(tmp_path),
                                                    "emkit-spill-test", 0)
    assert n_items == 1 and stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert np.array_equal(_spill_files.read_partitions(path)[0], np.arange(3.0))
    os.remove(path)
    with pytest.raises(FileNotFoundError, match=r"spill_directory=.*shares"):
        _spill_files.read_partitions(path)


def test_derived_partitions_round_trip_with_their_arrays_read_in_place(tmp_path):
    """Items other than GMMStats are pickled with their contiguous arrays out of band: each
    array is a dataset of its own bytes, read back as the array (writable, no unpickling copy);
    other layouts and plain objects come back equal."""
    rng = np.random.default_rng(0)
    big = rng.normal(size=(300, 40))
    items = [{"F": big, "order": np.asfortranarray(big[:7]), "strided": big[::3, ::2],
              "empty": np.empty((0, 4)), "codes": np.arange(5, dtype=np.int32)},
             ("label", 3, None)]
    path, n_items, _ = _spill_files.write_partition(items, str(tmp_path), "emkit-spill-test", 0)
    with h5py.File(path, "r") as f:
        stored = [f["buffers"][name][...].tobytes() for name in f["buffers"]]
    assert big.tobytes() in stored and n_items == 2
    got = _spill_files.read_partitions(path)
    assert got[1] == items[1]
    for key, value in items[0].items():
        array = got[0][key]
        assert array.dtype == value.dtype and array.shape == value.shape, key
        np.testing.assert_array_equal(array, value)
    assert got[0]["F"].flags.writeable and got[0]["order"].flags.f_contiguous
    got[0]["F"][0, 0] = 1.0  # a plain array of its own


def test_off_recomputes_at_every_pass(client, features, loads):
    directory, ubm, _ = features
    with emkit.config_context(dask_cache="off"):
        bag, _ = arrays.directory_statistics(ubm, directory, npartitions=3)
        _fit("ivector", ubm, bag)
    assert len(loads) > N_FILES


@pytest.mark.parametrize("mode", ["auto", "disk"])
def test_without_a_distributed_client(features, loads, spills, mode, tmp_path):
    """dask's own schedulers: the passes go through a task graph (spilled: one reading its
    files), with the in-memory numbers."""
    directory, ubm, stats = features
    ref, names = _fit("ivector", ubm, stats)
    with dask.config.set(scheduler="sync"), \
            emkit.config_context(dask_cache=mode, spill_directory=tmp_path):
        bag, paths = arrays.directory_statistics(ubm, directory, npartitions=3)
        got, _ = _fit("ivector", ubm, bag)
    assert sorted(loads) == sorted(paths)
    _check_same(got, ref, names)
    assert bool(spills) == (mode == "disk") and os.listdir(tmp_path) == []


@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_a_checkpoint_of_the_uncached_input_is_one_of_the_cached_input(client, features, loads,
                                                                      mode, tmp_path):
    """The cached bag fingerprints as its input: a checkpoint written without the cache is
    recognised (no mismatch) by a fit that caches, and the reverse."""
    directory, ubm, stats = features
    path = tmp_path / "isv.ckpt.h5"
    bag, _ = arrays.directory_statistics(ubm, directory, npartitions=5)
    with emkit.config_context(dask_cache="off"):
        first = ISVMachine(2, em_iterations=2, ubm=ubm, checkpoint=path).fit(bag, LABELS)
    with emkit.config_context(dask_cache=mode, spill_directory=tmp_path):
        again = ISVMachine(2, em_iterations=2, ubm=ubm, checkpoint=path).fit(bag, LABELS)
        path.unlink()
        ISVMachine(2, em_iterations=1, ubm=ubm, checkpoint=path).fit(bag, LABELS)
    with emkit.config_context(dask_cache="off"):
        ISVMachine(2, em_iterations=1, ubm=ubm, checkpoint=path).fit(bag, LABELS)
    _check_same(again, first, ("U", "D"))
    _check_same(again, ISVMachine(2, em_iterations=2, ubm=ubm).fit(stats, LABELS), ("U", "D"))
    assert sorted(os.listdir(tmp_path)) == ["isv.ckpt.h5"]


def test_frames_of_an_hdf5_file_are_read_once(client, tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(size=(900, 3)), rng.normal(size=(900, 3)) + 3]).astype(np.float32)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["frames"] = X
    reads = []
    original = arrays.HDF5RowReader.__getitem__
    monkeypatch.setattr(arrays.HDF5RowReader, "__getitem__",
                        lambda self, k: (k[0].stop > k[0].start and reads.append(k)) or original(self, k))

    def gmm():
        return GMMMachine(2, update_variances=True, update_weights=True, max_fitting_steps=4,
                          convergence_threshold=None)

    ref = gmm().fit(X)
    got = gmm().fit(arrays.hdf5_frames(tmp_path / "f.h5", "frames", chunk_rows=400))
    assert len(reads) == 5  # one read per chunk for k-means, its initialisation and EM together
    for name in ("means", "variances", "weights"):
        assert max_rel_diff(getattr(got, name), getattr(ref, name)) < TOL
    reads.clear()
    with emkit.config_context(dask_cache="disk"):  # streamed from the file at every pass
        gmm().fit(arrays.hdf5_frames(tmp_path / "f.h5", "frames", chunk_rows=400))
    assert len(reads) > 5 * 4


def test_spill_files_are_read_in_groups_bounded_by_the_budget(monkeypatch):
    monkeypatch.setattr(_cache, "cluster_resources", lambda client: (4000, 2))
    sizes = [100] * 8
    with emkit.config_context(dask_cache_fraction=1.0):  # 2000 bytes per thread
        assert _cache._spill_groups(sizes, None) == [slice(0, 4), slice(4, 8)]
    with emkit.config_context(dask_cache_fraction=0.1):  # 200 bytes per thread: 2 files a task
        groups = _cache._spill_groups(sizes, None)
    assert groups == [slice(i, i + 2) for i in range(0, 8, 2)]
    with emkit.config_context(dask_cache_fraction=0.01):  # below one file: one file a task
        assert len(_cache._spill_groups(sizes, None)) == 8


def test_a_bag_of_statistics_is_measured_by_its_arrays():
    """dask's sizeof took a GMMStats for 56 bytes (sys.getsizeof): 'auto' kept bags of any size in
    the workers' memory, which then ran out of it."""
    from emkit import GMMStats
    from emkit._backend._cache import _describe

    s = GMMStats(256, 60)
    assert s.nbytes == 256 * 8 * (1 + 2 * 60)
    count, size = _describe([s] * 25)
    assert count == 25 and 25 * s.nbytes <= size < 26 * s.nbytes


def _fit_with_a_bad_item(features, fit):
    """The machine to train and its training set (X, y), whose item 11 (of 12) holds NaN."""
    _, ubm, stats = features
    stats = [s.copy() for s in stats]
    stats[11].n[1] = np.nan
    labels = [i % 3 for i in range(N_FILES)]
    if fit == "ivector":
        machine, X, y = IVectorMachine(ubm, dim_t=2, max_iterations=1), stats, None
    else:
        machine = ISVMachine(r_U=1, ubm=ubm, em_iterations=1)
        X, y = (list(zip(labels, stats)), None) if fit == "isv pairs" else (stats, labels)
    return machine, X, y


@pytest.mark.parametrize("mode", ["memory", "disk"])
@pytest.mark.parametrize("fit", ["ivector", "isv pairs", "isv labels"])
def test_a_bad_item_is_named_by_its_index_in_the_whole_bag(features, tmp_path, mode, fit):
    # the stacking of each cached partition counted its items from 0: the last item was "X[0]"
    # to "X[5]" (the partitions are regrouped by worker thread), whatever the bag's length
    import dask.bag as db

    machine, X, y = _fit_with_a_bad_item(features, fit)
    with dask.config.set(scheduler="synchronous"), \
            emkit.config_context(dask_cache=mode, spill_directory=tmp_path):
        with pytest.raises(ValueError, match=r"^X holds statistics with NaN or infinity: X\[11\]\.n$"):
            machine.fit(db.from_sequence(X, npartitions=N_FILES), y)


def test_a_bad_item_in_a_later_piece_of_a_spilled_partition_is_named_by_its_index(
        features, tmp_path):
    # a spilled partition is centred piece by piece (batch_size items): each piece is told where
    # it starts in the partition, which is told where it starts in the bag
    import dask.bag as db

    _, ubm, stats = features
    stats = [s.copy() for s in stats]
    stats[10].n[1] = np.nan  # partition 1 (items 6-11), its piece 2 (items 10-11)
    machine = IVectorMachine(ubm, dim_t=2, max_iterations=1, batch_size=2)
    with dask.config.set(scheduler="synchronous"), \
            emkit.config_context(dask_cache="disk", spill_directory=tmp_path):
        message = r"^X holds statistics with NaN or infinity: X\[10\]\.n$"
        with pytest.raises(ValueError, match=message):
            machine.fit(db.from_sequence(stats, npartitions=2))


@pytest.mark.parametrize("fit", ["ivector", "isv labels"])
def test_a_bad_item_kept_on_the_workers_is_named_by_its_index_in_the_whole_bag(client, features, fit):
    import dask.bag as db

    machine, X, y = _fit_with_a_bad_item(features, fit)
    with emkit.config_context(dask_cache="memory"):
        with pytest.raises(ValueError, match=r"^X holds statistics with NaN or infinity: X\[11\]\.n$"):
            machine.fit(db.from_sequence(X, npartitions=N_FILES), y)


def _synthetic_stats(seed, n, C, D):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        occupancy = rng.gamma(2.0, 2.0, size=C)
        first = rng.normal(size=(C, D)) * occupancy[:, None]
        second = (rng.normal(size=(C, D)) ** 2 + 1.0) * occupancy[:, None]
        out.append(emkit.GMMStats.from_arrays(occupancy, first, second, t=int(occupancy.sum())))
    return out


def _spilled_ivector_problem(n_parts, per_part, C, D, batch_size, reference=True):
    """(the parts of a bag of synthetic statistics for bag_from_parts, a factory of the i-vector
    machine to train on them, the machine trained in memory (None unless ``reference``))."""
    parts = [(i, per_part, C, D) for i in range(n_parts)]
    rng = np.random.default_rng(0)
    ubm = GMMMachine(C)
    ubm.means, ubm.variances = rng.normal(size=(C, D)), np.full((C, D), 1.5)
    ubm.weights = np.full(C, 1.0 / C)

    def machine():
        return IVectorMachine(ubm, dim_t=3, max_iterations=2, random_state=0,
                              batch_size=batch_size)

    if not reference:
        return parts, machine, None
    return parts, machine, machine().fit([s for p in parts for s in _synthetic_stats(*p)])


def test_spilled_statistics_are_centred_batch_by_batch(tmp_path):
    """i-vector training on spilled statistics derives (centres) and writes them one E-step
    batch at a time: the process never holds a group of statistics with its centred copy and
    the copies being written (3.5 times the statistics it read, before), and the numbers are
    those of the in-memory fit."""
    from emkit._backend import bag_from_parts

    C, D, per_part, n_parts = 32, 20, 100, 4
    parts, machine, ref = _spilled_ivector_problem(n_parts, per_part, C, D, batch_size=25)
    statistics = per_part * n_parts * (2 * C * D + C) * 8
    with dask.config.set(scheduler="sync"), \
            emkit.config_context(dask_cache="disk", spill_directory=tmp_path):
        machine().fit(bag_from_parts(_synthetic_stats, parts))  # (modules imported by fit)
        with _traced() as traced_peak:
            got = machine().fit(bag_from_parts(_synthetic_stats, parts))
            peak = traced_peak()
    _check_same(got, ref, ("T", "sigma"))
    # (a group is half the statistics: 2 threads; measured: 1.03x the statistics before, 0.40x
    # now, most of it while the partitions are computed and spilled)
    assert peak < 0.6 * statistics, peak / statistics


def _sizes_and_sums(piece, start=0):
    assert all(s.t == start + i for i, s in enumerate(piece))  # (item i of the partition: t = i)
    return [(len(piece), sum(float(s.n.sum()) for s in piece), [s.t for s in piece])]


def test_derived_pieces_span_the_spill_files_in_order(tmp_path):
    """Pieces of piece_items items across the files of a partition (a piece taking the end of one
    file and the start of the next), in order, each derived and written as a group of the one
    derived file; the last one shorter.  A file of other items (pickled) is read whole."""
    stats = _synthetic_stats(0, 12, 3, 2)
    for i, s in enumerate(stats):
        s.t = i
    base, token = str(tmp_path), "emkit-spill-test"
    paths = [_spill_files.write_partition(chunk, base, token, i)[0]
             for i, chunk in enumerate((stats[:7], stats[7:], []))]
    path, n_items, _ = _spill_files.write_derived(base, token, 0, _sizes_and_sums, paths, 5, ())
    got = _spill_files.read_partitions(path)
    assert [(n, t) for n, _, t in got] == [(5, [0, 1, 2, 3, 4]), (5, [5, 6, 7, 8, 9]),
                                           (2, [10, 11])]
    with h5py.File(path, "r") as f:
        assert sorted(f["pieces"]) == ["0", "1", "2"] and n_items == 3
    whole = _spill_files.write_derived(base, token, 1, _sizes_and_sums, paths, None, ())
    (n, total, t), = _spill_files.read_partitions(whole[0])
    assert (n, t) == (12, list(range(12))) and total == pytest.approx(sum(s for _, s, _ in got))
    pickled = _spill_files.write_partition([np.arange(3.0)] * 3, base, token, 2)[0]
    assert [len(p) for p in _spill_files._pieces([pickled, pickled], 2)] == [2, 2, 2]
    empty = _spill_files.write_derived(base, token, 3, _sizes_and_sums, [paths[2]], 5, ())
    assert empty[1] == 0 and _spill_files.read_partitions(empty[0]) == []


class _FakeClient:
    def __init__(self, workers):
        self.workers = workers

    def scheduler_info(self, n_workers=None):
        return {"workers": {f"tcp://{w['host']}:{i}": w for i, w in enumerate(self.workers)}}


def test_workers_without_a_memory_limit_share_their_hosts_memory(monkeypatch):
    """Each worker without a limit counted this machine's whole memory: 4 of them on one host
    made 'auto' keep up to 4 times what the host holds (a fraction of 1: all of it)."""
    from emkit._backend import _cluster

    monkeypatch.setattr(_cluster, "machine_memory", lambda: 12 << 30)
    unlimited = [{"host": "a", "memory_limit": limit, "nthreads": 2} for limit in (0, None, 0, 0)]
    assert _cluster.cluster_resources(_FakeClient(unlimited)) == (12 << 30, 8)
    mixed = [{"host": "a", "memory_limit": 0, "nthreads": 1},
             {"host": "a", "memory_limit": 1 << 30, "nthreads": 1},
             {"host": "b", "memory_limit": None, "nthreads": 3}]
    assert _cluster.cluster_resources(_FakeClient(mixed)) == ((6 << 30) + (1 << 30) + (12 << 30), 5)
    with emkit.config_context(dask_cache_fraction=0.5):
        assert _cluster.cache_budget(_FakeClient(unlimited)) == 6 << 30


def _dead_pid() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_spill_directories_of_killed_clients_of_this_host_are_removed(tmp_path):
    """A spill directory names its client (host, pid): one left by a client of this host whose
    process is gone is removed; a live process's, another host's, an older unnamed one, a
    symbolic link (and what it points to) and other folders stay."""
    from emkit.io.atomic import _HOST

    dead, live, hex32 = _dead_pid(), os.getpid(), "0123456789abcdef" * 2
    stale = tmp_path / f"emkit-spill-{hex32}.{_HOST}.{dead}"
    (stale / f"{_HOST}-1").mkdir(parents=True)
    (stale / f"{_HOST}-1" / "part-000000-00000000.h5").write_bytes(b"x")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.txt").write_text("data")
    (stale / f"{_HOST}-1" / "link").symlink_to(outside)
    kept = [tmp_path / f"emkit-spill-{hex32}.{_HOST}.{live}",
            tmp_path / f"emkit-spill-{hex32}.another-host.{dead}",
            tmp_path / f"emkit-spill-{hex32}", tmp_path / "emkit-spill-notes"]
    for path in kept:
        path.mkdir()
    linked = tmp_path / f"emkit-spill-{'f' * 32}.{_HOST}.{dead}"
    linked.symlink_to(outside, target_is_directory=True)
    assert _spill_dirs.remove_stale_spills(str(tmp_path)) == [str(stale)]
    assert sorted(os.listdir(tmp_path)) == sorted([p.name for p in kept] + ["elsewhere",
                                                                          linked.name])
    assert (outside / "keep.txt").read_text() == "data"
    token = _spill_dirs.new_token()
    assert token.endswith(f".{_HOST}.{live}") and _spill_dirs._TOKEN.match(token)


def test_a_disk_fit_removes_the_spill_directory_of_a_killed_client(client, features, spills,
                                                                   tmp_path):
    from emkit.io.atomic import _HOST

    directory, ubm, _ = features
    stale = tmp_path / f"emkit-spill-{'a' * 32}.{_HOST}.{_dead_pid()}"
    (stale / "worker").mkdir(parents=True)
    with emkit.config_context(dask_cache="disk", spill_directory=tmp_path):
        bag, _ = arrays.directory_statistics(ubm, directory, npartitions=2)
        _fit("ivector", ubm, bag)
    assert spills and all(f".{_HOST}.{os.getpid()}{os.sep}" in path for path in spills)
    assert os.listdir(tmp_path) == []


def test_statistics_are_spilled_row_by_row(tmp_path):
    """write_partition writes each field of the GMMStats into a dataset created at its size, an
    item at a time: it held a stacked copy of each field (np.stack: half the partition more)."""
    stats = _synthetic_stats(0, 200, 64, 40)  # (8 MB: the other tests' threads allocate too)
    size = sum(s.nbytes for s in stats)
    with _traced() as traced_peak:
        path, n_items, _ = _spill_files.write_partition(stats, str(tmp_path), "emkit-spill-t", 0)
        peak = traced_peak()
    assert peak < 0.1 * size, peak / size  # (measured: 0.50 with np.stack, 0.01 now)
    got = _spill_files.read_partitions(path)
    assert n_items == 200 and [s.t for s in got] == [s.t for s in stats]
    for name in ("n", "sum_px", "sum_pxx", "log_likelihood"):
        assert all(np.array_equal(getattr(a, name), getattr(b, name)) for a, b in zip(got, stats))


def _ivector_fit_peak(tmp_path, n_parts, per_part=50, C=32, D=20):
    """(peak traced bytes of a disk fit on the synchronous scheduler, statistics' bytes, the
    machine, the in-memory machine).  The smaller peak of two fits: threads that earlier
    tests left (dask's, PyTorch's) allocate now and then, and tracemalloc counts them too."""
    from emkit._backend import bag_from_parts

    parts, machine, ref = _spilled_ivector_problem(n_parts, per_part, C, D, batch_size=100)
    peaks = []
    with dask.config.set(scheduler="sync"), \
            emkit.config_context(dask_cache="disk", spill_directory=tmp_path):
        machine().fit(bag_from_parts(_synthetic_stats, parts[:2]))  # (modules imported by fit)
        for _ in range(2):
            with _traced() as traced_peak:
                got = machine().fit(bag_from_parts(_synthetic_stats, parts))
                peaks.append(traced_peak())
    return min(peaks), n_parts * per_part * (2 * C * D + C) * 8, got, ref


def _disk_ivector_fit(tmp_path, n_parts, per_part=50, C=32, D=20):
    """The machine of one disk fit of :func:`_ivector_fit_peak`'s problem, untraced (it took
    four fits, two of them traced, to compare machines only)."""
    from emkit._backend import bag_from_parts

    parts, machine, _ = _spilled_ivector_problem(n_parts, per_part, C, D, batch_size=100,
                                                 reference=False)
    with dask.config.set(scheduler="sync"), \
            emkit.config_context(dask_cache="disk", spill_directory=tmp_path):
        return machine().fit(bag_from_parts(_synthetic_stats, parts))


def test_a_disk_ivector_fit_holds_one_batch_whatever_its_share(tmp_path, monkeypatch):
    """i-vector training on spilled statistics holds one E-step batch (centred: n and F - n m),
    a block of statistics being read and one input partition, whatever the number of
    statistics: it centred each batch from its statistics read whole (with their stacked copy
    and the compensated sums' temporaries: 3.5x the batch) and every pass read a worker's
    whole group of centred batches."""
    monkeypatch.setattr(_spill_files, "_BLOCK_BYTES", 2**16, raising=False)  # (8 MB: > a batch)
    small, _, got, ref = _ivector_fit_peak(tmp_path, 4)
    _check_same(got, ref, ("T", "sigma"))
    large, statistics, got, ref = _ivector_fit_peak(tmp_path, 16)
    _check_same(got, ref, ("T", "sigma"))
    batch = 100 * 32 * (1 + 20) * 8  # one centred batch (0.54 MB)
    # (measured: 1.08 MB with 4 partitions, 1.30 MB with 16 (dask's bookkeeping); before: 3.85
    # and 3.93 MB)
    assert large - small < 0.5 * batch and large < 3 * batch, (small, large, batch)
    assert large < 0.2 * statistics


@pytest.mark.parametrize("block_rows", [1, 7, 100])
def test_a_batch_centred_in_blocks_is_the_batch_centred_whole(block_rows):
    """Bit for bit: the compensated sums over a batch read in blocks (its maxima first) are the
    whole batch's, far from the origin too."""
    from emkit._kernels import ivector as kiv
    from emkit._kernels.compensated import centre_in_blocks

    rng = np.random.default_rng(3)
    B, C, D = 60, 4, 3
    means = rng.normal(size=(C, D)) * 1e4
    n = rng.gamma(2.0, 2.0, size=(B, C))
    F = rng.normal(size=(B, C, D)) * n[:, :, None] + n[:, :, None] * means
    S = F**2 / n[:, :, None] + n[:, :, None]
    whole = kiv.centre_batch(n, F, S, means)

    def blocks():
        return ((n[i : i + block_rows], F[i : i + block_rows], S[i : i + block_rows])
                for i in range(0, B, block_rows))

    got = centre_in_blocks(blocks, means)
    for a, b in zip(got, (whole.n, whole.fnorm, whole.snorm)):
        assert a.shape == b.shape and a.tobytes() == b.tobytes()


def test_a_disk_ivector_fit_is_the_fit_on_batches_centred_whole(tmp_path, monkeypatch):
    """The spilled batches centred block by block train the very T and sigma (bit for bit) that
    they trained centred whole (the disk fit before)."""
    from emkit._kernels import ivector as kiv
    from emkit.ivector import _batching

    monkeypatch.setattr(_spill_files, "_BLOCK_BYTES", 2**14)
    got = _disk_ivector_fit(tmp_path, 4)

    def whole(piece, means, first):
        b = emkit.GMMStats.stack(list(piece), shape=means.shape, second_order=True, offset=first)
        return kiv.centre_batch(b.n, b.sum_px, b.sum_pxx, means)

    monkeypatch.setattr(_batching, "_centred_in_blocks", whole)
    before = _disk_ivector_fit(tmp_path, 4)
    for name in ("T", "sigma"):
        assert getattr(got, name).tobytes() == getattr(before, name).tobytes(), name


def _odd_and_even(source, scale):
    items = list(source)
    yield [s.n.sum() * scale for s in items[::2]]
    yield [s.n.sum() * scale for s in items[1::2]]


def test_rows_of_spill_files_are_read_by_index_and_streamed_pieces_written_as_they_come(
        tmp_path, monkeypatch):
    """SpilledRows.arrays reads the rows it is given (any order, across files, an empty file
    among them) a few at a time; write_derived(piece_items="streamed") writes each piece that
    the function yields, from the partition as SpilledRows (of other items: a list)."""
    monkeypatch.setattr(_spill_files, "_BLOCK_BYTES", 2 * (2 * 3 * 2 + 3) * 8)  # (2 rows)
    stats = _synthetic_stats(0, 17, 3, 2)
    base, token = str(tmp_path), "emkit-spill-test"
    paths = [_spill_files.write_partition(chunk, base, token, i)[0]
             for i, chunk in enumerate((stats[:6], [], stats[6:13], stats[13:]))]
    source = _spill_files._partition_source(paths)
    assert isinstance(source, _spill_files.SpilledRows) and len(source) == 17
    rows = [16, 5, 6, 12, 13, 0, 7, 8, 9, 10]
    n, px = source.arrays(rows)
    assert np.array_equal(px, np.stack([stats[i].sum_px for i in rows]))
    assert np.array_equal(n, np.stack([stats[i].n for i in rows]))
    (pxx,) = _spill_files.SpilledRows(paths, [6, 0, 7, 4], 5, 9).arrays([3, 0], ("sum_pxx",))
    assert np.array_equal(pxx, np.stack([stats[8].sum_pxx, stats[5].sum_pxx]))
    for bad in ([], [17], [3, 3]):
        with pytest.raises(IndexError, match="^index: expected distinct items of the piece"):
            source.arrays(bad)
    path, n_items, _ = _spill_files.write_derived(base, token, 5, _odd_and_even, paths,
                                                  "streamed", (2.0,))
    assert n_items == 17 and _spill_files.read_partitions(path) == (
        [2 * s.n.sum() for s in stats[::2]] + [2 * s.n.sum() for s in stats[1::2]])
    pickled = _spill_files.write_partition([np.arange(3.0)] * 3, base, token, 6)[0]
    assert isinstance(_spill_files._partition_source([paths[0], pickled]), list)

def _spilled_fa_problem(kind, n_parts, per_part, C, D):
    """(the parts of a bag of synthetic statistics, their labels (classes interleaved: every
    partition sorted by class before it is cut into blocks), a factory of the ISV or JFA
    machine, the machine trained in memory)."""
    parts = [(i, per_part, C, D) for i in range(n_parts)]
    labels = [f"spk{(3 * i) % 7}" for i in range(n_parts * per_part)]
    rng = np.random.default_rng(0)
    ubm = GMMMachine(C)
    ubm.means, ubm.variances = rng.normal(size=(C, D)), np.full((C, D), 1.5)
    ubm.weights = np.full(C, 1.0 / C)

    def machine():
        if kind == "isv":
            return ISVMachine(2, em_iterations=2, ubm=ubm)
        return JFAMachine(2, 2, em_iterations=1, ubm=ubm)

    ref = machine().fit([s for p in parts for s in _synthetic_stats(*p)], labels)
    return parts, labels, machine, ref


def _synthetic_pairs(seed, n, C, D, labels):
    return list(zip(labels, _synthetic_stats(seed, n, C, D)))


def _fa_bag(parts, labels, pairs: bool):
    """(X, y) of ``fit``: a bag of the parts' statistics and their labels, or a bag of (label,
    GMMStats) pairs and None."""
    from emkit._backend import bag_from_parts

    if not pairs:
        return bag_from_parts(_synthetic_stats, parts), labels
    firsts = np.cumsum([0] + [p[1] for p in parts])
    return bag_from_parts(_synthetic_pairs, [(*p, labels[a : a + p[1]])
                                             for p, a in zip(parts, firsts)]), None


def _fa_fit_peak(tmp_path, kind, n_parts, per_part=25, C=64, D=20, pairs=False):
    """(the smaller peak traced by two disk fits on the synchronous scheduler, the statistics'
    bytes, the machine, the in-memory machine): see :func:`_ivector_fit_peak`.  ``pairs``: the
    bag holds (label, GMMStats) pairs (``fit(X, None)``)."""
    parts, labels, machine, ref = _spilled_fa_problem(kind, n_parts, per_part, C, D)
    peaks = []
    with dask.config.set(scheduler="sync"), \
            emkit.config_context(dask_cache="disk", spill_directory=tmp_path):
        machine().fit(*_fa_bag(parts[:2], labels[: 2 * per_part], pairs))  # (modules imported)
        for _ in range(2):
            with _traced() as traced_peak:
                got = machine().fit(*_fa_bag(parts, labels, pairs))
                peaks.append(traced_peak())
    return min(peaks), n_parts * per_part * (2 * C * D + C) * 8, got, ref


FA_NAMES = {"isv": ("U", "D"), "jfa": ("U", "V", "D")}


@pytest.mark.parametrize("pairs", [False, True], ids=["labels", "pairs"])
@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_a_disk_isv_or_jfa_fit_holds_one_block_whatever_its_share(tmp_path, monkeypatch, kind,
                                                                  pairs):
    """ISV/JFA training on spilled statistics holds one block of sessions (n and F), a block of
    statistics being read and one input partition, whatever the number of statistics: each
    worker read its group of statistics whole, stacked it (its F) and every pass read the whole
    stacked group (about twice the statistics); a pass held its first block to the end, and
    JFA's class totals the block before the one being read.  A bag of (label, GMMStats) pairs
    too: its pairs were spilled pickled, and each worker read its group whole to stack it."""
    from emkit.factor_analysis import _training

    C, D = 64, 20
    monkeypatch.setattr(_training, "BLOCK_ELEMENTS", 50 * C * D)  # blocks of 50 sessions
    monkeypatch.setattr(_spill_files, "_BLOCK_BYTES", 2**16)
    monkeypatch.setattr(_cache, "cluster_resources", lambda client: (8 << 30, 2))  # 2 groups
    small, _, got, ref = _fa_fit_peak(tmp_path, kind, 4, pairs=pairs)  # (a group: 2 blocks)
    _check_same(got, ref, FA_NAMES[kind])
    large, statistics, got, ref = _fa_fit_peak(tmp_path, kind, 8, pairs=pairs)  # (4 blocks)
    _check_same(got, ref, FA_NAMES[kind])
    block = 50 * (C + C * D) * 8  # one block's n and F (0.54 MB)
    # (measured: 0.78-0.84 MB with 4 partitions, 1.09-1.13 MB with 8, an input partition 0.53
    # MB; before: 2.2-2.3 and 4.4 MB)
    assert large - small < block and large < 2.5 * block, (small, large, block, statistics)


@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_a_disk_isv_or_jfa_fit_is_the_fit_on_partitions_stacked_whole(tmp_path, monkeypatch,
                                                                      kind):
    """The spilled blocks read one at a time train the U, V and D of the partitions stacked
    whole (the disk fit before: the same blocks and sums, but for ``sum_h F_h x_h^T`` added
    block by block) and of the in-memory fit."""
    from emkit._backend import bag_from_parts
    from emkit.factor_analysis import _dask, _training

    C, D = 8, 3
    monkeypatch.setattr(_training, "BLOCK_ELEMENTS", 7 * C * D)  # blocks of 7 sessions
    parts, labels, machine, ref = _spilled_fa_problem(kind, 5, 23, C, D)

    def fit():
        with dask.config.set(scheduler="sync"), \
                emkit.config_context(dask_cache="disk", spill_directory=tmp_path):
            return machine().fit(bag_from_parts(_synthetic_stats, parts), labels)

    got = fit()

    def whole(source, codes, first, shape, n_classes, step):
        pairs = _dask.pair_up(codes, list(source))
        yield _dask.stack_partition(pairs, shape, n_classes, step, first)

    monkeypatch.setattr(_dask, "spilled_blocks", whole)
    before = fit()
    _check_same(got, before, FA_NAMES[kind])
    _check_same(got, ref, FA_NAMES[kind])


def test_spilled_blocks_are_the_blocks_of_the_partition_stacked_whole(tmp_path):
    """The blocks read from spill files (rows gathered across files, sorted by class) are, bit
    for bit, those of the partition stacked whole; an item with NaN is named by its index in the
    bag, as the stacking names it."""
    from emkit.factor_analysis import _dask

    stats = _synthetic_stats(0, 17, 3, 2)
    base, token = str(tmp_path), "emkit-spill-test"
    paths = [_spill_files.write_partition(chunk, base, token, i)[0]
             for i, chunk in enumerate((stats[:6], [], stats[6:13], stats[13:]))]
    source = _spill_files._partition_source(paths)
    codes = np.array([(5 * i) % 4 for i in range(17)])
    got = [piece for piece in _dask.spilled_blocks(source, codes, 40, (3, 2), 4, 5)]
    (whole,) = _dask.stack_partition(_dask.pair_up(codes, stats), (3, 2), 4, 5, 40)
    assert [len(piece) for piece in got] == [1] * len(whole.rows) == [1] * 4
    for (a,), b in zip(got, whole.rows):
        for name in ("codes", "n", "F", "present", "local"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert a.F.tobytes() == b.F.tobytes() and a.n.tobytes() == b.n.tobytes()
    bad = [s.copy() for s in stats]
    bad[9].n[1] = np.nan
    paths = [_spill_files.write_partition(bad, base, token, 9)[0]]
    with pytest.raises(ValueError, match=r"^X holds statistics with NaN or infinity: X\[49\]\.n$"):
        list(_dask.spilled_blocks(_spill_files._partition_source(paths), codes, 40, (3, 2), 4, 5))


_Pair = collections.namedtuple("_Pair", "label stats")  # (module-level: pickled)


@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_a_disk_isv_or_jfa_fit_on_pairs_is_the_fit_on_statistics_and_labels(tmp_path, kind):
    """Spilled (label, GMMStats) pairs train, bit for bit, the U, V and D of their statistics
    and labels spilled (the same blocks, read as rows), and those of the pairs kept in memory."""
    from emkit.factor_analysis import _training

    C, D = 8, 3
    parts, labels, machine, ref = _spilled_fa_problem(kind, 5, 23, C, D)

    def fit(mode, pairs):
        with dask.config.set(scheduler="sync"), \
                emkit.config_context(dask_cache=mode, spill_directory=tmp_path):
            return machine().fit(*_fa_bag(parts, labels, pairs))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_training, "BLOCK_ELEMENTS", 7 * C * D)  # blocks of 7 sessions
        got, statistics = fit("disk", True), fit("disk", False)
    for name in FA_NAMES[kind]:
        assert getattr(got, name).tobytes() == getattr(statistics, name).tobytes(), name
    _check_same(got, fit("memory", True), FA_NAMES[kind])
    _check_same(got, ref, FA_NAMES[kind])


def test_pairs_of_labels_and_statistics_are_spilled_as_rows_beside_their_labels(tmp_path,
                                                                                monkeypatch):
    """A partition of (label, GMMStats) pairs is spilled as the statistics' rows and a label per
    row (any picklable label, its type kept), read back as the pairs a block at a time, or its
    labels alone; pairs that rows would change (another tuple type, a log-likelihood that is
    not a float, statistics of different shapes) are pickled whole, as before."""
    monkeypatch.setattr(_spill_files, "_BLOCK_BYTES", 2 * (2 * 3 * 2 + 3) * 8)  # (2 rows)
    stats = _synthetic_stats(0, 7, 3, 2)
    labels = ["a", 3, ("t", 1), np.int64(4), "a", None, b"x"]
    base, token = str(tmp_path), "emkit-spill-test"
    path, n_items, _ = _spill_files.write_partition(list(zip(labels, stats)), base, token, 0)
    with h5py.File(path, "r") as f:
        assert "pickled" not in f and f["sum_px"].shape == (7, 3, 2) and n_items == 7
    got = _spill_files.read_partitions(path)
    assert [label for label, _ in got] == labels and type(got[3][0]) is np.int64
    for (_, a), b in zip(got, stats):
        assert all(np.array_equal(getattr(a, name), getattr(b, name))
                   for name in ("n", "sum_px", "sum_pxx", "t", "log_likelihood"))
    assert [label for label, _ in _spill_files.SpilledItems(path)] == labels
    source = _spill_files._partition_source([path])
    assert isinstance(source, _spill_files.SpilledRows) and source.labelled
    assert source.labels() == labels and [len(block) for block in source.blocks()] == [2, 2, 2, 1]
    piece = _spill_files.SpilledRows(source.paths, source.lengths, 2, 5, True)
    assert piece.labels() == labels[2:5] and [s.t for s, in zip(piece.statistics())] == [
        s.t for s in stats[2:5]]
    unlabelled = _spill_files.write_partition(stats, base, token, 1)[0]
    assert isinstance(_spill_files._partition_source([path, unlabelled]), list)
    odd = stats[1].copy()
    odd.log_likelihood = 0
    other_shape = _synthetic_stats(1, 1, 4, 2)[0]
    for pairs in ([_Pair("a", stats[0])], [("a", odd)], [("a", stats[0]), ("b", other_shape)]):
        pickled = _spill_files.write_partition(pairs, base, token, 2)[0]
        with h5py.File(pickled, "r") as f:
            assert "pickled" in f
        assert isinstance(_spill_files._partition_source([pickled]), list)
