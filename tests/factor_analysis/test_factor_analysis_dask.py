"""ISV/JFA trained from dask inputs give the parameters of the in-memory list (within 1e-10)."""

from concurrent.futures import ProcessPoolExecutor

import dask
import dask.array as da
import dask.bag as db
import numpy as np
import pytest
from _parity import max_rel_diff
from factor_analysis_cases import load_case, machine, make_stats

from emkit.factor_analysis import (
    ISVMachine,
    JFAMachine,
    check_dask_input_samples_per_class,
    is_input_dask_nested,
)
from emkit.stats import GMMStats

TOL = 1e-10


def _identity(stats):
    return stats


def _inputs(X, y):
    """(name, X, y) of every accepted dask form of the same sessions."""
    labels = [f"c{k}" for k in y]
    delayed = [dask.delayed(_identity)(s) for s in X]
    groups = [[s for s, k in zip(X, y) if k == c] for c in sorted(set(y))]
    return [
        ("bag + y", db.from_sequence(X, npartitions=3), labels),
        (
            "bag + dask y",
            db.from_sequence(X, npartitions=2),
            db.from_sequence(labels, npartitions=4),
        ),
        ("bag of (label, stats)", db.from_sequence(list(zip(labels, X)), npartitions=4), None),
        ("list of delayed", delayed, labels),
        (
            "delayed per class",
            [dask.delayed(list)(g) for g in groups],
            [np.full(len(g), c) for c, g in zip(sorted(set(y)), groups)],
        ),
    ]


def _params(m):
    return [m.U, m.D] + ([m.V] if isinstance(m, JFAMachine) else [])


@pytest.mark.parametrize("kind", ["isv", "jfa"])
@pytest.mark.parametrize("case", ["small", "medium"])
def test_dask_inputs_give_the_in_memory_parameters(kind, case):
    d = load_case(case)
    X, y = make_stats(d), d["labels"].tolist()
    expected = machine(kind, d).fit(X, y)
    with dask.config.set(scheduler="sync"):
        for name, Xd, yd in _inputs(X, y):
            got = machine(kind, d).fit(Xd, yd)
            for a, b in zip(_params(got), _params(expected)):
                assert max_rel_diff(a, b) <= TOL, name


def test_threaded_scheduler_and_nested_helpers():
    d = load_case("small")
    X, y = make_stats(d), d["labels"].tolist()
    expected = machine("isv", d).fit(X, y)
    with dask.config.set(scheduler="threads"):
        got = machine("isv", d).fit(db.from_sequence(list(zip(y, X)), npartitions=3), None)
    assert max_rel_diff(got.U, expected.U) <= TOL
    nested = [[dask.delayed(_identity)(X[0])], [dask.delayed(_identity)(X[1])]]
    assert is_input_dask_nested(nested) and not is_input_dask_nested(X)
    assert check_dask_input_samples_per_class(X, y) == (False, 4, np.bincount(y).tolist())


def test_processes_scheduler():
    """The default scheduler of dask bags (processes): chunk functions and accumulators pickle."""
    d = load_case("tiny")
    X, y = make_stats(d), d["labels"].tolist()
    expected = machine("jfa", d).fit(X, y)
    with ProcessPoolExecutor(2) as pool, dask.config.set(scheduler="processes", pool=pool):
        got = machine("jfa", d).fit(db.from_sequence(X, npartitions=2), y)
    for a, b in zip(_params(got), _params(expected)):
        assert max_rel_diff(a, b) <= TOL


@pytest.mark.parametrize("cls", [ISVMachine, JFAMachine])
def test_fit_using_array_with_a_dask_array(cls):
    d = load_case("small")
    rng = np.random.default_rng(0)
    sessions = rng.normal(size=(12, 15, 3)) + d["means"][rng.integers(0, 4, size=(12, 15))]
    y = np.repeat(np.arange(4), 3)
    args = (2,) if cls is ISVMachine else (2, 1)
    from factor_analysis_cases import make_ubm

    expected = cls(*args, em_iterations=2, ubm=make_ubm(d)).fit_using_array(sessions, y)
    with dask.config.set(scheduler="sync"):
        got = cls(*args, em_iterations=2, ubm=make_ubm(d)).fit_using_array(
            da.from_array(sessions, chunks=(5, 15, 3)), da.from_array(y, chunks=4)
        )
    for a, b in zip(_params(got), _params(expected)):
        assert max_rel_diff(a, b) <= TOL


