"""IVectorMachine used as code written for bob.learn.em 3.3.1 uses it: numpy object arrays of
GMMStats, clone + refit, and statistics far from the origin."""

import numpy as np
import pytest
from sklearn.base import clone
from ivector_cases import load_set

from emkit.ivector import IVectorMachine, e_step


@pytest.fixture(scope="module")
def small():
    ubm, cfg, seed, train, test = load_set("small")
    return ubm, cfg, seed, train, test


def test_object_arrays_of_stats(small):
    ubm, cfg, seed, train, test = small
    fitted = IVectorMachine(ubm, random_state=seed, **cfg).fit(train)
    from_array = IVectorMachine(ubm, random_state=seed, **cfg).fit(np.array(train))
    np.testing.assert_array_equal(from_array.T, fitted.T)
    np.testing.assert_array_equal(from_array.sigma, fitted.sigma)
    np.testing.assert_array_equal(fitted.transform(np.array(test)), fitted.transform(test))
    np.testing.assert_array_equal(fitted.project(np.array(test[0])), fitted.project(test[0]))
    a, b = e_step(fitted, np.array(train)), e_step(fitted, train)
    np.testing.assert_array_equal(a.nij_sigma_wij2, b.nij_sigma_wij2)


def test_clone_and_refit(small):
    ubm, cfg, seed, train, _ = small
    fitted = IVectorMachine(ubm, random_state=seed, **cfg).fit(train)
    np.testing.assert_array_equal(clone(fitted).fit(train).T, fitted.T)


# -- statistics far from the origin ----------------------------------------------------------------


def _offset_problem(offset, seed=0, C=3, D=2, S=40):
    """A UBM and statistics at ``offset`` from the origin, and the same data translated back
    exactly (the translated sums computed in exact rational arithmetic from the offset ones)."""
    from fractions import Fraction

    from emkit.gmm import GMMMachine
    from emkit.stats import GMMStats

    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 2.0, (C, D))
    means = base + offset
    ubm = GMMMachine(C)
    ubm.means, ubm.variances, ubm.weights = means, rng.uniform(0.5, 2.0, (C, D)), np.full(C, 1 / C)
    shifted = GMMMachine(C)
    shifted.means = means - offset  # exact (Sterbenz)
    shifted.variances, shifted.weights = ubm.variances, ubm.weights
    far, near = [], []
    o = Fraction(offset)
    for _ in range(S):
        frames = means[rng.integers(0, C, 30)] + rng.normal(size=(30, D)) + rng.normal(size=D)
        s = ubm.acc_stats(frames)
        t = GMMStats(C, D)
        n = [Fraction(v) for v in s.n]
        F = [[Fraction(v) for v in row] for row in s.sum_px]
        Fc = [[float(F[c][d] - n[c] * o) for d in range(D)] for c in range(C)]
        Sc = [[float(Fraction(s.sum_pxx[c, d]) - 2 * o * F[c][d] + n[c] * o * o) for d in range(D)]
              for c in range(C)]
        t.init_fields(s.log_likelihood, s.t, s.n.copy(), np.array(Fc), np.array(Sc))
        far.append(s)
        near.append(t)
    return ubm, shifted, far, near


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("offset", [1e4, 1e6])
def test_far_from_the_origin_sigma_and_ivectors(offset):
    ubm, shifted, far, near = _offset_problem(offset)
    kw = dict(dim_t=2, max_iterations=3, random_state=0)
    a, b = IVectorMachine(ubm, **kw).fit(far), IVectorMachine(shifted, **kw).fit(near)
    assert _rel(a.sigma, b.sigma) <= 1e-6
    assert _rel(a.T, b.T) <= 1e-6
    assert _rel(a.transform(far), b.transform(near)) <= 1e-6
    assert abs(a.log_likelihood_[-1] - b.log_likelihood_[-1]) <= 1e-6 * abs(b.log_likelihood_[-1])


@pytest.mark.parametrize("offset", [1e8])
def test_far_from_the_origin_first_order(offset):
    # sum_pxx cannot hold unit variances at 1e8 and beyond (x**2 has 16 digits): sigma fixed.
    # F - n m is not compensated: its error is that of F itself (eps * offset relative to a unit
    # deviation, 1e-4 at 1e12), for which no computation from the GMMStats can make up.
    ubm, shifted, far, near = _offset_problem(offset)
    kw = dict(dim_t=2, max_iterations=3, random_state=0, update_sigma=False)
    a, b = IVectorMachine(ubm, **kw).fit(far), IVectorMachine(shifted, **kw).fit(near)
    assert _rel(a.T, b.T) <= 1e-6
    assert _rel(a.transform(far), b.transform(near)) <= 1e-6
    assert _rel(a.project(far[0]), b.project(near[0])) <= 1e-6
