"""ISV/JFA training internals of the GIL-free LAPACK path: per-session posteriors read packed rows
in place, the subspace update solves packed A1 rows, the constants of an unchanged subspace are
reused (and only then), and passes that reuse their buffers give the same numbers."""

import pickle

import numpy as np
import pytest
from _parity import assert_parity

from emkit._kernels import factor_analysis as kfa
from emkit._kernels import factor_analysis_lapack as lapack
from emkit.factor_analysis import ISVMachine, JFAMachine
from emkit.factor_analysis import _training as training
from emkit.gmm import GMMMachine
from emkit.stats import GMMStats


def _spd_stack(rng, B, r):
    A = rng.standard_normal((B, r, r + 3))
    return A @ A.swapaxes(1, 2) / r


def test_session_rows_read_packed_rows_of_a_wider_array():
    rng = np.random.default_rng(0)
    B, r = 5, 30
    packed, _ = kfa._symmetric_indices(r)
    P = _spd_stack(rng, B, r)
    wide = np.concatenate([rng.standard_normal((B, 7)), P.reshape(B, r * r)[:, packed]], axis=1)
    b = rng.standard_normal((B, r))
    cov = np.linalg.inv(P + np.eye(r))
    x_ref = np.einsum("sij,sj->si", cov, b)
    x, ww = np.empty((B, r)), np.empty((B, len(packed)))
    lapack.session_rows(wide[:, 7:], b, x, ww, np.empty((r, r)))  # a strided view, no copy
    assert_parity(x, x_ref, tol=1e-12)
    assert_parity(ww, (cov + x_ref[:, :, None] * x_ref[:, None, :]).reshape(B, -1)[:, packed],
                  tol=1e-12)
    x_only = np.empty((B, r))
    lapack.session_rows(wide[:, 7:], b, x_only, None, np.empty((r, r)))
    assert_parity(x_only, x_ref, tol=1e-12)
    bad = wide[:, 7:].copy()
    bad[3, 0] = -50.0
    with pytest.raises(np.linalg.LinAlgError, match="session 3"):
        lapack.session_rows(bad, b, x, ww, np.empty((r, r)))


def test_subspace_update_from_packed_rows_matches_full_matrices():
    rng = np.random.default_rng(1)
    C, D, r = 4, 3, 30
    A1 = _spd_stack(rng, C, r)
    A1[2] = 0.0  # a Gaussian no statistic reached: keeps its previous block
    A2 = rng.standard_normal((C * D, r))
    A2[2 * D : 3 * D] = 0.0
    previous = rng.standard_normal((C * D, r))
    packed, _ = kfa._symmetric_indices(r)
    full = kfa.update_subspace(A1, A2, previous)
    from_packed = kfa.update_subspace(A1.reshape(C, -1)[:, packed], A2, previous)
    assert_parity(from_packed, full, tol=1e-10)
    assert_parity(full[2 * D : 3 * D], previous[2 * D : 3 * D], tol=0)
    expected = np.linalg.solve(A1[0], A2[:D].T).T
    assert_parity(full[:D], expected, tol=1e-10)
    with pytest.raises(FloatingPointError, match="not positive definite"):
        kfa.update_subspace(-A1.reshape(C, -1)[:, packed], A2, previous)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(3)
    C, D = 6, 3
    ubm = GMMMachine(C)
    ubm.means = rng.normal(0.0, 2.0, (C, D))
    ubm.variances = rng.uniform(0.5, 2.0, (C, D))
    ubm.weights = np.full(C, 1.0 / C)
    stats = []
    for _ in range(30):
        n = rng.gamma(2.0, 10.0, C)
        s = GMMStats(C, D)
        s.init_fields(0.0, float(n.sum()), n, n[:, None] * (ubm.means + rng.normal(0, 0.5, D)),
                      n[:, None] * (ubm.means**2 + 1.0))
        stats.append(s)
    return ubm, stats, rng.integers(0, 5, 30)


def test_constants_reuse_the_products_of_an_unchanged_subspace_only(problem):
    ubm, stats, labels = problem
    m = JFAMachine(26, 4, em_iterations=1, ubm=ubm, random_state=0).fit(stats, labels)
    first = m._constants()
    m.V = m.V * 2.0  # a new V: the U products are those of the previous constants
    second = m._constants()
    assert second is not first and second.uprod is first.uprod
    assert second.vprod is not first.vprod
    assert_parity(second.vprod, 4.0 * first.vprod, tol=1e-12)
    ubm.means = ubm.means + 0.5  # the UBM changed: nothing is reused
    try:
        third = m._constants()
        assert third.n_products is not second.n_products and third.vprod is not second.vprod
        assert not np.allclose(third.W_mean, second.W_mean)
    finally:
        ubm.means = ubm.means - 0.5
    assert "_previous_constants" not in pickle.loads(pickle.dumps(m)).__dict__


def test_passes_reusing_their_buffers_give_the_same_numbers(problem):
    ubm, stats, labels = problem
    m = ISVMachine(26, em_iterations=1, ubm=ubm, random_state=0).fit(stats, labels)
    codes, classes = training.encode_labels(training.label_list(labels))
    data = training.in_memory(stats, codes, classes, (6, 3), 2, 7)  # several blocks
    params = training.session_params(m._constants(), len(classes))
    first = training.session_pass(data, params)
    kept = [a.copy() for a in (first.A1, first.A2F, first.G, first.x)]
    assert data.scratch  # buffers kept for the next pass
    second = training.session_pass(data, params)
    for a, b, c in zip(kept, (first.A1, first.A2F, first.G, first.x),
                       (second.A1, second.A2F, second.G, second.x)):
        np.testing.assert_array_equal(a, b)  # the first result is not overwritten
        np.testing.assert_array_equal(a, c)
