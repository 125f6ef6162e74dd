"""One fitted ISV/JFA machine scored from several threads at once (read-only use) gives the
serial scores: the probe cache that its scoring shares between calls is trimmed and added to under
a lock (two threads evicting the same oldest entry raised a KeyError, or 'dictionary changed size
during iteration')."""

import sys
import threading

import numpy as np
import pytest

from emkit import GMMMachine, ISVMachine
from emkit.factor_analysis import _scoring
from threads import in_threads

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, 3))
    ubm = GMMMachine(2, max_fitting_steps=2).fit(X[:600])
    stats = [ubm.acc_stats(X[i * 10:(i + 1) * 10]) for i in range(400)]
    isv = ISVMachine(1, ubm=ubm, em_iterations=1).fit(stats[:30], np.repeat(np.arange(10), 3))
    model = isv.enroll(stats[:3])
    return isv, model, stats


def _in_threads(n, target):
    return in_threads(n, target)[1]


class _PopTogether(dict):
    """A probe cache whose evictions wait for one another (up to 1 s), so that two threads pick
    the oldest entry before either removes it."""

    def __init__(self, *args):
        super().__init__(*args)
        self.meet = threading.Barrier(2, timeout=1)

    def pop(self, *args):
        try:
            self.meet.wait()
        except threading.BrokenBarrierError:
            pass  # (the other thread is not evicting: go on alone)
        return super().pop(*args)


def test_two_threads_evicting_at_once_both_score(scored):
    isv, model, stats = scored
    expected = [isv.score(model, [p]) for p in stats[100:102]]
    cache = isv._constants().scratch
    full = {-k: (None, None, None) for k in range(1, _scoring._PROBE_CACHE_SIZE + 1)}
    cache["probes"] = _PopTogether(full)
    got = [None, None]

    def score(i):
        got[i] = isv.score(model, [stats[100 + i]])

    assert _in_threads(2, score) == []
    assert got == expected
    assert len(cache["probes"]) == _scoring._PROBE_CACHE_SIZE


def test_many_threads_scoring_one_machine_get_the_serial_scores(scored):
    isv, model, stats = scored
    expected = [isv.score(model, [p]) for p in stats]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: races show sooner
    try:
        for _ in range(5):
            got = {}
            errors = _in_threads(8, lambda i: got.update(
                {j: isv.score(model, [stats[j]]) for j in range(i * 50, (i + 1) * 50)}))
            assert errors == []
            assert [got[j] for j in range(len(stats))] == expected
    finally:
        sys.setswitchinterval(interval)
    assert len(isv._constants().scratch["probes"]) <= _scoring._PROBE_CACHE_SIZE
