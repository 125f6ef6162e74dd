"""Fixtures of the dask tests of this folder."""

import pytest


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 single-threaded in-process workers (counters and monkeypatches of
    the tests see their calls) and its client, per test module.  test_distributed.py has its
    own (worker processes)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0", silence_logs=40) as cluster:
        with distributed.Client(cluster) as c:
            yield c
