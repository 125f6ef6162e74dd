"""How data is traversed: one entry point, :func:`map_reduce`.

``map_reduce(chunk_fn, X, *params)`` applies ``chunk_fn(chunk, *params)`` to pieces of ``X`` and
sums the results with ``+`` (every statistic in emkit is additive), in a fixed order, so the
result does not depend on thread or worker timing.

* numpy arrays are cut into contiguous row slices processed by a small thread pool (BLAS limited
  to one thread per worker, so the element-wise passes run in parallel too; one pool per process:
  :func:`n_threads`); the kernels walk each slice in bounded row blocks, so working memory does
  not grow with N.
* dask arrays get one task per chunk, a pairwise tree sum and a single ``compute`` on whatever
  scheduler is current (a ``distributed.Client`` when one is active).  Only ``params`` travel to
  the workers, once per call, never the estimator.
* sequences (lists of per-utterance objects) are mapped in batches the same way; dask bags get one
  task per partition.

Only this package imports dask, and lazily.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading

import numpy as np

from .._cpus import worker_threads
from .._validation import checked_chunk, is_dask_array, is_dask_collection
from ._errstate import in_callers_errstate

__all__ = ["map_reduce", "map_reduce_finite", "is_dask_collection", "is_bag", "is_delayed",
           "bag_from_parts", "n_threads", "tree_sum", "single_threaded_blas", "map_ordered",
           "thread_map", "map_pieces", "computed_once", "cached_frames", "is_cached",
           "prepared_on_workers", "partition_lengths"]

# (dask inputs computed once per fit)
from ._pool import in_pool_thread, pooled_map  # noqa: E402
from ._cache import (cached_frames, computed_once, is_cached,  # noqa: E402
                     partition_lengths, prepared_on_workers)

#: Below this many rows a numpy input is processed in the calling thread.
_MIN_ROWS_PER_THREAD = 8192


def n_threads() -> int:
    """Threads of the pool for in-memory inputs (one pool per process, shared by every thread
    calling emkit): the usable CPUs, at most ``OMP_NUM_THREADS`` (:func:`.._cpus.worker_threads`)."""
    return worker_threads()


def is_bag(obj) -> bool:
    """True for a ``dask.bag.Bag`` (dask is imported only for dask objects)."""
    if not is_dask_collection(obj):
        return False
    from dask.bag import Bag

    return isinstance(obj, Bag)


def is_delayed(obj) -> bool:
    """True for a ``dask.delayed`` object (dask is imported only for dask objects)."""
    if not is_dask_collection(obj):
        return False
    from dask.delayed import Delayed

    return isinstance(obj, Delayed)


def bag_from_parts(fn, parts_args):
    """A dask bag with one partition ``fn(*args)`` per item of ``parts_args`` (lazy: nothing is
    computed or persisted here; ``fn`` must be a top-level function, so that it pickles)."""
    import dask
    import dask.bag as db
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    parts_args = [tuple(args) for args in parts_args]
    # the partitions' keys are the tasks' own (``db.from_delayed`` adds an alias task per
    # partition, which the scheduler runs after the next partition's work on a busy worker)
    name = f"{getattr(fn, '__name__', 'part')}-{tokenize(fn, parts_args)}"
    task = dask.delayed(fn, pure=True)
    parts = [task(*args, dask_key_name=(name, i)) for i, args in enumerate(parts_args)]
    return db.Bag(HighLevelGraph.merge(*[p.dask for p in parts]), name, len(parts))


def tree_sum(values):
    """Sum a sequence with ``+`` pairwise, adjacent items first: a fixed, balanced order."""
    values = list(values)
    if not values:
        raise ValueError("nothing to sum: the input holds no chunks")
    while len(values) > 1:
        paired = [values[i] + values[i + 1] for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            paired.append(values[-1])
        values = paired
    return values[0]


def _row_slices(n_rows: int, n_pieces: int):
    edges = np.linspace(0, n_rows, n_pieces + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


_BLAS_LIBS = None
_BLAS_LOCK = threading.Lock()
#: the process-wide limit: how many blocks hold it, the thread counts found when the first one
#: entered (restored when the last one leaves), and a generation that a fork advances
_BLAS_STATE = {"holders": 0, "saved": None, "generation": 0}


@contextlib.contextmanager
def single_threaded_blas():
    """Context manager limiting BLAS to one thread (process-wide, cheap to enter, thread-safe).

    emkit parallelises over row slices itself; one BLAS thread per slice avoids oversubscription,
    and small products (one utterance) are faster single-threaded anyway.

    BLAS thread counts are process-wide, so this is one reference-counted limit: the first block
    to enter (in any thread) sets it, the last to leave (in any thread) restores the counts the
    first one found.  Blocks overlapping in several threads, in any order, leave BLAS as they
    found it.
    """
    generation = _enter_single_threaded_blas()
    try:
        yield
    finally:
        _leave_single_threaded_blas(generation)


def small_products(fn=None):
    """Mark work made of small matrix products (one utterance, one model, a cache-sized block):
    the backend runs it with one BLAS thread.  A context manager, or a decorator of a function.

    This is the one way estimators and kernels say how BLAS threads should be used; the thread
    counts themselves are set here (see :func:`single_threaded_blas`) and by the ``map_*``
    functions, never by estimators.
    """
    if fn is None:
        return single_threaded_blas()

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with single_threaded_blas():
            return fn(*args, **kwargs)

    return wrapper


def _blas_libs():
    """threadpoolctl's controllers of the BLAS libraries loaded when emkit first limits BLAS."""
    global _BLAS_LIBS
    if _BLAS_LIBS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS_LIBS = ThreadpoolController().select(user_api="blas").lib_controllers
    return _BLAS_LIBS


