"""Resumable training: a run killed with SIGKILL and started again ends as an uninterrupted run."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from emkit import GMMMachine, IVectorMachine, KMeansMachine

CHILD = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    import emkit._checkpoint as ck
    import emkit.gmm as gmm
    from emkit import GMMMachine, IVectorMachine, KMeansMachine

    kind, path, kill_after, where = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    X = np.load(sys.argv[5])
    if where == "after-save":          # killed right after iteration `kill_after` was saved
        original = ck.Checkpoint.save
        def save(self, step, *args, **kw):
            original(self, step, *args, **kw)
            if step == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
        ck.Checkpoint.save = save
    else:                               # killed in the middle of an E-step
        original = gmm.map_reduce
        calls = []
        def mapper(*args, **kw):
            calls.append(1)
            if len(calls) == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kw)
        gmm.map_reduce = mapper
    if kind == "gmm":
        GMMMachine(4, update_variances=True, update_weights=True, max_fitting_steps=12,
                   convergence_threshold=None, checkpoint=path).fit(X)
    elif kind == "ivector":
        from emkit import IVectorMachine
        ubm = GMMMachine(4, max_fitting_steps=5).fit(X)
        IVectorMachine(ubm, dim_t=3, max_iterations=12, random_state=1, checkpoint=path).fit(
            ubm.transform(np.array_split(X, 40)))
    else:
        KMeansMachine(4, max_iter=12, convergence_threshold=None, checkpoint=path).fit(X)
""")


def _data():
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(size=(400, 3)) + s for s in (0, 3, 6, 9)])


def _make(kind, path):
    if kind == "ivector":
        return IVectorMachine(GMMMachine(4, max_fitting_steps=5).fit(_data()), dim_t=3, max_iterations=12,
                              random_state=1, checkpoint=path)
    if kind == "gmm":
        return GMMMachine(4, update_variances=True, update_weights=True, max_fitting_steps=12,
                          convergence_threshold=None, checkpoint=path)
    return KMeansMachine(4, max_iter=12, convergence_threshold=None, checkpoint=path)


@pytest.mark.parametrize("kind, where, kill_after", [("gmm", "after-save", 5), ("gmm", "mid-iteration", 4),
                                                      ("kmeans", "after-save", 3), ("ivector", "after-save", 4)])
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, kind, where, kill_after):
    X = _data()
    np.save(tmp_path / "X.npy", X)
    ckpt = tmp_path / "run.ckpt.h5"
    child = subprocess.run([sys.executable, "-c", CHILD, kind, str(ckpt), str(kill_after), where,
                            str(tmp_path / "X.npy")], capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert ckpt.exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # no half-written file left

    def fit(machine):
        if kind == "ivector":
            return machine.fit(machine.ubm.transform(np.array_split(X, 40)))
        return machine.fit(X)

    resumed = fit(_make(kind, ckpt))
    straight = fit(_make(kind, None))
    assert resumed.n_iter_ == straight.n_iter_ == 12
    if kind == "gmm":
        for name in ("means", "variances", "weights"):
            np.testing.assert_array_equal(getattr(resumed, name), getattr(straight, name))
    elif kind == "ivector":
        np.testing.assert_array_equal(resumed.T, straight.T)
        np.testing.assert_array_equal(resumed.sigma, straight.sigma)
    else:
        np.testing.assert_array_equal(resumed.centroids_, straight.centroids_)

    # a finished checkpoint returns the final state without training again
    again = fit(_make(kind, ckpt))
    assert again.n_iter_ == 12


def test_checkpoint_of_another_run_is_refused(tmp_path):
    X = _data()
    ckpt = tmp_path / "c.h5"
    GMMMachine(4, max_fitting_steps=2, checkpoint=ckpt).fit(X)
    with pytest.raises(ValueError, match="another training run"):
        GMMMachine(3, max_fitting_steps=2, checkpoint=ckpt).fit(X)
    with pytest.raises(ValueError, match="another training run"):
        GMMMachine(4, max_fitting_steps=2, checkpoint=ckpt).fit(X[:-1])
