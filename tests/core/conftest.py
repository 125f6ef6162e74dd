"""Fixtures of this folder: a dask client, and a small problem for the argument-check tests."""

import numpy as np
import pytest

from emkit import GMMMachine


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 single-threaded in-process workers (counters and monkeypatches of
    the tests see their calls) and its client, per test module.  test_distributed.py has its
    own (worker processes)."""
    distributed = pytest.importorskip("distributed")
    import dask

    # (no worker profiler: a thread of its own in distributed 2024.1 that samples stacks every
    # 10 ms, which test_dask_cache's traced memory peaks would count)
    with dask.config.set({"distributed.worker.profile.enabled": False}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                     dashboard_address=":0", silence_logs=40) as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def small():
    """``(X, y of X's rows, a 2-Gaussian UBM, the statistics of 10 sessions, y of the sessions)``
    for the tests of argument checks (X: (120, 3), two classes of blobs, 6 labels)."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(60, 3)), rng.normal(size=(60, 3)) + 3])
    ubm = GMMMachine(2, max_fitting_steps=3, convergence_threshold=None).fit(X)
    stats = ubm.transform([X[i * 12:(i + 1) * 12] for i in range(10)])
    return X, np.repeat(np.arange(6), 20), ubm, stats, np.repeat(np.arange(5), 2)
