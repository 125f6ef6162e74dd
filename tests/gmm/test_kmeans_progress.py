"""Inside k-means training (Lloyd iterations and the k-means|| rounds, each a pass over all the
rows: minutes on 10^8 frames), every pass says how far it is (INFO, rate-limited, on a clock the
test drives): numpy rows block by block, the chunks of a dask array as they finish; the
centroids are those of a run that logs nothing."""

import logging

import numpy as np
import pytest

import emkit
import emkit._backend as backend
from emkit import KMeansMachine, _progress

NUMPY_LINES = [": 400 of 1000 rows (40.0%), 10 rows/s, 40 s elapsed, about 1m00s left",
               ": 800 of 1000 rows (80.0%), 10 rows/s, 1m20s elapsed, about 20 s left"]
DASK_LINES = [": 500 of 1000 rows (50.0%), 12.5 rows/s, 40 s elapsed, about 40 s left"]


def _fit(X, **kw):
    return KMeansMachine(3, max_iter=2, convergence_threshold=None, random_state=0, **kw).fit(X)


@pytest.mark.parametrize("rows", ["numpy", "dask chunks"])
def test_lloyd_and_kmeans_parallel_passes_log_the_rows_done(rows, monkeypatch, caplog):
    monkeypatch.setattr(backend, "n_threads", lambda: 1)  # the blocks in order
    X = np.random.default_rng(0).standard_normal((1000, 2))
    settings, expected = {"block_rows": 200}, NUMPY_LINES  # 5 blocks
    if rows == "dask chunks":
        import dask.array as da

        X = da.from_array(X, chunks=(250, 2))  # 4 chunks, read from "disk" in every pass
        settings, expected = {"block_rows": 100, "dask_cache": "off"}, DASK_LINES
    with emkit.config_context(**settings):
        quiet = _fit(X)
        quiet_variances, quiet_weights = quiet.get_variances_and_weights_for_each_cluster(X)
        ticks = iter(range(0, 10**6, 20))  # 20 s between two readings of the clock
        monkeypatch.setattr(_progress, "monotonic", lambda: float(next(ticks)))
        with caplog.at_level(logging.INFO, logger="emkit"):
            machine = _fit(X)
            variances, weights = machine.get_variances_and_weights_for_each_cluster(X)
    lines = [r.getMessage() for r in caplog.records if " rows (" in r.getMessage()]
    passes = ([f"k-means|| initialisation: round {r}" for r in range(1, 6)]
              + ["k-means|| initialisation: candidates' weights"]
              + ["k-means E-step"] * 2 + ["k-means cluster variances"])  # (2 Lloyd iterations)
    assert lines == [what + line for what in passes for line in expected]
    np.testing.assert_array_equal(machine.centroids_, quiet.centroids_)
    np.testing.assert_array_equal(variances, quiet_variances)
    np.testing.assert_array_equal(weights, quiet_weights)
