"""Small valid model files of every kind emkit saves, for the untrusted-file tests and the fuzzer.

Parameters are set directly (no training) so that building all of them takes milliseconds.
"""

from __future__ import annotations

import numpy as np

from emkit import GMMMachine, GMMStats, ISVMachine, IVectorMachine, JFAMachine
from emkit.experiment import EnrolledModels, IVectorBackend
from emkit.kmeans import KMeansMachine
from emkit.plda import PLDA
from emkit.wccn import WCCN
from emkit.whitening import Whitening

C, D, R = 3, 2, 2  # Gaussians, features, subspace ranks


def ubm() -> GMMMachine:
    rng = np.random.default_rng(0)
    m = GMMMachine(C, update_variances=True, update_weights=True)
    m.means = rng.normal(size=(C, D))
    m.variances = rng.uniform(0.5, 2.0, size=(C, D))
    m.weights = np.array([0.2, 0.3, 0.5])
    return m


def stats() -> GMMStats:
    rng = np.random.default_rng(1)
    return ubm().acc_stats(rng.normal(size=(20, D)))


def isv(cls=ISVMachine) -> ISVMachine:
    rng = np.random.default_rng(2)
    m = cls(R, ubm=ubm()) if cls is ISVMachine else cls(R, R, ubm=ubm())
    m.U = rng.normal(size=(C * D, R))
    if cls is JFAMachine:
        m.V = rng.normal(size=(C * D, R))
    m.D = rng.uniform(0.1, 1.0, size=C * D)
    return m


def ivector() -> IVectorMachine:
    rng = np.random.default_rng(3)
    m = IVectorMachine(ubm(), dim_t=R)
    m.dim_c, m.dim_d = C, D
    m.T = rng.normal(size=(C, D, R))
    m.sigma = rng.uniform(0.5, 1.5, size=(C, D))
    return m


def plda(model="simplified") -> PLDA:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, R)) + np.repeat(rng.normal(size=(4, R)) * 3, 10, axis=0)
    return PLDA(model=model, dim_f=1, dim_g=1 if model == "full" else None,
                max_iterations=2).fit(X, np.repeat(np.arange(4), 10))


def backend() -> IVectorBackend:
    rng = np.random.default_rng(5)
    b = IVectorBackend(ivector())
    w = rng.normal(size=(30, R))
    b.whitening = Whitening().fit(w)
    b.wccn = WCCN().fit(w, np.repeat(np.arange(3), 10))
    b.plda = plda()
    return b


def enrolled() -> EnrolledModels:
    rng = np.random.default_rng(6)
    return EnrolledModels("gmm-map", ["alice", "bob"], {"means": rng.normal(size=(2, C, D))},
                          ubm(), {"relevance_factor": 4.0})


def kmeans() -> KMeansMachine:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(30, D)) + np.repeat(rng.normal(size=(C, D)) * 4, 10, axis=0)
    return KMeansMachine(C, max_iter=2, convergence_threshold=None).fit(X)


BUILDERS = {
    "gmm": ubm, "stats": stats, "isv": isv, "jfa": lambda: isv(JFAMachine), "ivector": ivector,
    "plda": plda, "plda_full": lambda: plda("full"), "backend": backend, "enrolled": enrolled,
    "kmeans": kmeans,
}

LOADERS = {
    "gmm": GMMMachine.from_hdf5, "stats": GMMStats.from_hdf5, "isv": ISVMachine.from_hdf5,
    "jfa": JFAMachine.from_hdf5, "ivector": IVectorMachine.from_hdf5, "plda": PLDA.from_hdf5,
    "plda_full": PLDA.from_hdf5, "backend": IVectorBackend.from_hdf5,
    "enrolled": EnrolledModels.from_hdf5, "kmeans": KMeansMachine.from_hdf5,
}


def write_all(directory) -> dict:
    """Save one file of each kind into ``directory``; return {kind: path}."""
    paths = {}
    for kind, build in BUILDERS.items():
        paths[kind] = directory / f"{kind}.h5"
        build().save(paths[kind])
    return paths
