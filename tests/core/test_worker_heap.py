"""The bookkeeping of a worker's heap leases (emkit._backend._worker_heap) between the threads of
a ``distributed`` worker: its event loop raises and restores the thresholds (``Client.run``),
while a lease is dropped by whichever thread lets go of it last."""

import gc
import threading

import pytest

from emkit._backend import _worker_heap


class _NextFitRaisesOnRelease:
    """A stand-in for the module's lease lock: once armed, the next release lets another thread
    (the event loop of the worker, where the next fit raises the thresholds) run
    :func:`raise_thresholds` before the releasing thread goes on."""

    def __init__(self):
        self._lock = threading.RLock()
        self.armed = False
        self.raised_by_next_fit = []

    def __enter__(self):
        self._lock.acquire()
        return self

    def __exit__(self, *exc):
        self._lock.release()
        if self.armed:
            self.armed = False
            raising = threading.Thread(
                target=lambda: self.raised_by_next_fit.append(_worker_heap.raise_thresholds()))
            raising.start()
            raising.join()


def test_the_last_lease_dropped_as_the_next_fit_raises_leaves_its_thresholds_raised(monkeypatch):
    """The last lease of a fit decided that it restores the thresholds, released the lock, and
    only then read whether they were raised: a next fit that raised them in between (its
    ``Client.run`` in the event loop, the lease dropped in a task's thread) had them restored at
    once and ran its passes without them."""
    if _worker_heap._libc() is None:
        pytest.skip("needs glibc's mallopt")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")  # (glibc's default)
    lock = _NextFitRaisesOnRelease()
    monkeypatch.setattr(_worker_heap, "_lease_lock", lock)
    try:
        fit = _worker_heap._raise_for_a_lease()
        lease = _worker_heap._worker_lease(fit)
        _worker_heap.restore_thresholds()  # the fit ends, then releases its lease
        lock.armed = True
        del lease
        gc.collect()
        assert lock.raised_by_next_fit == [True] and not lock.armed
        assert _worker_heap._raises == fit + 1
        assert _worker_heap.raised  # the next fit's
        assert _worker_heap._leases == {}
    finally:
        _worker_heap.restore_thresholds()
    assert not _worker_heap.raised
