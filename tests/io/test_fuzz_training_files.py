"""Fuzzing the readers of training files (HDF5): checkpoints (``checkpoint=``, ``--checkpoint``)
and the statistics file the CLI keeps beside a checkpoint (read through ``read_statistics``).

A few hundred mutations (:mod:`mutations`: bit flips, bytes set, inserted and deleted,
truncations) of a valid file of each kind.  A load must give a state of finite numbers (or None:
statistics of other data), or raise :class:`~emkit.io.InvalidFileError` (or
:class:`~emkit._checkpoint.CheckpointMismatchError`) naming the file, within the time limit,
allocating at most twice the file's size (plus the fixed slack of :mod:`mutations`).

Campaigns run when this test was added: 5500 cases of each kind (three seeds, each case in a
child process under RLIMIT_AS and a 2 s timer); no finding.
"""

import random

import numpy as np
import pytest

from emkit import GMMMachine, KMeansMachine
from emkit._checkpoint import Checkpoint, TrainingInput
from emkit.experiment._stats_file import read_statistics, write_statistics
from emkit.io.errors import InvalidFileError
from mutations import CASES, guarded, mutate_bytes

N = CASES or 100


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    return np.vstack([rng.normal(size=(40, 2)) + s for s in (0, 4, 8)])


def _kmeans(path):
    return KMeansMachine(3, checkpoint=path, max_iter=3, convergence_threshold=None)


def _check_state(state):
    if state is not None:
        assert 0 <= state.step <= 3 and len(state.history) == state.step
        assert all(np.isfinite(v).all() for v in state.arrays.values())
        assert np.isfinite(state.history).all()


@pytest.mark.parametrize("kind", ["checkpoint", "statistics"])
def test_mutated_training_files_are_read_or_refused_cleanly(kind, data, tmp_path):
    seed_path = tmp_path / "seed.h5"
    if kind == "checkpoint":
        _kmeans(seed_path).fit(data)
        inputs = TrainingInput(data)  # (fingerprinted once)

        def load(path):
            state = Checkpoint(path, _kmeans(path), inputs).load(max_step=3, shapes={})
            _check_state(state)
            return state
    else:
        stats = GMMMachine(2, max_fitting_steps=2).fit(data).transform(np.array_split(data, 4))
        write_statistics(seed_path, "key", stats)

        def load(path):
            read = read_statistics(path, "key", 4, (2, 2))
            assert read is None or all(np.isfinite(s.sum_pxx).all() and (s.n >= 0).all()
                                       for s in read)
            return read
    seed = seed_path.read_bytes()
    r = random.Random(f"20261207 {kind}")
    path = tmp_path / "case.h5"
    outcomes = {"read": 0, "refused": 0}
    with guarded() as read:
        path.write_bytes(seed)
        assert read(load, path, seed, ()) is not None  # the seed is valid
        for _ in range(N):
            content = mutate_bytes(r, seed)
            path.write_bytes(content)
            result = read(load, path, content, ValueError)
            outcomes["read" if result is not None else "refused"] += 1
    assert min(outcomes.values()) > N // 20, outcomes
