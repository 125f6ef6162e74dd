"""Small training problems of every trainer, for the reproducibility tests
(tests/core/test_reproducibility.py, docs/reproducibility.md).

``fit(name, ...)`` trains one trainer and returns its fitted parameters as one float64 vector,
so that runs can be compared bit for bit (``digest``) or by :func:`_parity.max_rel_diff`.
"""

import hashlib

import numpy as np

from emkit import GMMMachine, ISVMachine, IVectorMachine, JFAMachine, KMeansMachine, PLDA
from emkit.evaluation.calibration import LinearCalibration
from emkit.lda import LDA
from emkit.wccn import WCCN
from emkit.whitening import Whitening

#: The trainers that draw random numbers (``random_state``; PLDA only with init_method="random").
SEEDED = ("kmeans", "gmm-ml", "isv", "jfa", "ivector", "plda-random")
#: The trainers trained on sessions (GMM statistics) with labels, or on vectors with labels.
ON_SESSIONS = ("isv", "jfa", "ivector")
ON_VECTORS = ("plda-scatter", "plda-random", "lda", "wccn", "whitening", "calibration")
ALL = ("kmeans", "gmm-ml", "gmm-map") + ON_SESSIONS + ON_VECTORS

N_SESSIONS = 40
N_VECTORS = 80


def frames(seed: int = 0, n: int = 1500) -> np.ndarray:
    """(n, 4) frames of 3 separated blobs."""
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(size=(n // 3, 4)) + 3 * s for s in range(3)])


def ubm() -> GMMMachine:
    return GMMMachine(3, update_variances=True, update_weights=True, max_fitting_steps=4,
                      convergence_threshold=None, random_state=1).fit(frames())


def sessions(machine: GMMMachine):
    """(statistics of N_SESSIONS sessions, their labels: 5 speakers)."""
    stats = machine.transform(np.array_split(frames(2, 6000), N_SESSIONS))
    return stats, np.arange(N_SESSIONS) % 5


def vectors():
    """((N_VECTORS, 5) vectors of 8 classes, their labels)."""
    rng = np.random.default_rng(3)
    y = np.arange(N_VECTORS) % 8
    return rng.normal(size=(8, 5))[y] * 2 + rng.normal(size=(N_VECTORS, 5)), y


def _flat(*arrays) -> np.ndarray:
    return np.concatenate([np.ravel(a) for a in arrays])


def fit(name: str, random_state=0, X=None, order=None, **params) -> np.ndarray:
    """The fitted parameters of trainer ``name``, one vector.

    ``X`` replaces the frames of k-means and GMM (dask arrays too); ``order`` permutes the
    sessions or vectors of the others (``X`` may then be a dask bag of the sessions, or of
    (label, statistics) pairs for ISV/JFA); ``params`` go to the constructor.
    """
    if name == "kmeans":
        machine = KMeansMachine(3, max_iter=6, convergence_threshold=None,
                                random_state=random_state, **params)
        return _flat(machine.fit(frames() if X is None else X).centroids_)
    if name == "gmm-ml":
        machine = GMMMachine(3, update_variances=True, update_weights=True, max_fitting_steps=4,
                             convergence_threshold=None, random_state=random_state, **params)
        machine.fit(frames() if X is None else X)
        return _flat(machine.means, machine.variances, machine.weights)
    if name == "gmm-map":
        machine = GMMMachine(3, trainer="map", ubm=ubm(), max_fitting_steps=3,
                             convergence_threshold=None, **params)
        return _flat(machine.fit(frames(4, 600) if X is None else X).means)
    if name in ON_SESSIONS:
        return _fit_on_sessions(name, random_state, X, order, params)
    return _fit_on_vectors(name, random_state, order, params)


def _fit_on_sessions(name, random_state, X, order, params):
    machine = ubm()
    stats, y = sessions(machine)
    if order is not None:
        stats, y = [stats[i] for i in order], y[order]
    if name == "ivector":
        t = IVectorMachine(machine, dim_t=3, max_iterations=3, random_state=random_state, **params)
        t.fit(stats if X is None else X)
        return _flat(t.T, t.sigma)
    if name == "isv":
        fa = ISVMachine(2, em_iterations=2, ubm=machine, random_state=random_state, **params)
    else:
        fa = JFAMachine(2, 2, em_iterations=2, ubm=machine, random_state=random_state, **params)
    fa.fit(stats, y) if X is None else fa.fit(X)
    return _flat(fa.U, fa.D) if name == "isv" else _flat(fa.U, fa.V, fa.D)


def _fit_on_vectors(name, random_state, order, params):
    X, y = vectors()
    probes = X[:5]  # fixed rows, whatever ``order``
    if order is not None:
        X, y = X[order], y[order]
    if name.startswith("plda"):
        plda = PLDA(model="full", dim_f=2, dim_g=2, init_method=name[len("plda-"):],
                    random_state=random_state, **params).fit(X, y)
        return _flat(plda.F_, plda.G_, plda.sigma_)
    if name == "lda":
        return _flat(LDA(3, **params).fit(X, y).transform(probes))
    if name == "wccn":
        return _flat(WCCN(**params).fit(X, y).transform(probes))
    if name == "whitening":
        return _flat(Whitening(**params).fit(X).transform(probes))
    if name == "calibration":
        calibration = LinearCalibration(**params).fit(X[:, 0], y % 2 == 0)
        return _flat(calibration.coef_, calibration.intercept_)
    raise KeyError(name)


def digest(values: np.ndarray) -> str:
    """The SHA-1 of the bits of a float64 vector."""
    return hashlib.sha1(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()
