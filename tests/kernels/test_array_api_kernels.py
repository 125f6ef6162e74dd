"""The namespace-generic kernels on ``array-api-strict`` arrays (and PyTorch CPU tensors where
torch is installed): same results as numpy.

``array-api-strict`` implements the array API standard and nothing else, so a numpy-only call
(``np.*`` on the inputs, ``out=``, fancy in-place writes, ``scipy``) in a ported kernel either
fails here or returns a numpy array, which the type check below rejects.  Tolerance: 1e-12 of
the result's largest magnitude.
"""

from __future__ import annotations

import numpy as np
import pytest

xs = pytest.importorskip("array_api_strict")
StrictArray = type(xs.asarray(0.0))

from emkit._kernels import factor_analysis as kfa  # noqa: E402
from emkit._kernels import plda as kp  # noqa: E402


class Namespace:
    """How to make arrays of a namespace from numpy and check that results stay in it."""

    def __init__(self, name):
        self.name = name
        if name == "strict":
            self.make, self.array_type = xs.asarray, StrictArray
        else:  # PyTorch on CPU tensors (where installed): the torch dispatch of _xp.py
            torch = pytest.importorskip("torch")
            self.make, self.array_type = torch.from_numpy, torch.Tensor

    def host(self, a):
        assert isinstance(a, self.array_type), (
            f"expected a {self.name} array, got {type(a).__name__}")
        from emkit._backend._device import to_numpy

        return to_numpy(a, dtype=None)


NS = Namespace("strict")


@pytest.fixture(params=["strict", "torch"], autouse=True)
def namespace(request):
    """Every test runs on array-api-strict, and on PyTorch CPU tensors when torch is installed."""
    global NS
    NS = Namespace(request.param)
    yield NS
    NS = Namespace("strict")


def strict(a):
    return NS.make(a) if isinstance(a, np.ndarray) else a


def host(a):
    return NS.host(a)


def assert_same(expected, got, tol=1e-12):
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected)
        for e, g in zip(expected, got):
            assert_same(e, g, tol)
        return
    g = host(got)
    assert g.shape == expected.shape
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-300)
    np.testing.assert_allclose(g, expected, rtol=0, atol=tol * scale)


def both(fn, *args, **kwargs):
    """Run ``fn`` on numpy arguments and on their strict copies; compare."""
    expected = fn(*args, **kwargs)
    got = fn(*[strict(a) for a in args], **{k: strict(v) for k, v in kwargs.items()})
    assert_same(expected, got)
    return expected


@pytest.fixture(scope="module")
def fa():
    rng = np.random.default_rng(1)
    C, D, r, S, K = 4, 3, 5, 40, 6
    W = rng.normal(size=(C * D, r))
    var = rng.uniform(0.5, 2.0, size=(C, D))
    n = rng.uniform(0.0, 20.0, size=(S, C))
    F = rng.normal(size=(S, C * D)) * 5
    codes = rng.integers(0, K, S)
    return dict(C=C, D=D, r=r, S=S, K=K, W=W, var=var, n=n, F=F, codes=codes, rng=rng)


def test_namespace_of_numpy_is_numpy_itself():
    from emkit._kernels import _xp

    numpy_is_the_standard = hasattr(np, "cumulative_sum")  # numpy >= 2.1: no wrapper
    assert _xp.namespace(np.ones(2), None, 1.0) is (np if numpy_is_the_standard else _xp.NUMPY)
    assert _xp.is_numpy(_xp.namespace(np.ones(2)))


