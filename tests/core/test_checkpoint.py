"""Resumable training: a run killed with SIGKILL and started again ends as an uninterrupted run."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from emkit import GMMMachine, ISVMachine, IVectorMachine, JFAMachine, KMeansMachine

CHILD = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    import emkit._checkpoint as ck
    import emkit._gmm_estep as gmm  # the GMM E-step calls map_reduce_finite there
    from emkit import GMMMachine, ISVMachine, IVectorMachine, JFAMachine, KMeansMachine

    kind, path, kill_after, where = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    X = np.load(sys.argv[5])
    if where == "after-save":          # killed right after the `kill_after`-th save
        original = ck.Checkpoint.save
        saves = []
        def save(self, step, *args, **kw):
            original(self, step, *args, **kw)
            saves.append(step)
            if len(saves) == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
        ck.Checkpoint.save = save
    else:                               # killed in the middle of an E-step
        original = gmm.map_reduce_finite
        calls = []
        def mapper(*args, **kw):
            calls.append(1)
            if len(calls) == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kw)
        gmm.map_reduce_finite = mapper
    if kind == "gmm":
        GMMMachine(4, update_variances=True, update_weights=True, max_fitting_steps=12,
                   convergence_threshold=None, checkpoint=path).fit(X)
    elif kind == "ivector":
        from emkit import IVectorMachine
        ubm = GMMMachine(4, max_fitting_steps=5).fit(X)
        IVectorMachine(ubm, dim_t=3, max_iterations=12, random_state=1, checkpoint=path).fit(
            ubm.transform(np.array_split(X, 40)))
    elif kind in ("isv", "jfa"):
        from emkit import ISVMachine, JFAMachine
        ubm = GMMMachine(4, max_fitting_steps=5).fit(X)
        stats = ubm.transform(np.array_split(X, 40))
        labels = np.arange(40) % 5
        if kind == "isv":
            ISVMachine(2, em_iterations=12, ubm=ubm, checkpoint=path).fit(stats, labels)
        else:
            JFAMachine(2, 2, em_iterations=4, ubm=ubm, checkpoint=path).fit(stats, labels)
    else:
        KMeansMachine(4, max_iter=12, convergence_threshold=None, checkpoint=path).fit(X)
""")


def _data():
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(size=(400, 3)) + s for s in (0, 3, 6, 9)])


def _make(kind, path):
    if kind == "isv":
        return ISVMachine(2, em_iterations=12, ubm=GMMMachine(4, max_fitting_steps=5).fit(_data()),
                          checkpoint=path)
    if kind == "jfa":
        return JFAMachine(2, 2, em_iterations=4, ubm=GMMMachine(4, max_fitting_steps=5).fit(_data()),
                          checkpoint=path)
    if kind == "ivector":
        return IVectorMachine(GMMMachine(4, max_fitting_steps=5).fit(_data()), dim_t=3, max_iterations=12,
                              random_state=1, checkpoint=path)
    if kind == "gmm":
        return GMMMachine(4, update_variances=True, update_weights=True, max_fitting_steps=12,
                          convergence_threshold=None, checkpoint=path)
    return KMeansMachine(4, max_iter=12, convergence_threshold=None, checkpoint=path)


# "after-save", k: killed after the k-th checkpoint write (the first is written before iteration 1;
# JFA writes 6 per phase with 4 iterations: k = 9 is in the U phase, k = 15 in the D phase)
@pytest.mark.parametrize("kind, where, kill_after", [("gmm", "after-save", 6), ("gmm", "mid-iteration", 4),
                                                      ("kmeans", "after-save", 4), ("ivector", "after-save", 5),
                                                      ("isv", "after-save", 6), ("jfa", "after-save", 3),
                                                      ("jfa", "after-save", 9), ("jfa", "after-save", 15)])
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
        if kind in ("isv", "jfa"):
            return machine.fit(machine.ubm.transform(np.array_split(X, 40)), np.arange(40) % 5)
        return machine.fit(X)

    resumed = fit(_make(kind, ckpt))
    straight = fit(_make(kind, None))
    if kind in ("isv", "jfa"):
        for name in ("U", "D") + (("V",) if kind == "jfa" else ()):
            np.testing.assert_array_equal(getattr(resumed, name), getattr(straight, name))
        return
    assert resumed.n_iter_ == straight.n_iter_ == 12
    if kind == "gmm":
        # strict: the shapes too (a scalar floor came back 1-D from a checkpoint: the UBM files differed)
        for name in ("means", "variances", "weights", "variance_thresholds"):
            np.testing.assert_array_equal(getattr(resumed, name), getattr(straight, name), strict=True)
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
