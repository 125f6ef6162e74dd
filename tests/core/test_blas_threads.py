"""emkit's one-BLAS-thread limit is process-wide and reference-counted: blocks overlapping in
several threads, in any order, leave the BLAS thread count as they found it."""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from emkit import GMMMachine
from emkit._backend import single_threaded_blas
from threads import in_threads


def _blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.fixture
def two_blas_threads():
    """BLAS at 2 threads during the test (whatever the machine), restored afterwards."""
    if not _blas_threads():
        pytest.skip("no BLAS library that threadpoolctl can control")
    with threadpool_limits(limits=2, user_api="blas"):
        assert set(_blas_threads()) == {2}
        yield


def _run_threads(n, target):
    errors = in_threads(n, target)[1]
    if errors:
        raise errors[0]


@pytest.mark.parametrize("exit_order", ["entry order", "reverse order"])
def test_overlapping_limits_in_threads_restore_the_blas_thread_count(two_blas_threads, exit_order):
    # thread i enters after thread i-1 has entered; all hold the limit at once; they leave in the
    # given order (entry order was the losing one: the last to leave restored what thread 3 had
    # saved, i.e. the limit of thread 0)
    n = 4
    entered = [threading.Event() for _ in range(n)]
    left = [threading.Event() for _ in range(n)]
    all_in = threading.Barrier(n)
    inside = []
    order = list(range(n)) if exit_order == "entry order" else list(range(n))[::-1]

    def worker(i):
        if i:
            assert entered[i - 1].wait(10)
        with single_threaded_blas():
            entered[i].set()
            all_in.wait(10)
            inside.append(_blas_threads())
            position = order.index(i)
            if position:
                assert left[order[position - 1]].wait(10)
        left[i].set()

    _run_threads(n, worker)
    assert all(set(seen) == {1} for seen in inside), inside
    assert set(_blas_threads()) == {2}


def test_concurrent_acc_stats_leave_blas_threads_unchanged(two_blas_threads):
    rng = np.random.default_rng(0)
    ubm = GMMMachine(8, max_fitting_steps=2).fit(rng.normal(size=(500, 4)))
    data = [rng.normal(size=(3000 + 500 * i, 4)) for i in range(4)]
    expected = [ubm.acc_stats(x) for x in data]
    for _ in range(5):
        barrier = threading.Barrier(4)
        results = [None] * 4

        def worker(i):
            barrier.wait(10)
            results[i] = ubm.acc_stats(data[i])

        _run_threads(4, worker)
        assert set(_blas_threads()) == {2}
        for got, want in zip(results, expected):
            np.testing.assert_allclose(got.sum_px, want.sum_px, rtol=0, atol=1e-9 * np.abs(want.sum_px).max())


def test_nested_limits_restore_only_at_the_outermost_exit(two_blas_threads):
    with single_threaded_blas():
        with single_threaded_blas():
            assert set(_blas_threads()) == {1}
        assert set(_blas_threads()) == {1}
    assert set(_blas_threads()) == {2}


def test_exception_inside_the_limit_still_restores(two_blas_threads):
    with pytest.raises(RuntimeError):
        with single_threaded_blas():
            raise RuntimeError("boom")
    assert set(_blas_threads()) == {2}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_child_forked_inside_a_limit_gets_the_original_thread_count(two_blas_threads):
    # a child forked while another thread holds the limit can never see that thread leave
    script = textwrap.dedent("""
        import os, threading
        from threadpoolctl import threadpool_info, threadpool_limits
        from emkit._backend import single_threaded_blas
        def blas():
            return sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
        threadpool_limits(limits=2, user_api="blas")
        held, release = threading.Event(), threading.Event()
        def hold():
            with single_threaded_blas():
                held.set()
                release.wait(10)
        t = threading.Thread(target=hold)
        t.start()
        held.wait(10)
        assert blas() == [1], blas()
        pid = os.fork()
        if pid == 0:
            ok = blas() == [2]
            with single_threaded_blas():
                ok = ok and blas() == [1]
            ok = ok and blas() == [2]
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        release.set()
        t.join()
        assert os.waitstatus_to_exitcode(status) == 0, status
        assert blas() == [2], blas()
        print("ok")
    """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "ok"


def test_thread_map_workers_run_under_the_callers_errstate():
    """numpy's error state is per thread: before, the pool's workers kept numpy's default
    ('warn'), so an overflow the caller had set to raise (or to ignore) only warned there."""
    from emkit._backend import thread_map

    def square(x):
        return np.float64(x) * np.float64(x)

    with np.errstate(over="raise"), pytest.raises(FloatingPointError, match="overflow"):
        list(thread_map(square, [1e200, 1e200, 1.0], threads=2))
    with np.errstate(over="ignore"):
        assert list(thread_map(square, [1e200, 3.0], threads=2)) == [np.inf, 9.0]


def test_thread_map_workers_call_the_callers_error_function():
    """``over='call'`` needs the ``np.seterrcall`` function, per thread too: the workers had
    none (a NameError from numpy)."""
    from emkit._backend import thread_map

    seen = []

    def square(x):
        return np.float64(x) * np.float64(x)

    with np.errstate(over="call", call=lambda kind, flag: seen.append(kind)):
        assert list(thread_map(square, [1e200, 1e200, 3.0], threads=2)) == [np.inf, np.inf, 9.0]
    assert seen == ["overflow", "overflow"]


@pytest.mark.parametrize("threads", [1, 2])
def test_thread_map_takes_the_errstate_of_its_call_not_of_the_first_next(threads):
    from emkit._backend import thread_map

    def square(x):
        return np.float64(x) * np.float64(x)

    with np.errstate(over="ignore"):
        squares = thread_map(square, [1e200, 3.0], threads=threads)
    with np.errstate(over="raise"):  # (raised at the first next before)
        assert list(squares) == [np.inf, 9.0]


def test_a_map_whose_item_fails_returns_after_the_items_already_running():
    """The items already started write into the caller's arrays: the error reaches the caller
    only once they have finished (they went on running after it before)."""
    import time

    from emkit._backend import thread_map

    started, finished = threading.Event(), []

    def item(i):
        if i == 0:
            started.wait(10)
            raise ValueError("item 0")
        started.set()
        time.sleep(0.2)  # (still running when item 0 fails)
        finished.append(i)
        return i

    with pytest.raises(ValueError, match="item 0"):
        list(thread_map(item, range(2), threads=2))
    assert finished == [1]


def test_a_fork_while_another_thread_holds_the_pool_lock_leaves_the_childs_pool_usable():
    script = textwrap.dedent("""
        import os, threading, time
        from emkit._backend import _pool, map_ordered
        map_ordered(abs, range(64), 2)  # the parent's pool
        held, release = threading.Event(), threading.Event()
        def hold():
            with _pool._LOCK:
                held.set()
                release.wait(30)
        t = threading.Thread(target=hold)
        t.start()
        held.wait(10)
        pid = os.fork()
        if pid == 0:
            os._exit(0 if map_ordered(abs, range(-64, 0), 2) == list(range(64, 0, -1)) else 3)
        deadline = time.monotonic() + 30  # (a hang: the child never returns)
        done, status = os.waitpid(pid, os.WNOHANG)
        while done == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
            done, status = os.waitpid(pid, os.WNOHANG)
        release.set()
        t.join()
        if done == 0:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            print("hung")
        else:
            print(os.waitstatus_to_exitcode(status))
    """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=90)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "0"
