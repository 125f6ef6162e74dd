"""ISV/JFA training: blocks of sessions, posterior chunks, Gaussian slices, threads and the two
posterior paths (LAPACK per session, stacked factors) give the same numbers within 1e-10; the
session kernels match loops over sessions, in numpy and in ``array-api-strict``."""

import numpy as np
import pytest
from _parity import assert_parity

from emkit._kernels import factor_analysis as kfa
from emkit._kernels import factor_analysis_sessions as sessions
from emkit.factor_analysis import ISVMachine, JFAMachine
from emkit.factor_analysis import _estep, _mstep
from emkit.factor_analysis import _training as training
from emkit.gmm import GMMMachine
from emkit.stats import GMMStats

C, D, R_U, R_V, S, K = 6, 3, 26, 4, 40, 7  # r_U >= LAPACK_RANK: the per-session LAPACK path


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(3)
    ubm = GMMMachine(C)
    ubm.means = rng.normal(0.0, 2.0, (C, D))
    ubm.variances = rng.uniform(0.5, 2.0, (C, D))
    ubm.weights = np.full(C, 1.0 / C)
    labels = rng.integers(0, K, S)  # not grouped by class: the training set sorts them
    stats = []
    for _ in range(S):
        n = rng.gamma(2.0, 10.0, C)
        F = n[:, None] * (ubm.means + rng.normal(0.0, 0.5, D))
        s = GMMStats(C, D)
        s.init_fields(0.0, float(n.sum()), n, F, n[:, None] * (ubm.means**2 + 1.0))
        stats.append(s)
    return ubm, stats, labels


def _fit(kind, problem):
    ubm, stats, labels = problem
    if kind == "isv":
        m = ISVMachine(R_U, em_iterations=2, ubm=ubm, random_state=0)
    else:
        m = JFAMachine(R_U, R_V, em_iterations=2, ubm=ubm, random_state=0)
    m.fit(stats, labels)
    return [m.U, m.D] + ([m.V] if kind == "jfa" else [])


@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_blocks_chunks_slices_and_paths_give_the_same_numbers(kind, problem, monkeypatch):
    reference = _fit(kind, problem)
    variants = [
        {(training, "BLOCK_ELEMENTS"): 7 * C * D},  # blocks of at most 7 sessions
        {(training, "BLOCK_ELEMENTS"): 7 * C * D, (training, "SESSION_THREADS"): 2},
        {(_estep, "POSTERIOR_BYTES"): 1},  # posterior stacks of one session at a time
        {(_mstep, "SLICES"): 1},  # the U update in one slice of Gaussians
        {(sessions, "LAPACK_RANK"): 10**6},  # stacked factors instead of LAPACK per session
    ]
    for variant in variants:
        with monkeypatch.context() as patch:
            for (module, name), value in variant.items():
                patch.setattr(module, name, value)
            for a, b in zip(reference, _fit(kind, problem)):
                assert_parity(b, a, tol=1e-10, err_msg=str(variant))


def test_blocks_use_chunks_of_bounded_size():
    assert _estep.posterior_rows(100) * 8 * 3 * 100 * 100 <= _estep.POSTERIOR_BYTES
    assert _estep.posterior_rows(10**5) == 1


def _spd_stack(rng, B, r):
    A = rng.standard_normal((B, r, r + 3))
    return A @ A.swapaxes(1, 2) / r


@pytest.mark.parametrize("r", [3, 30])  # stacked and LAPACK paths
def test_session_moments_match_explicit_inverses(r):
    rng = np.random.default_rng(r)
    B = 9
    P = _spd_stack(rng, B, r)
    packed, _ = kfa._symmetric_indices(r)
    terms = P.reshape(B, r * r)[:, packed]
    b = rng.standard_normal((B, r))
    cov = np.linalg.inv(P + np.eye(r))
    x_ref = np.einsum("sij,sj->si", cov, b)
    ww_ref = (cov + x_ref[:, :, None] * x_ref[:, None, :]).reshape(B, r * r)[:, packed]
    x, ww = kfa.session_moments(terms, b)
    assert_parity(x, x_ref, tol=1e-12)
    assert_parity(ww, ww_ref, tol=1e-12)
    assert_parity(kfa.session_moments(terms, b, second=False)[0], x_ref, tol=1e-12)
    assert kfa.session_moments(terms, b, second=False)[1] is None
    assert_parity(kfa.unpack_symmetric(ww, r), cov + x_ref[:, :, None] * x_ref[:, None, :],
                  tol=1e-12)
    bad = terms.copy()
    bad[0, 0] = -10.0  # not positive definite
    with pytest.raises(np.linalg.LinAlgError):
        kfa.session_moments(bad, b)


def test_segment_sums_and_offsets_match_loops():
    rng = np.random.default_rng(1)
    local = np.array([0, 0, 1, 2, 2, 2, 3])
    n, x = rng.random((7, 4)), rng.standard_normal((7, 5))
    Q, classes = rng.standard_normal((6, 4, 5)), np.array([5, 0, 3, 2])
    starts = kfa.segment_starts(local)
    np.testing.assert_array_equal(starts, [0, 2, 3, 6, 7])
    G = kfa.segment_class_sums(starts, n, x)
    for j in range(4):
        rows = local == j
        assert_parity(G[j], n[rows].T @ x[rows], tol=1e-14)
    expected = np.stack([n[s] @ Q[classes[local[s]]] for s in range(7)])
    assert_parity(kfa.segment_offset_terms(starts, n, Q, classes), expected, tol=1e-14)
    assert kfa.segment_starts(np.array([], dtype=int)).tolist() == [0]


def test_per_gaussian_lapack_solves_match_the_stacked_update():
    rng = np.random.default_rng(2)
    A1, A2 = _spd_stack(rng, 5, 30), rng.standard_normal((5 * 4, 30))
    expected = np.stack([np.linalg.solve(A1[c], A2.reshape(5, 4, 30)[c].T).T for c in range(5)])
    W = kfa.update_subspace(A1, A2)
    assert W.flags.c_contiguous
    assert_parity(W, expected.reshape(-1, 30), tol=1e-10)


def test_session_kernels_on_array_api_strict():
    xs = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(4)
    r, B = 4, 6
    packed, _ = kfa._symmetric_indices(r)
    terms = _spd_stack(rng, B, r).reshape(B, r * r)[:, packed]
    b = rng.standard_normal((B, r))
    for second in (True, False):
        for got, want in zip(kfa.session_moments(xs.asarray(terms), xs.asarray(b), second=second),
                             kfa.session_moments(terms, b, second=second)):
            assert (got is None) == (want is None)
            if want is not None:
                assert isinstance(got, type(xs.asarray(0.0)))
                assert_parity(np.asarray(got), want, tol=1e-12)
    local = np.array([0, 1, 1, 2])
    n, x, Q = rng.random((4, 3)), rng.standard_normal((4, r)), rng.standard_normal((3, 3, r))
    starts = kfa.segment_starts(local)
    assert_parity(np.asarray(kfa.segment_class_sums(starts, xs.asarray(n), xs.asarray(x))),
                  kfa.segment_class_sums(starts, n, x), tol=1e-14)
    assert_parity(np.asarray(kfa.segment_offset_terms(starts, xs.asarray(n), xs.asarray(Q),
                                                      np.array([2, 0, 1]))),
                  kfa.segment_offset_terms(starts, n, Q, np.array([2, 0, 1])), tol=1e-14)
    assert_parity(np.asarray(kfa.unpack_symmetric(xs.asarray(terms), r)),
                  kfa.unpack_symmetric(terms, r), tol=0)
