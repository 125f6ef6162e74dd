"""The heap of ``distributed`` workers while emkit trains on them.

dask's nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (its
``distributed.nanny.pre-spawn-environ``), so that freed memory goes back to the system at once.
Setting that variable also fixes glibc's mmap threshold at its static 128 KiB: every temporary
array above 128 KiB that the E-steps allocate (posterior blocks, products of a block of sessions)
is then mapped afresh and page-faulted in, and unmapped when freed.  On the 2-core development
machine the statistics of 500-frame utterances (C=512, D=60) took 1.6x as long in such a worker
as in a thread of the client process, and 2 threads of a process started with the variable took
twice as long as without it.

For the length of a ``fit`` on a ``distributed`` client, :func:`tuned_worker_heaps` raises both
thresholds on the workers that run with the nanny's setting (trim: :data:`TRIM_BYTES`, mmap:
:data:`MMAP_BYTES`, the ceiling of glibc's own dynamic threshold), so that freed blocks are reused
by the next pass; at the end it restores the values of the workers' environment and trims their
heaps (``malloc_trim``).  Workers without the variable, without glibc, or with a memory limit
under :data:`MIN_MEMORY_LIMIT` (4 GiB) are left alone.  Turn it
off with ``emkit.set_config(dask_worker_heap=False)``.

A client killed during a fit (SIGKILL) cannot restore them: for that, the client also holds a
:class:`HeapLease` on every worker while it trains (the result of a task that made it there).
The scheduler forgets the futures of a client that is gone, the workers drop their leases, and a
worker whose last lease is dropped restores its thresholds.  Only a client killed in the moment
between raising the thresholds and a busy worker running its lease task leaves them raised.  (A
lease evicted by dask's spilling of a worker's data under memory pressure restores them early:
that worker then gives its freed memory back.)

A worker that joins during a fit (one the nanny restarted after it died, or one added by an
adaptive cluster) runs the rest of that fit with its environment's thresholds: the thresholds are
raised when the fit starts, and the next fit raises its own.  Its share of the passes then runs
up to the 1.6x above, and it returns its freed memory at once.  That is left so on purpose: the
usual reason a nanny restarts a worker is that it ran out of memory (dask's terminate threshold,
or the kernel's OOM killer), where keeping 256 MiB of freed memory for reuse would be the wrong
choice; and tuning the newcomers would take a client-side watch of the workers for every fit
(a lease for each, so that a killed client still restores them), to speed up a fit already
slowed by recomputing the dead worker's partitions.  The last fit's restore reaches every worker,
newcomers included, so none is left tuned.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import threading
import weakref

logger = logging.getLogger(__name__)

__all__ = ["tuned_worker_heaps", "HeapLease", "TRIM_BYTES", "MMAP_BYTES"]

#: Free memory at the top of a worker's heap kept for reuse during a fit (the working set of a
#: pass is bounded by the estimators' block sizes, far below this).
TRIM_BYTES = 256 << 20
#: Allocations above this still get their own mapping (glibc's maximum dynamic threshold on
#: 64-bit systems).
MMAP_BYTES = 32 << 20
#: Workers with a smaller memory limit are left alone: the memory kept for reuse would be a large
#: share of it, and dask pauses a worker at 80% of its limit (a fit on 300 MB workers holding
#: their frames stalled for good).
MIN_MEMORY_LIMIT = 16 * TRIM_BYTES
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_GLIBC_MMAP_DEFAULT = 128 * 1024

_lock = threading.Lock()
_lease_lock = threading.RLock()  # (re-entered by a lease collected while it is held)
#: On a worker: whether its thresholds are raised now.
raised = False
_depth = 0  # fits in progress in this (client) process: the first tunes, the last restores
#: On a worker: how many times its thresholds were raised, and the HeapLease copies it holds by
#: the raise they were made in.  Only the last lease of the current raise restores: a lease of an
#: earlier fit is dropped whenever the worker gets to it, possibly after the next fit raised them.
_raises = 0
_leases: dict = {}
_lease: list = []  # in a client process: its lease futures while fits are in progress


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def raise_thresholds(dask_worker=None) -> bool:
    """On a worker (``Client.run`` passes it): keep freed memory for reuse (True when applied)."""
    global raised, _raises
    libc = _libc()
    if libc is None or "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return False
    limit = _memory_limit(dask_worker)
    if limit is not None and limit < MIN_MEMORY_LIMIT:
        return False
    with _lease_lock:
        raised = bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES)
                      and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES))
        _raises += 1
    return raised


def _raise_for_a_lease(dask_worker=None):
    """On a worker: :func:`raise_thresholds`, and the number of that raise (None when not
    raised), which the client's lease task for it then carries (:func:`_worker_lease`)."""
    if not raise_thresholds(dask_worker):
        return None
    with _lease_lock:
        return _raises


