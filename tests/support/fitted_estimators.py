"""One small fitted instance of every emkit estimator, for tests of what all of them share
(pickles, assigned parameters...): built fresh at each call, so a test module may change them."""

import numpy as np

from emkit import (PLDA, WCCN, GMMMachine, IVectorMachine, ISVMachine, JFAMachine, KMeansMachine,
                   Whitening)
from emkit.calibration import LinearCalibration
from emkit.lda import LDA


def small_fitted_estimators() -> dict:
    """``{name: fitted estimator}``: k-means, GMM, ISV, JFA, i-vector, WCCN, Whitening, LDA, PLDA
    and calibration, each trained for an iteration or three on 60 frames of 3 features."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = np.repeat([0, 1, 2], 20)
    ubm = GMMMachine(2, max_fitting_steps=3).fit(X)
    stats = [ubm.acc_stats(X[i * 10:(i + 1) * 10]) for i in range(6)]
    sessions = [0, 0, 1, 1, 2, 2]
    return {
        "kmeans": KMeansMachine(2, max_iter=3).fit(X),
        "gmm": ubm,
        "isv": ISVMachine(1, ubm=ubm, em_iterations=1).fit(stats, sessions),
        "jfa": JFAMachine(1, 1, ubm=ubm, em_iterations=1).fit(stats, sessions),
        "ivector": IVectorMachine(ubm, 2, max_iterations=1, random_state=0).fit(stats),
        "wccn": WCCN().fit(X, y),
        "whitening": Whitening().fit(X),
        "lda": LDA(1).fit(X, y),
        "plda": PLDA(dim_f=1, dim_g=1, max_iterations=1).fit(X, y),
        "calibration": LinearCalibration().fit(X[:, :2], y == 0),
    }
