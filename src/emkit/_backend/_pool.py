"""emkit's one thread pool per process, shared by every thread that calls emkit.

The pool only grows: a map asking for fewer threads than it has keeps at most that many of its
items running at once.  (It was replaced whenever a map asked for another number of threads, so
a program alternating two kinds of work, such as ``acc_stats`` of a large array and
``IVectorMachine.transform``, started fresh threads, each setting up its BLAS buffers again, at
every switch.)
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

_LOCK = threading.Lock()
_POOL = {"pid": None, "executor": None, "threads": 0}
_WORKER = threading.local()


def _mark_worker() -> None:
    _WORKER.active = True


def in_pool_thread() -> bool:
    """Whether the calling thread is one of the pool's (a map there cannot wait on the pool)."""
    return getattr(_WORKER, "active", False)


def _executor(threads: int) -> ThreadPoolExecutor:
    """The process's persistent pool, with at least ``threads`` threads (BLAS sets up per-thread
    buffers on a thread's first product, so new threads for every pass cost time); a forked child
    makes its own."""
    with _LOCK:
        if _POOL["pid"] != os.getpid() or _POOL["threads"] < threads:
            # (a replaced pool's idle threads exit when it is garbage-collected)
            _POOL.update(pid=os.getpid(), threads=threads,
                         executor=ThreadPoolExecutor(threads, initializer=_mark_worker))
        return _POOL["executor"]


def _forget_pool_after_fork() -> None:
    """A forked child has only the forking thread: another thread of the parent may have held the
    lock (the child's first map would wait forever), and the pool's threads are gone."""
    global _LOCK
    _LOCK = threading.Lock()
    _POOL.update(pid=None, executor=None, threads=0)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def pooled_map(fn, items: list, threads: int):
    """``fn(item)`` for each item, in order, at most ``threads`` of them running at once on the
    pool: a generator holding at most ``threads`` results ahead of the one it yields next."""
    executor = _executor(threads)
    remaining = iter(items)
    running = collections.deque(executor.submit(fn, item)
                                for item in itertools.islice(remaining, threads))
    try:
        while running:
            result = running.popleft().result()
            for item in remaining:  # the next item takes the slot just freed
                running.append(executor.submit(fn, item))
                break
            yield result
    finally:
        for future in running:  # (an error, or the consumer stopped early)
            future.cancel()
        # items already started write into the caller's arrays, under its BLAS limit: they finish
        # before the caller goes on
        concurrent.futures.wait(running)