def _set_blas_threads(lib, n: int) -> None:
    # threadpoolctl >= 3.8 lets only one thread (the first to set a limit, while it lives) change
    # OpenBLAS; emkit's limit is entered and left by whichever threads call it, serialised by
    # _BLAS_LOCK, so it sets the library directly (the public method where that is missing)
    getattr(lib, "_real_set_num_threads", lib.set_num_threads)(n)


def _enter_single_threaded_blas() -> int:
    with _BLAS_LOCK:
        if _BLAS_STATE["holders"] == 0:
            libs = _blas_libs()
            _BLAS_STATE["saved"] = [lib.num_threads for lib in libs]
            for lib in libs:
                _set_blas_threads(lib, 1)
        _BLAS_STATE["holders"] += 1
        return _BLAS_STATE["generation"]


def _leave_single_threaded_blas(generation: int) -> None:
    with _BLAS_LOCK:
        if generation != _BLAS_STATE["generation"]:
            return  # entered before a fork: the child restored the counts already
        _BLAS_STATE["holders"] -= 1
        if _BLAS_STATE["holders"] == 0:
            _restore_blas_threads()


def _restore_blas_threads() -> None:
    saved, _BLAS_STATE["saved"] = _BLAS_STATE["saved"], None
    for lib, n in zip(_blas_libs(), saved or []):
        _set_blas_threads(lib, n)


def _release_blas_limit_after_fork() -> None:
    """In a forked child only the forking thread exists: blocks that other threads held will never
    be left, so the child restores the original counts now and ignores the older blocks' exits."""
    global _BLAS_LOCK
    _BLAS_LOCK = threading.Lock()  # another thread of the parent may have held it
    if _BLAS_STATE["holders"]:
        _restore_blas_threads()
    _BLAS_STATE.update(holders=0, saved=None, generation=_BLAS_STATE["generation"] + 1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_release_blas_limit_after_fork)


def thread_map(fn, items, threads: int | None = None):
    """``fn(item)`` for each item, in order, on at most ``threads`` threads of the process's
    persistent pool (one BLAS thread each), holding at most ``threads`` results in flight plus
    the one being yielded.

    Each is computed under the ``np.errstate`` of this call (not of the first ``next``; the
    items and the thread count are read now too).  Iterated inside one of the pool's own threads
    it runs sequentially (a nested map cannot wait on its own pool).
    """
    items = list(items)
    threads = n_threads() if threads is None else threads
    return _thread_mapped(in_callers_errstate(fn), items, threads)