def test_bad_dask_inputs():
    d = load_case("small")
    X, y = make_stats(d), d["labels"].tolist()
    with dask.config.set(scheduler="sync"):
        with pytest.raises(
            ValueError, match="inconsistent numbers of sessions: len\\(X\\) = 10, len\\(y\\) = 9"
        ):
            machine("isv", d).fit(db.from_sequence(X, npartitions=2), y[:-1])
        with pytest.raises(ValueError, match="has statistics of shape"):
            machine("isv", d).fit([dask.delayed(_identity)(GMMStats(2, 2))] + X[1:], y)
        with pytest.raises(TypeError, match="pairs"):
            machine("isv", d).fit(db.from_sequence(X, npartitions=2), None)


def test_a_stacked_partition_pickles_its_statistics_once():
    # a partition stacked on a worker is spilled to disk (dask_cache="disk") or moved between
    # workers by pickling: F once (not again in every block's view of it), no pass buffers
    import pickle

    from emkit.factor_analysis._dask import stack_partition

    rng = np.random.default_rng(1)
    C, D, S = 8, 20, 200
    pairs = []
    for i in range(S):
        s = GMMStats(C, D)
        s.init_fields(0.0, 10, rng.random(C), rng.normal(size=(C, D)), rng.random((C, D)))
        pairs.append((int(rng.integers(5)), s))
    (stacked,) = stack_partition(pairs, (C, D), 5, step=16)
    stacked.scratch["threads"] = {0: {"terms": np.ones((1000, 1000))}}
    assert len(stacked.rows) >= 4
    blob = pickle.dumps(stacked, protocol=5)
    assert len(blob) < 1.3 * stacked.F.nbytes  # (F; the class totals' F and the blocks' n)
    copy = pickle.loads(blob)
    assert copy.scratch == {} and np.array_equal(copy.F, stacked.F)
    for mine, theirs in zip(stacked.rows, copy.rows):
        assert np.array_equal(mine.F, theirs.F) and np.shares_memory(theirs.F, copy.F)
        assert np.array_equal(mine.n, theirs.n) and np.array_equal(mine.codes, theirs.codes)


def test_a_partition_sends_back_the_class_sums_of_its_own_classes_only():
    # G is (K, C, r): a worker whose partitions hold a few of K speakers sends those rows (82 MB
    # per worker and pass at K=200, C=512, r=100 otherwise), and the sums are the dense ones
    from emkit.factor_analysis._dask import stack_partition
    from emkit.factor_analysis._estep import ClassRows
    from emkit.factor_analysis._training import _blocks_pass, partition_pass, session_params

    d = load_case("small")
    X, y = make_stats(d), d["labels"].tolist()
    m = machine("isv", d).fit(X, y)
    classes = sorted(set(y))
    codes = np.array([classes.index(label) for label in y])
    K, (C, D) = len(classes), m.ubm.means.shape
    p = session_params(m._constants(), K)
    mine = [k for k in range(K) if k % 3 == 1]
    pairs = [(int(k), s) for k, s in zip(codes, X) if k in mine]
    got = partition_pass(pairs, p)
    assert isinstance(got.G, ClassRows) and got.G.index.tolist() == mine
    (stacked,) = stack_partition(pairs, (C, D), K, p.step)
    np.testing.assert_array_equal(got.G.dense(K), partition_pass([stacked], p).G.dense(K))
    # the worker computes those rows only, not K of them
    compact = _blocks_pass(stacked, p, threads=1, classes=np.array(mine)).G
    assert compact.shape == (len(mine), C, p.U_over_var.shape[1])
    np.testing.assert_array_equal(compact, _blocks_pass(stacked, p, threads=1).G[mine])

    rng = np.random.default_rng(0)
    a, b = (ClassRows(np.array(i), rng.normal(size=(len(i), 2, 3))) for i in ([0, 2], [2, 3]))
    dense_a, dense_b = a.dense(5), b.dense(5)
    for total in (a + b, b + a):
        np.testing.assert_array_equal(total.dense(5), dense_a + dense_b)
    np.testing.assert_array_equal(dense_a + b, dense_a + dense_b)
    np.testing.assert_array_equal(a + dense_b, dense_a + dense_b)
