"""The i-vector fixture sets made by the reference (tests/data/ivector/): UBM, configuration,
training and test statistics."""

import numpy as np
from _parity import DATA

from emkit.gmm import GMMMachine
from emkit.stats import GMMStats

FIXTURES = np.load(DATA / "ivector" / "ivector.npz")
SETS = ["small", "nosigma", "wide"]
TOL = 1e-10


def _stats(prefix):
    f = FIXTURES
    out = []
    for n, px, pxx, t, ll in zip(f[prefix + "_n"], f[prefix + "_sum_px"], f[prefix + "_sum_pxx"],
                                 f[prefix + "_t"], f[prefix + "_log_likelihood"]):
        s = GMMStats(*px.shape)
        s.init_fields(float(ll), int(t), n.copy(), px.copy(), pxx.copy())
        out.append(s)
    return out


def load_set(name):
    f = FIXTURES
    C, D, R, iters, update_sigma, seed = (int(v) for v in f[name + "_config"])
    ubm = GMMMachine(C)
    ubm.means = f[name + "_ubm_means"].copy()
    ubm.variances = f[name + "_ubm_variances"].copy()
    ubm.weights = f[name + "_ubm_weights"].copy()
    cfg = dict(dim_t=R, max_iterations=iters, update_sigma=bool(update_sigma))
    return ubm, cfg, seed, _stats(name + "_train"), _stats(name + "_test")


def small_ubm_and_stats(n_sessions=10):
    """A UBM of 4 Gaussians in 3 dimensions and the statistics of ``n_sessions`` sessions of 30
    random frames (for tests of how inputs are checked, not of numbers)."""
    rng = np.random.default_rng(0)
    ubm = GMMMachine(4)
    ubm.means = rng.normal(size=(4, 3))
    ubm.variances = np.full((4, 3), 1.5)
    ubm.weights = np.full(4, 0.25)
    return ubm, ubm.transform([rng.normal(size=(30, 3)) for _ in range(n_sessions)])
