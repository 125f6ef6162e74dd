"""emkit's thread pool is one per process and only grows: maps asking for different numbers of
threads share it (it was replaced at every switch, starting fresh threads), each map keeping at
most its own number of items running, and results come back in order."""

import threading

import numpy as np
import pytest

from emkit import _cpus
from emkit._backend import map_ordered, map_reduce, thread_map


@pytest.fixture
def eight_cpus(monkeypatch):
    monkeypatch.setattr(_cpus, "usable_cpus", lambda: 8)
    monkeypatch.setattr(_cpus, "_OMP_NUM_THREADS", None)  # (read at import: the variable is not)


def _pool_threads():
    # (names, not idents: a new thread may take the ident of one that ended)
    return {t.name for t in threading.enumerate() if t.name.startswith("ThreadPoolExecutor")}


def test_alternating_map_sizes_reuse_the_same_threads(eight_cpus):
    X = np.arange(30_000 * 2, dtype=np.float64).reshape(-1, 2)  # 3 threads' worth of rows
    map_ordered(abs, range(64))  # a pool of 8
    started = _pool_threads()
    for _ in range(5):
        np.testing.assert_array_equal(map_reduce(lambda rows: rows.sum(axis=0), X), X.sum(axis=0))
        assert map_ordered(abs, range(-64, 0)) == list(range(64, 0, -1))
    assert _pool_threads() <= started  # no thread started since (10 fresh pools on the old code)


@pytest.mark.parametrize("threads", [2, 3])
def test_a_map_keeps_at_most_its_threads_running_on_a_larger_pool(eight_cpus, threads):
    map_ordered(abs, range(64))  # a pool of 8
    lock, running, most = threading.Lock(), [0], [0]
    release = threading.Event()

    def item(i):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(0.01)  # (lets the others start if the map allowed them to)
        with lock:
            running[0] -= 1
        return i * i

    assert list(thread_map(item, range(40), threads)) == [i * i for i in range(40)]
    assert 1 <= most[0] <= threads


def test_an_error_stops_the_map_and_cancels_what_has_not_started(eight_cpus):
    calls = []

    def item(i):
        calls.append(i)
        if i == 1:
            raise ValueError("item 1")
        return i

    with pytest.raises(ValueError, match="item 1"):
        list(thread_map(item, range(1000), 2))
    assert len(calls) < 1000


def test_a_map_inside_a_pool_thread_runs_there(eight_cpus):
    from emkit._backend import _pool

    def inner(i):
        assert _pool.in_pool_thread()
        return sum(thread_map(abs, range(-i, 0), 4))  # nested: sequential, no deadlock

    assert map_ordered(inner, range(6), 3) == [i * (i + 1) // 2 for i in range(6)]
