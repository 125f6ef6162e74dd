"""On a ``distributed`` client, whose scheduler calls no local callback, the E-steps of training
say how far they are as the partitions' tasks finish (INFO, rate-limited, on a clock the test
drives): GMM and k-means over the chunks of a dask array, i-vector and ISV over a dask bag (as a
graph, kept on the workers, spilled to disk).  The results are those of a run that logs nothing."""

import itertools
import logging

import dask.array as da
import dask.bag as db
import numpy as np
import pytest

import emkit
from emkit import GMMMachine, ISVMachine, IVectorMachine, KMeansMachine, _progress

pytest.importorskip("distributed")


def _ubm():
    machine = GMMMachine(3, max_fitting_steps=1)
    machine.means = np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]])
    machine.variances = np.ones((3, 2))
    machine.weights = np.full(3, 1 / 3)
    return machine


def _logged(fit, monkeypatch, caplog, what, tick=20):
    """``fit()`` run quietly, then with the ``emkit`` logger at INFO and ``tick`` seconds between
    two readings of the clock: both results, and the progress lines naming ``what``."""
    quiet = fit()
    ticks = itertools.count(0, tick)  # (next() of a count is atomic: worker threads may read it)
    monkeypatch.setattr(_progress, "monotonic", lambda: float(next(ticks)))
    with caplog.at_level(logging.INFO, logger="emkit"):
        logged = fit()
    return quiet, logged, [r.getMessage() for r in caplog.records if what in r.getMessage()]


def test_gmm_over_dask_chunks_on_a_client_logs_the_frames_done(client, monkeypatch, caplog):
    X = da.from_array(np.random.default_rng(0).standard_normal((1000, 2)), chunks=(250, 2))

    def fit():
        with emkit.config_context(dask_cache="off"):  # 4 chunks, read in every iteration
            return _ubm().fit(X)

    quiet, logged, lines = _logged(fit, monkeypatch, caplog, "E-step")
    assert lines == ["GMM ML E-step: 500 of 1000 frames (50.0%), 12.5 frames/s, 40 s elapsed, "
                     "about 40 s left"]
    for name in ("means", "variances", "weights"):
        np.testing.assert_array_equal(getattr(logged, name), getattr(quiet, name))


def test_kmeans_over_dask_chunks_on_a_client_logs_the_rows_done(client, monkeypatch, caplog):
    X = da.from_array(np.random.default_rng(0).standard_normal((1000, 2)), chunks=(250, 2))

    def fit():
        with emkit.config_context(dask_cache="off"):
            return KMeansMachine(3, init_method="random", max_iter=1, random_state=0).fit(X)

    quiet, logged, lines = _logged(fit, monkeypatch, caplog, "E-step")
    assert lines == ["k-means E-step: 500 of 1000 rows (50.0%), 12.5 rows/s, 40 s elapsed, "
                     "about 40 s left"]
    np.testing.assert_array_equal(logged.centroids_, quiet.centroids_)


def _partition_lines(what, n):
    """The lines of a pass over ``n`` partitions, one finished every 40 s."""
    return [f"{what}: {k} of {n} partitions ({100 * k / n:.1f}%), 40 s/partition, "
            f"{_progress.format_duration(40 * k)} elapsed, about "
            f"{_progress.format_duration(40 * (n - k))} left" for k in range(1, n)]


# kept on the workers ("memory") or spilled ("disk"), the bag's 4 partitions are 2, one per worker
@pytest.mark.parametrize("cache, partitions", [("off", 4), ("memory", 2), ("disk", 2)])
def test_ivector_and_isv_over_a_bag_on_a_client_log_the_partitions_done(cache, partitions, client,
                                                                        tmp_path, monkeypatch,
                                                                        caplog):
    ubm = _ubm()
    rng = np.random.default_rng(1)
    stats = ubm.transform([rng.standard_normal((20, 2)) for _ in range(16)])
    labels = [f"spk{i % 4}" for i in range(16)]

    def fit_ivector():
        with emkit.config_context(dask_cache=cache, spill_directory=tmp_path):
            bag = db.from_sequence(stats, npartitions=4)
            return IVectorMachine(ubm, dim_t=2, max_iterations=1, random_state=0).fit(bag)

    def fit_isv():
        with emkit.config_context(dask_cache=cache, spill_directory=tmp_path):
            pairs = db.from_sequence(list(zip(labels, stats)), npartitions=4)
            return ISVMachine(2, em_iterations=1, ubm=ubm, random_state=0).fit(pairs)

    quiet, logged, lines = _logged(fit_ivector, monkeypatch, caplog, "E-step", tick=40)
    assert lines == _partition_lines("IVector E-step", partitions)
    for name in ("T", "sigma"):
        np.testing.assert_array_equal(getattr(logged, name), getattr(quiet, name))
    caplog.clear()
    quiet, logged, lines = _logged(fit_isv, monkeypatch, caplog, "E-step", tick=40)
    assert lines == _partition_lines("ISV E-step", partitions)
    for name in ("U", "D"):
        np.testing.assert_array_equal(getattr(logged, name), getattr(quiet, name))
