"""The namespace-generic i-vector kernels (``_kernels/ivector_xp.py``) against the numpy CPU
kernels (``_kernels/ivector.py``): on numpy itself, on ``array-api-strict`` arrays (a numpy-only
call fails there) and on PyTorch CPU tensors where torch is installed.

Tolerances: float64 within 1e-12 of the result's largest magnitude; float32 inputs within 1e-5.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from emkit._backend._device import to_numpy
from emkit._kernels import ivector as kiv
from emkit._kernels import ivector_xp as kx

xs = pytest.importorskip("array_api_strict")


def _maker(name, dtype):
    if name == "numpy":
        return lambda a: np.asarray(a, dtype=dtype), np.ndarray
    if name == "strict":
        xdtype = xs.float64 if dtype == np.float64 else xs.float32
        return lambda a: xs.asarray(np.asarray(a, dtype=np.float64), dtype=xdtype), \
            type(xs.asarray(0.0))
    torch = pytest.importorskip("torch")
    return lambda a: torch.from_numpy(np.asarray(a, dtype=dtype)), torch.Tensor


@pytest.fixture(params=["numpy", "strict", "torch"])
def ns(request):
    return request.param


def _problem(seed=0, S=9, C=4, D=3, R=5):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(C, D))
    sigma = rng.uniform(0.5, 2.0, size=(C, D))
    T = rng.normal(size=(C, D, R))
    n = rng.gamma(2.0, 3.0, size=(S, C))
    n[0, 1] = 0.0
    F = n[:, :, None] * (means + 0.5 * rng.normal(size=(S, C, D)))
    Sx = n[:, :, None] * (means**2 + rng.uniform(0.5, 2.0, size=(S, C, D)))
    return means, sigma, T, n, F, Sx


def _close(expected, got, array_type, tol):
    assert isinstance(got, array_type), f"expected {array_type.__name__}, got {type(got).__name__}"
    g = to_numpy(got)
    assert g.shape == np.shape(expected)
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-300)
    np.testing.assert_allclose(g, expected, rtol=0, atol=tol * scale)


def _numpy_estep(means, sigma, T, n, F, Sx):
    C, D, R = T.shape
    pre = kiv.Precomputed.from_parameters(means, T, sigma)
    acc = SimpleNamespace(nij_sigma_wij2=np.zeros((C, R, R)), fnorm_sigma_wij=np.zeros((C, D, R)),
                          snormij=np.zeros((C, D)), nij=np.zeros(C))
    ll, count = kiv.accumulate(n, F, Sx, pre, acc)
    return pre, acc, ll, count


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_estep_and_projection_match_numpy_kernels(ns, dtype, tol):
    means, sigma, T, n, F, Sx = _problem()
    pre, acc, ll, count = _numpy_estep(means, sigma, T, n, F, Sx)
    make, kind = _maker(ns, dtype)
    xpre = kx.constants(make(means), make(T), make(sigma))
    fnorm = kx.centre(make(n), make(F), make(means))
    _close(F - n[:, :, None] * means, fnorm, kind, tol)
    # two batches into one accumulator (as the estimators do)
    xacc = kx.Accumulators.zeros(xpre)
    kx.accumulate(make(n[:4]), fnorm[:4, ...], xpre, xacc)
    kx.accumulate(make(n[4:]), fnorm[4:, ...], xpre, xacc)
    assert xacc.n_sessions == count == len(n)
    _close(acc.nij_sigma_wij2, xacc.nij_sigma_wij2, kind, tol)
    _close(acc.fnorm_sigma_wij, xacc.fnorm_sigma_wij, kind, tol)
    _close(acc.nij, xacc.nij, kind, tol)
    got_ll = kx.finish_log_likelihood(xacc, make(acc.snormij), xpre)
    assert abs(got_ll - ll) <= tol * abs(ll)
    fnorm64 = F - n[:, :, None] * means
    _close(kiv.project(n, fnorm64, pre), kx.project(make(n), fnorm, xpre), kind, tol)
    _close(kiv.project(n[:1], fnorm64[:1], pre), kx.project(make(n[:1]), fnorm[:1, ...], xpre), kind,
           tol)


@pytest.mark.parametrize("update_sigma", [True, False])
def test_m_step_matches_numpy_kernel(ns, update_sigma):
    means, sigma, T, n, F, Sx = _problem(1)
    n[:, 2] = 0.0  # Gaussian 2 never reached: T_2 = 0 and sigma_2 kept
    _, acc, _, _ = _numpy_estep(means, sigma, T, n, F, Sx)
    args = (acc.nij_sigma_wij2, acc.fnorm_sigma_wij, acc.snormij, acc.nij, sigma)
    T_np, s_np = kiv.m_step(*args, update_sigma, 0.3)
    make, kind = _maker(ns, np.float64)
    T_x, s_x = kx.m_step(*[make(a) for a in args], update_sigma, 0.3)
    _close(T_np, T_x, kind, 1e-12)
    _close(s_np, s_x, kind, 1e-12)
    assert np.all(to_numpy(T_x)[2] == 0)
    if update_sigma:
        np.testing.assert_array_equal(to_numpy(s_x)[2], sigma[2])
        assert to_numpy(s_x).min() >= 0.3


def test_not_positive_definite_names_the_statistics(ns):
    means, sigma, T, n, F, _ = _problem(2)
    make, _ = _maker(ns, np.float64)
    pre = kx.constants(make(means), make(T), make(sigma))
    n[0] = -50.0
    with pytest.raises(ValueError, match="zeroth-order statistics"):
        kx.project(make(n), kx.centre(make(n), make(F), make(means)), pre)
