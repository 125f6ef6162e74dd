"""The ISV/JFA fixture cases made by the reference (tests/data/factor_analysis/make_fixtures.py):
their UBM, statistics and machines."""

import numpy as np
from _parity import DATA

from emkit.factor_analysis import ISVMachine, JFAMachine
from emkit.gmm import GMMMachine
from emkit.stats import GMMStats

FIXTURES = DATA / "factor_analysis"
CASES = ["small", "tiny", "rank1", "medium"]
TOL = 1e-10


# -- helpers shared with the other factor-analysis test modules ---------------------------------


def load_case(name):
    return dict(np.load(FIXTURES / f"case_{name}.npz"))


def make_ubm(d):
    ubm = GMMMachine(d["means"].shape[0])
    ubm.means, ubm.variances, ubm.weights = (
        d["means"].copy(),
        d["variances"].copy(),
        d["weights"].copy(),
    )
    return ubm


def make_stats(d, prefix=""):
    out = []
    n, f, ff, t, ll = (d[prefix + k] for k in ("n", "sum_px", "sum_pxx", "t", "ll"))
    for i in range(len(t)):
        s = GMMStats(*f.shape[1:])
        s.init_fields(float(ll[i]), int(t[i]), n[i].copy(), f[i].copy(), ff[i].copy())
        out.append(s)
    return out


def machine(kind, d, init="rs", **kwargs):
    r_U, r_V, em_iterations, random_state = (int(v) for v in d["params"])
    common = dict(
        em_iterations=em_iterations,
        relevance_factor=float(d["relevance"]),
        random_state=random_state,
        ubm=make_ubm(d),
    )
    common.update(kwargs)
    m = ISVMachine(r_U, **common) if kind == "isv" else JFAMachine(r_U, r_V, **common)
    if init == "explicit":
        p = f"{kind}_explicit_"
        m.U, m.D = d[p + "U_init"], d[p + "D_init"]
        if kind == "jfa":
            m.V = d[p + "V_init"]
    return m


def trained(kind, d, init="rs", **kwargs):
    return machine(kind, d, init, **kwargs).fit(make_stats(d), d["labels"])


# -- the tests ----------------------------------------------------------------------------------


def synthetic_problem(seed, n_sessions, n_gaussians=4, n_features=2):
    """A random UBM and ``n_sessions`` statistics near its means (no fixture: for tests of what
    training logs, not of its numbers)."""
    rng = np.random.default_rng(seed)
    ubm = GMMMachine(n_gaussians)
    ubm.means = rng.normal(0.0, 2.0, (n_gaussians, n_features))
    ubm.variances = rng.uniform(0.5, 2.0, (n_gaussians, n_features))
    ubm.weights = np.full(n_gaussians, 1.0 / n_gaussians)
    stats = []
    for _ in range(n_sessions):
        n = rng.gamma(2.0, 10.0, n_gaussians)
        s = GMMStats(n_gaussians, n_features)
        shifted = ubm.means + rng.normal(0, 0.5, n_features)
        s.init_fields(0.0, float(n.sum()), n, n[:, None] * shifted,
                      n[:, None] * (ubm.means**2 + 1.0))
        stats.append(s)
    return ubm, stats