def test_subspace_and_posterior_kernels(fa):
    W, var, n, F = fa["W"], fa["var"], fa["n"], fa["F"]
    wprod = both(kfa.subspace_products, W, var)
    both(kfa.symmetric_weighted_sum, n, wprod)
    both(kfa.symmetric_weighted_sum, n[:3], wprod)  # few rows: numpy takes another path
    both(kfa.posterior_precision, n, wprod)
    W_over_var = W / var.reshape(-1, 1)
    mean, cov = both(kfa.latent_posterior, n, F, W_over_var, wprod)
    both(kfa.posterior_mean_only, n, F, W_over_var, wprod)
    both(kfa.posterior_covariance, n, wprod)
    both(kfa.second_moments, n, cov, mean)
    both(kfa.second_moments, n[:, :2], cov, mean)
    both(kfa.accumulate_subspace, n, F, mean, cov)
    both(kfa.spd_solve, cov, mean[:, :, None])
    both(kfa.spd_inverse, cov)


def test_update_subspace_keeps_unreached_gaussians(fa):
    W, var, n, F = fa["W"], fa["var"], fa["n"].copy(), fa["F"]
    n[:, 1] = 0.0  # Gaussian 1 never reached: A1[1] == 0
    wprod = kfa.subspace_products(W, var)
    mean, cov = kfa.latent_posterior(n, F, W / var.reshape(-1, 1), wprod)
    A1, A2 = kfa.accumulate_subspace(n, F, mean, cov)
    new = both(kfa.update_subspace, A1, A2, W)
    np.testing.assert_array_equal(new[3:6], W[3:6])
    both(kfa.update_subspace, A1, A2)


def test_update_subspace_not_positive_definite(fa):
    r = fa["r"]
    A1 = np.tile(-np.eye(r), (fa["C"], 1, 1))
    A2 = np.ones((fa["C"] * fa["D"], r))
    with pytest.raises(FloatingPointError, match="not positive definite"):
        kfa.update_subspace(strict(A1), strict(A2))


def test_projection_kernels(fa):
    C, W, var, n, F = fa["C"], fa["W"], fa["var"], fa["n"], fa["F"]
    wprod = kfa.subspace_products(W, var)
    W_over_var = W / var.reshape(-1, 1)
    W_mean = both(kfa.weighted_blocks, F[0] / var.ravel(), W, C)
    prods = both(kfa.projection_products, W_mean, wprod)
    both(kfa.centred_projections, n, F, W_over_var, prods)
    both(kfa.centred_projections, n[0], F[0], W_over_var, prods)  # one probe (vectors)
    both(kfa.centred_projections, n[:2], F[:2], W_over_var, prods)
    both(kfa.project_rows, F[:3], W)


def test_class_kernels(fa):
    C, K, W, n, F, codes, rng = fa["C"], fa["K"], fa["W"], fa["n"], fa["F"], fa["codes"], fa["rng"]
    r = fa["r"]
    G = rng.normal(size=(K, C, r))
    both(kfa.block_products, W, G[0])
    both(kfa.per_gaussian_products, W, G, C)
    gm = both(kfa.per_gaussian_products, W, G, C, gaussian_major=True)
    offsets = rng.normal(size=(K, F.shape[1]))
    both(kfa.gaussian_major, offsets, C)
    both(kfa.offset_outer_products, offsets, G)
    both(kfa.offset_outer_products, gm, G)
    both(kfa.block_projections, offsets, W, C)
    both(kfa.group_sum, codes, F, K)
    both(kfa.group_sum, codes, n[:, :, None] * np.ones(3), K)
    local = rng.integers(0, 3, len(codes))
    mean = rng.normal(size=(len(codes), r))
    both(kfa.slot_class_sums, local, n, mean, 3)
    both(kfa.class_weighted_sums, codes, n, mean, K)
    Q = rng.normal(size=(K, C, r))
    expected = kfa.class_offset_terms(kfa.class_weights(codes, n, K), Q)
    weights = kfa.class_weights(strict(codes), strict(n), K)
    assert_same(expected, kfa.class_offset_terms(weights, strict(Q)))
    assert_same(kfa.class_weighted_sums(codes, n, mean, K),
                kfa.class_weighted_sums(strict(codes), strict(n), strict(mean), K, weights))


