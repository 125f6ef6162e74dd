"""GMMStats: additive values (statistics of two halves add up to those of the whole)."""

import numpy as np
import pytest
from _parity import assert_parity
from hypothesis import given, settings
from hypothesis import strategies as st

from emkit import GMMMachine, GMMStats


def _machine(C, D, seed):
    rng = np.random.default_rng(seed)
    m = GMMMachine(C)
    m.means = rng.normal(size=(C, D)) * 2
    m.variances = rng.uniform(0.5, 2.0, size=(C, D))
    m.weights = rng.dirichlet(np.ones(C))
    return m


@settings(max_examples=25, deadline=None)
@given(C=st.integers(1, 5), D=st.integers(1, 4), N=st.integers(2, 60), split=st.floats(0, 1),
       seed=st.integers(0, 2**16))
def test_statistics_of_two_halves_add_up_to_the_whole(C, D, N, split, seed):
    machine = _machine(C, D, seed)
    X = np.random.default_rng(seed + 1).normal(size=(N, D)) * 2
    k = int(round(split * N))
    whole = machine.acc_stats(X)
    halves = machine.acc_stats(X[:k]) + machine.acc_stats(X[k:]) if 0 < k < N else whole
    assert halves.t == whole.t == N
    np.testing.assert_allclose(halves.log_likelihood, whole.log_likelihood, rtol=1e-12)
    assert_parity(halves.n, whole.n, tol=1e-12)
    assert_parity(halves.sum_px, whole.sum_px, tol=1e-11)
    assert_parity(halves.sum_pxx, whole.sum_pxx, tol=1e-11)
    # and the statistics of the per-frame pieces add up too
    per_frame = sum(machine.transform(X))
    assert_parity(per_frame.n, whole.n, tol=1e-11)


def test_empty_data_gives_zero_statistics():
    stats = _machine(3, 2, 0).acc_stats(np.empty((0, 2)))
    assert stats.t == 0 and stats.log_likelihood == 0
    assert np.all(stats.n == 0) and stats.sum_px.shape == (3, 2)


def test_add_iadd_eq_and_shape_mismatch():
    a = GMMStats(2, 3)
    a.init_fields(1.5, 4, np.array([1.0, 3.0]), np.ones((2, 3)), 2 * np.ones((2, 3)))
    b = a.copy()
    c = a + b
    assert c.t == 8 and c.log_likelihood == 3.0 and np.all(c.sum_pxx == 4)
    assert a == b and not (a == c)
    n_before = a.n
    a += b
    assert a.n is n_before  # in place, as the reference
    assert a == c and a.is_similar_to(c)
    with pytest.raises(ValueError, match="shape mismatch"):
        _ = a + GMMStats(3, 3)
    assert a.shape == (2, 3) and a.nbytes == 8 * (2 + 6 + 6)
    a.resize(4, 1)
    assert a.shape == (4, 1) and a.t == 0 and a.n.shape == (4,)
    a.reset()
    assert a.log_likelihood == 0.0


def test_sum_of_list_does_not_mutate_its_items():
    m = _machine(2, 2, 3)
    parts = m.transform([np.ones((3, 2)), np.zeros((2, 2))])
    before = [p.copy() for p in parts]
    from emkit.gmm import m_step

    m_step(parts, m)
    assert all(p == q for p, q in zip(parts, before))