def _thread_mapped(fn, items: list, threads: int):
    with single_threaded_blas():
        if threads <= 1 or len(items) < 2 or in_pool_thread():
            yield from map(fn, items)
            return
        yield from pooled_map(fn, items, threads)


def _map_numpy(chunk_fn, X, params, threads, with_offset):
    n_rows = X.shape[0]
    pieces = min(threads, max(1, n_rows // _MIN_ROWS_PER_THREAD))

    def call(s):
        if with_offset:
            return chunk_fn(X[s], s.start, *params)
        return chunk_fn(X[s], *params)

    if pieces <= 1:
        with single_threaded_blas():
            return call(slice(0, n_rows))
    return tree_sum(thread_map(call, _row_slices(n_rows, 2 * pieces), pieces))


def _map_dask_array(chunk_fn, X, params, with_offset, progress=None):
    import dask

    from ._dask_progress import computed_counted

    if X.ndim == 2 and len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    shared = _shared_params(params)
    if with_offset:
        offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).tolist()
        task = dask.delayed(_call_with_offset, pure=True)
        parts = [task(chunk_fn, block, int(o) if np.isfinite(o) else None, shared)
                 for block, o in zip(X.to_delayed().ravel(), offsets)]
    else:
        task = dask.delayed(_call_unpacked, pure=True)
        parts = [task(chunk_fn, block, shared) for block in X.to_delayed().ravel()]
    with single_threaded_blas():
        return computed_counted(_delayed_tree_sum(parts), parts, X.chunks[0], progress)


#: Parameters of a pass larger than this go to every worker once, ahead of the tasks
#: (``Client.scatter(broadcast=True)``), instead of inside the task graph through the scheduler.
_SCATTER_BYTES = 1 << 20


def _array_bytes(obj, depth: int = 0) -> int:
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if depth > 3:
        return 0
    if isinstance(obj, (tuple, list)):
        return sum(_array_bytes(o, depth + 1) for o in obj)
    fields = getattr(obj, "__dict__", None)
    return sum(_array_bytes(o, depth + 1) for o in fields.values()) if fields else 0


def _shared_params(params):
    """``params`` as one task-graph value: a future scattered to every worker when large and a
    ``distributed`` client runs the graph, else a delayed value embedded once in the graph."""
    import dask

    from ._cluster import distributed_client

    client = distributed_client() if _array_bytes(params) > _SCATTER_BYTES else None
    if client is not None:
        (future,) = client.scatter([params], broadcast=True, hash=False)
        return future
    return dask.delayed(params, pure=True, traverse=False)


def _map_dask_bag(chunk_fn, bag, params, numbered=False, progress=None):
    import dask

    from ._cache import partition_files, partition_futures
    from ._cluster import distributed_client
    from ._dask_progress import computed_counted

    futures, files = partition_futures(bag), partition_files(bag)
    client = distributed_client() if futures is not None or files is not None else None
    if client is not None:
        from ._kept import map_files, map_futures

        if futures is not None:
            return map_futures(client, chunk_fn, futures, params, progress)
        return map_files(client, chunk_fn, files, params, progress)
    shared = _shared_params(params)
    if numbered:
        task = dask.delayed(_call_numbered, pure=True)
        parts = [task(chunk_fn, part, k, shared) for k, part in enumerate(bag.to_delayed())]
    else:
        task = dask.delayed(_call_unpacked, pure=True)
        parts = [task(chunk_fn, part, shared) for part in bag.to_delayed()]
    with single_threaded_blas():
        return computed_counted(_delayed_tree_sum(parts), parts, [1] * len(parts), progress)


def _call_unpacked(chunk_fn, chunk, params):
    return chunk_fn(chunk, *params)


def _call_numbered(chunk_fn, chunk, number, params):
    return chunk_fn(chunk, *params, partition=number)


def _call_with_offset(chunk_fn, chunk, offset, params):
    return chunk_fn(chunk, offset, *params)


def _add(a, b):
    return a + b


def _delayed_tree_sum(parts):
    import dask

    add = dask.delayed(_add, pure=True)
    parts = list(parts)
    if not parts:
        raise ValueError("nothing to sum: the input holds no chunks")
    while len(parts) > 1:
        paired = [add(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            paired.append(parts[-1])
        parts = paired
    return parts[0]


def map_pieces(fn, X) -> list:
    """``fn`` of every piece of ``X``, in a fixed order, computed where the data are.

    A dask array gives one task per chunk (row-major order of the chunk grid), a dask bag one per
    partition, a delayed object one; a list or tuple gives one result per item, its dask items
    computed as tasks.  All tasks run in a single ``compute`` on the current scheduler.  For
    per-chunk digests of data that live on dask workers (only the digests travel back).
    """
    if is_dask_collection(X):
        if hasattr(X, "to_delayed") and hasattr(X, "chunks"):
            items = list(X.to_delayed().ravel())
        elif hasattr(X, "npartitions"):
            items = list(X.to_delayed())
        else:
            items = [X]
    elif isinstance(X, (list, tuple)):
        items = list(X)
    else:
        raise TypeError(f"unsupported input type {type(X).__name__}")
    results = [None if is_dask_collection(item) else fn(item) for item in items]
    lazy = [i for i, item in enumerate(items) if is_dask_collection(item)]
    if lazy:
        import dask

        task = dask.delayed(fn, pure=True)
        for i, value in zip(lazy, dask.compute(*[task(items[i]) for i in lazy])):
            results[i] = value
    return results


def map_ordered(fn, items, threads: int | None = None) -> list:
    """``[fn(item) for item in items]`` on a thread pool (single-threaded BLAS), order kept."""
    return list(thread_map(fn, items, threads))


def map_reduce(chunk_fn, X, *params, threads: int | None = None, with_offset: bool = False,
               numbered: bool = False, progress=None):
    """Sum of ``chunk_fn(piece, *params)`` over pieces of ``X`` (see the module docstring).

    ``X`` is an ndarray (rows are split), a dask array (one task per chunk), a dask bag (one task
    per partition) or a Python sequence.  With ``with_offset=True`` (arrays only) the function is
    called as ``chunk_fn(piece, first_row_index, *params)``, for row-indexed random draws that do
    not depend on the chunking (None after a dask chunk of unknown size).  With
    ``numbered=True``, a partition ``k`` of a bag that is not cached (:mod:`._cache`) is passed
    as ``chunk_fn(piece, *params, partition=k)``, for errors that name its items (their index in
    the whole bag would take a pass more to know).  ``progress``: counts the rows of each chunk
    of a dask array, or each partition of a bag, as it finishes, on a local scheduler or a
    ``distributed`` client (:func:`._dask_progress.computed_counted`).
    """
    if is_dask_collection(X):
        if hasattr(X, "to_delayed") and hasattr(X, "chunks"):
            return _map_dask_array(chunk_fn, X, params, with_offset, progress)
        if hasattr(X, "npartitions"):
            return _map_dask_bag(chunk_fn, X, params, numbered, progress)
        raise TypeError(f"unsupported dask collection {type(X).__name__}: expected a dask array or bag")
    threads = n_threads() if threads is None else threads
    if isinstance(X, np.ndarray):
        return _map_numpy(chunk_fn, X, params, threads, with_offset)
    if isinstance(X, (list, tuple)):
        return _map_sequence(chunk_fn, list(X), params, threads)
    raise TypeError(f"unsupported input type {type(X).__name__}")


def map_reduce_finite(chunk_fn, X, *params, progress=None):
    """:func:`map_reduce` of checked frames ``X``: each chunk of a dask array is refused when it
    holds NaN/inf, naming the index in the whole array (numpy input is checked up front)."""
    if is_dask_array(X):
        return map_reduce(checked_chunk, X, chunk_fn, *params, with_offset=True,
                          progress=progress)
    return map_reduce(chunk_fn, X, *params)


#: Below this many items a sequence is processed in the calling thread.
_MIN_ITEMS_PER_THREAD = 32


def _map_sequence(chunk_fn, items, params, threads):
    if not items:
        raise ValueError("the input sequence is empty")
    pieces = min(threads, max(1, len(items) // _MIN_ITEMS_PER_THREAD))
    if pieces <= 1:
        with single_threaded_blas():
            return chunk_fn(items, *params)
    return tree_sum(thread_map(lambda s: chunk_fn(items[s], *params), _row_slices(len(items), 2 * pieces),
                               pieces))