def test_diagonal_kernels(fa):
    rng = fa["rng"]
    K, CD = 6, fa["C"] * fa["D"]
    N_sv = rng.uniform(0, 30, size=(K, CD))
    D = rng.uniform(0.1, 1.0, CD)
    var = rng.uniform(0.5, 2.0, CD)
    centred = rng.normal(size=(K, CD))
    both(kfa.diagonal_posterior, N_sv, centred, D, var)
    both(kfa.diagonal_gain, N_sv, D, var)


def basis_both(F, W):
    """:func:`scoring_basis` both ways; eigenvectors are defined up to sign (LAPACK drivers
    differ), so columns are compared with the sign of their largest entry made positive."""
    proj, lam = kp.scoring_basis(F, W)
    got_proj, got_lam = kp.scoring_basis(strict(F), strict(W))
    assert_same(lam, got_lam)
    g = host(got_proj)
    idx = np.argmax(np.abs(proj), axis=0)
    cols = np.arange(proj.shape[1])
    g = g * (np.sign(g[idx, cols]) * np.sign(proj[idx, cols]))
    np.testing.assert_allclose(g, proj, rtol=0, atol=1e-12 * np.abs(proj).max())
    return proj, lam


@pytest.mark.parametrize("counts", ["ones", "few", "many"])
def test_plda_scoring(counts):
    rng = np.random.default_rng(2)
    D, r, M, P = 10, 6, 25, 30
    F = rng.normal(size=(D, r))
    A = rng.normal(size=(D, D))
    W = A @ A.T + D * np.eye(D)
    proj, lam = basis_both(F, W)
    nE = {"ones": np.ones(M), "few": rng.integers(1, 4, M) * 1.0,
          "many": rng.integers(1, 40, M) * 1.0}[counts]
    nP = rng.integers(1, 3, P) * 1.0
    uE = rng.normal(size=(M, len(lam))) * nE[:, None]
    uP = rng.normal(size=(P, len(lam))) * nP[:, None]
    expected = kp.llr_matrix(uE, nE, uP, nP, lam, np.empty((M, P)), 7)
    got = kp.llr_matrix(*map(strict, (uE, nE, uP, nP, lam)), np.empty((M, P)), 7)
    assert isinstance(got, np.ndarray)  # scores come back to the host
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_plda_scoring_drops_null_directions():
    rng = np.random.default_rng(3)
    F = np.zeros((5, 3))
    F[:, 0] = rng.normal(size=5)  # rank one
    proj, lam = basis_both(F, np.eye(5))
    assert proj.shape == (5, 1)


def test_plda_cholesky_error_names_matrix():
    with pytest.raises(kp.NotPositiveDefiniteError, match="within-class covariance W"):
        kp.scoring_basis(strict(np.ones((3, 2))), strict(-np.eye(3)))


@pytest.mark.parametrize("backend", ["numpy", "array-api"])
def test_plda_scoring_reports_each_written_block_once(backend):
    """``written(rows, cols)`` (PLDA's per-block finiteness check) sees every score exactly once,
    right after it is written, on both paths (probes of two counts: blocks of columns)."""
    rng = np.random.default_rng(3)
    M, P, r = 11, 9, 4
    lam = rng.uniform(0.5, 2.0, r)
    nE, nP = np.ones(M), rng.integers(1, 3, P) * 1.0
    uE, uP = rng.normal(size=(M, r)), rng.normal(size=(P, r)) * nP[:, None]
    out, seen = np.full((M, P), np.nan), np.zeros((M, P), int)

    def written(rows, cols):
        cols = slice(None) if cols is None else cols
        assert not np.isnan(out[rows, cols]).any()  # (already written)
        seen[rows, cols] += 1

    args = (uE, nE, uP, nP, lam)
    args = args if backend == "numpy" else tuple(map(strict, args))
    kp.llr_matrix(*args, out, 3, written)
    assert (seen == 1).all()
