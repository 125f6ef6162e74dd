"""Inside one EM iteration of ``GMMMachine.fit`` (minutes to hours on 10^8 frames), the E-step
says how far it is (INFO, rate-limited, on a clock the test drives): numpy frames block by
block, the chunks of an out-of-core dask array as they finish, with Gaussian selection too; the
parameters are those of a run that logs nothing."""

import logging

import numpy as np
import pytest

import emkit
import emkit._backend as backend
from emkit import GMMMachine, _progress


def _machine():
    machine = GMMMachine(3, max_fitting_steps=1)
    machine.means = np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]])
    machine.variances = np.ones((3, 2))
    machine.weights = np.full(3, 1 / 3)
    return machine


@pytest.mark.parametrize("frames", ["numpy", "dask chunks", "numpy, Gaussian selection"])
def test_the_estep_logs_the_frames_done_and_the_model_is_unchanged(frames, monkeypatch, caplog):
    monkeypatch.setattr(backend, "n_threads", lambda: 1)  # the blocks in order
    X = np.random.default_rng(0).standard_normal((1000, 2))
    settings = {"block_rows": 200}  # 5 blocks
    if frames == "dask chunks":
        import dask.array as da

        X = da.from_array(X, chunks=(250, 2))  # 4 chunks, read from "disk" in every iteration
        settings = {"block_rows": 100, "dask_cache": "off"}  # counted by chunk, not by block
    if "selection" in frames:
        settings["gselect_top_k"] = 2
    with emkit.config_context(**settings):
        quiet = _machine().fit(X)
        ticks = iter(range(0, 10**6, 20))  # 20 s between two readings of the clock
        monkeypatch.setattr(_progress, "monotonic", lambda: float(next(ticks)))
        with caplog.at_level(logging.INFO, logger="emkit"):
            machine = _machine().fit(X)
    lines = [r.getMessage() for r in caplog.records if "E-step" in r.getMessage()]
    if frames == "dask chunks":
        assert lines == ["GMM ML E-step: 500 of 1000 frames (50.0%), 12.5 frames/s, 40 s elapsed, "
                         "about 40 s left"]
    else:
        assert lines == [
            "GMM ML E-step: 400 of 1000 frames (40.0%), 10 frames/s, 40 s elapsed, about 1m00s "
            "left",
            "GMM ML E-step: 800 of 1000 frames (80.0%), 10 frames/s, 1m20s elapsed, about 20 s "
            "left"]
    for name in ("means", "variances", "weights"):
        np.testing.assert_array_equal(getattr(machine, name), getattr(quiet, name))