def _memory_limit(worker):
    """The memory limit (bytes) of a ``distributed`` worker; None without one."""
    try:
        return int(worker.memory_manager.memory_limit or 0) or None
    except (AttributeError, TypeError, ValueError):  # not a worker, or another distributed version
        return None


def restore_thresholds() -> bool:
    """On a worker: the thresholds of its environment back, and free memory returned."""
    with _lease_lock:
        return _restore()


def _restore() -> bool:
    """:func:`restore_thresholds`, with ``_lease_lock`` held."""
    global raised
    libc = _libc()
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    if libc is None or trim is None:
        return False
    mmap = os.environ.get("MALLOC_MMAP_THRESHOLD_", str(_GLIBC_MMAP_DEFAULT))
    try:
        trim_bytes, mmap_bytes = int(trim), int(mmap)
    except ValueError:
        return False
    done = libc.mallopt(_M_TRIM_THRESHOLD, trim_bytes) and libc.mallopt(_M_MMAP_THRESHOLD, mmap_bytes)
    libc.malloc_trim(0)
    raised = raised and not done
    return bool(done)


class HeapLease:
    """A client's claim on the raised thresholds of the workers (see the module docstring): each
    copy unpickled on a worker is counted there, and the worker restores its thresholds when it
    drops the last one."""

    def __reduce__(self):
        return (_worker_lease, ())


def _worker_lease(made_in: int | None = None) -> HeapLease:
    """A lease counted under the raise ``made_in`` (the current one when None: a copy moved to
    this worker).  A lease task delayed past the end of its fit and the start of the next runs
    with its own raise's number: dropped, it cannot restore the next fit's thresholds."""
    lease = HeapLease()
    with _lease_lock:
        if made_in is None:
            made_in = _raises
        _leases[made_in] = _leases.get(made_in, 0) + 1
    weakref.finalize(lease, _lease_dropped, made_in)
    return lease


def _lease_dropped(made_in: int) -> None:
    # Decided and restored under the lock: a lease is dropped in whichever thread lets go of it
    # last (a task's thread too), and the next fit raises the thresholds in the worker's event
    # loop.  Checked after the lock was released, a raise in between was undone at once.
    with _lease_lock:
        _leases[made_in] -= 1
        if _leases[made_in] == 0:
            del _leases[made_in]
        if made_in == _raises and made_in not in _leases and raised:
            _restore()


def _leased(client, raises: dict) -> list:
    """The futures of a :class:`HeapLease` made by a task on each worker whose thresholds were
    raised (``raises``: address -> the number of that raise) and held there: one replica each
    (dask's active memory manager drops the extra replicas of a broadcast value).  Not waited
    for: a worker that dies before its task runs would hold up the fit for good."""
    try:
        return [client.submit(_worker_lease, made_in, pure=False, workers=[address],
                              allow_other_workers=False, priority=100)
                for address, made_in in raises.items() if made_in is not None]
    except Exception as error:  # a closing cluster: nothing to lease
        logger.debug("could not lease the workers' heaps: %s", error)
        return []


def _run_on_workers(client, fn) -> dict:
    try:
        return client.run(fn)
    except Exception as error:  # a closing cluster: nothing to tune or restore
        logger.debug("could not run %s on the workers: %s", fn.__name__, error)
        return {}


@contextlib.contextmanager
def tuned_worker_heaps(X):
    """Raise the workers' heap thresholds while the body trains on the dask collection ``X``
    (nothing for other inputs, without a ``distributed`` client, or when the configuration's
    ``dask_worker_heap`` is False)."""
    global _depth, _lease
    from .._config import get_config
    from .._validation import is_dask_collection
    from ._cluster import distributed_client

    client = None
    if is_dask_collection(X) and get_config()["dask_worker_heap"]:
        client = distributed_client()
    if client is None:
        yield
        return
    with _lock:
        _depth += 1
        first = _depth == 1
    try:
        if first:  # (raised first: each lease carries its worker's raise)
            _lease = _leased(client, _run_on_workers(client, _raise_for_a_lease))
        yield
    finally:
        with _lock:
            _depth -= 1
            last = _depth == 0
        if last:
            _run_on_workers(client, restore_thresholds)
            leases, _lease = _lease, []
            for lease in leases:
                lease.release()
