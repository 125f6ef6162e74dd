"""EM passes over a dask bag that ``fit`` keeps on the workers (or reads from spill files): one
task per worker thread and pass, submitted on the partitions' futures (or files) without a task
graph, parameters sent once per pass, the partial sums gathered from the workers; the same
numbers as in memory."""

import glob
import pickle

import numpy as np
import pytest
from _parity import max_rel_diff

import emkit
import emkit.io.arrays as arrays
from emkit import GMMMachine, IVectorMachine
from emkit._backend import _cache, _placed
from emkit._kernels import factor_analysis as kfa
from emkit._kernels import ivector as kiv
from emkit.factor_analysis import ISVMachine
from emkit.factor_analysis._estep import SessionAccumulator
from emkit.ivector._training import WorkerParameters

distributed = pytest.importorskip("distributed")

N_FILES = 14
LABELS = [f"spk{i % 4}" for i in range(N_FILES)]


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    directory = tmp_path_factory.mktemp("feats")
    rng = np.random.default_rng(3)
    for i in range(N_FILES):
        np.save(directory / f"utt{i:03d}.npy", rng.normal(size=(30 + 5 * i, 3)) + (i % 4))
    ubm = GMMMachine(4)
    ubm.means = rng.normal(size=(4, 3))
    ubm.variances = np.full((4, 3), 1.2)
    ubm.weights = np.full(4, 0.25)
    stats = ubm.transform([np.load(p) for p in sorted(glob.glob(str(directory / "*.npy")))])
    return directory, ubm, stats


def _pass_tasks(stream, name="_call_unpacked") -> int:
    return sum(1 for rec in stream if name in str(rec["key"]))


@pytest.mark.parametrize("kind", ["isv", "ivector"])
@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_one_task_per_worker_thread_and_pass_with_the_in_memory_numbers(client, features, kind,
                                                                        mode, tmp_path):
    directory, ubm, stats = features
    if kind == "isv":
        def make():
            return ISVMachine(2, em_iterations=3, ubm=ubm)
        y, names = LABELS, ("U", "D")
    else:
        def make():
            return IVectorMachine(ubm, dim_t=2, max_iterations=3, random_state=0)
        y, names = None, ("T", "sigma")
    ref = make().fit(stats, y)
    bag, _ = arrays.directory_statistics(ubm, directory, npartitions=5)
    with emkit.config_context(dask_cache=mode, spill_directory=tmp_path), \
            distributed.get_task_stream(client) as stream:
        got = make().fit(bag, y)
    # 3 passes, 2 worker threads (not 5 partitions); spilled: each task reads its own files
    task = "_call_unpacked" if mode == "memory" else "_call_on_files"
    assert _pass_tasks(stream.data, task) == 3 * 2
    for name in names:
        assert max_rel_diff(getattr(got, name), getattr(ref, name)) < 1e-10, name


def test_the_kept_bag_is_one_run_of_input_partitions_per_worker_thread(client, features):
    directory, ubm, stats = features
    bag, _ = arrays.directory_statistics(ubm, directory, npartitions=5)
    lengths = [len(part) for part in bag.map_partitions(lambda p: [list(p)]).compute()]
    runs = _placed.runs(len(lengths), 2)
    with _cache.computed_once(bag) as kept:
        assert kept.npartitions == 2 and len(_cache.partition_futures(kept)) == 2
        assert _cache._PIECES[kept.name] == [lengths[run] for run in runs]
        assert _cache.partition_lengths(kept) == [sum(lengths[run]) for run in runs]
        items = kept.compute()
        np.testing.assert_array_equal([s.sum_px for s in items], [s.sum_px for s in stats])
    assert _cache.partition_lengths(kept) is None  # forgotten once fit ends


def test_runs_of_partitions_cover_them_in_order():
    for n_parts, n_runs in [(5, 2), (1, 4), (16, 3), (7, 7)]:
        runs = _placed.runs(n_parts, n_runs)
        assert len(runs) == min(n_parts, n_runs)
        assert [i for run in runs for i in range(run.start, run.stop)] == list(range(n_parts))
        assert max(r.stop - r.start for r in runs) - min(r.stop - r.start for r in runs) <= 1


def test_worker_parameters_travel_without_the_derived_constants():
    rng = np.random.default_rng(0)
    means, T = rng.normal(size=(16, 4)), rng.normal(size=(16, 4, 20))
    sigma = rng.uniform(1, 2, (16, 4))
    params = WorkerParameters(means, T, sigma)
    pre = params.precomputed()
    assert params.precomputed() is pre  # once per worker and pass
    copy = pickle.loads(pickle.dumps(params))
    assert copy._pre is None  # T (C, D, R) travels, not the (C, R(R+1)/2) and (C*D, R) constants
    assert len(pickle.dumps(params)) < T.nbytes + means.nbytes + sigma.nbytes + 1000
    expected = kiv.Precomputed.from_parameters(means, T, sigma)
    for name in ("t_sigma_inv", "tt_lower", "inv_sigma", "log_norm"):
        np.testing.assert_array_equal(getattr(copy.precomputed(), name), getattr(expected, name))


def test_packed_and_full_second_moments_add_up():
    rng = np.random.default_rng(1)
    C, r = 3, 4
    full = rng.normal(size=(C, r, r))
    full = full + full.transpose(0, 2, 1)
    packed = np.stack([m[np.triu_indices(r)] for m in full])
    np.testing.assert_allclose(kfa.unpack_symmetric(packed, r), full)
    a = SessionAccumulator(packed, np.ones((2, r)), np.ones((1, C, r)))
    b = SessionAccumulator(full, np.ones((2, r)), np.ones((1, C, r)))
    for total in (a + b, b + a):
        np.testing.assert_allclose(total.A1, 2 * full)
        np.testing.assert_array_equal(total.A2F, 2.0)


def test_each_run_is_joined_on_the_worker_holding_most_of_it_one_run_per_thread():
    runs = [slice(0, 3), slice(3, 6)]
    holders = [["b"], ["b"], ["a"], ["a"], ["a"], ["b"]]
    assert _placed.assign(runs, holders, ["a", "b"]) == ["b", "a"]
    # both runs mostly on "a", which has one thread: the run most in one place gets it
    holders = [["a"], ["a"], ["b"], ["a"], ["a"], ["a"]]
    assert _placed.assign(runs, holders, ["a", "b"]) == ["b", "a"]
    assert _placed.assign(runs, holders, ["a", "a"]) == ["a", "a"]  # one worker, two threads
    assert _placed.assign(runs, [[]] * 6, ["a", "b"]) in (["a", "b"], ["b", "a"])  # unknown: any


def test_each_thread_computes_its_own_run_in_order_then_takes_the_end_of_the_longest_other():
    from collections import deque

    queues = [deque(range(0, 4)), deque(range(4, 8)), deque(range(8, 10))]
    handed = [_placed.next_partition(queues, 0) for _ in range(4)]
    assert handed == [0, 1, 2, 3]  # its own run first, in order (no data to move at the join)
    assert _placed.next_partition(queues, 2) == 8
    # run 0 done: it takes the last partition of the longest run left (run 1), then the next
    assert _placed.next_partition(queues, 0) == 7
    assert _placed.next_partition(queues, 0) == 6
    assert [_placed.next_partition(queues, 1) for _ in range(3)] == [4, 5, 9]
    assert _placed.next_partition(queues, 1) is None and _placed.next_partition(queues, 0) is None
