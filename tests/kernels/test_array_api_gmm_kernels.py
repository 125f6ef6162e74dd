"""The namespace-generic GMM, k-means, MAP and linear-scoring kernels (``_kernels/gmm_xp.py``,
``kmeans_xp.py``, ``scoring_xp.py``) against the numpy kernels, on numpy itself, on
``array-api-strict`` arrays and on PyTorch CPU tensors (where torch is installed): float64
within 1e-12 of the result's largest magnitude, float32 within 1e-5."""

from __future__ import annotations

import numpy as np
import pytest

xs = pytest.importorskip("array_api_strict")

from _float32_cases import tight_clusters, variance_error  # noqa: E402

from emkit import GMMMachine, GMMStats, linear_scoring  # noqa: E402
from emkit._backend._device import to_numpy  # noqa: E402
from emkit._gmm_mstep import map_gmm_m_step  # noqa: E402
from emkit._kernels import gmm as kg  # noqa: E402
from emkit._kernels import gmm_xp  # noqa: E402
from emkit._kernels import kmeans as kk  # noqa: E402
from emkit._kernels import kmeans_xp  # noqa: E402
from emkit._kernels import scoring_xp  # noqa: E402


class NS:
    def __init__(self, name):
        self.name = name
        if name == "strict":
            self.make, self.type = xs.asarray, type(xs.asarray(0.0))
        elif name == "numpy":
            self.make, self.type = np.asarray, np.ndarray
        else:
            torch = pytest.importorskip("torch")
            self.make, self.type = (lambda a: torch.from_numpy(np.array(a))), torch.Tensor

    def put(self, a, dtype=None):
        a = np.asarray(a)
        return self.make(a if dtype is None or a.dtype.kind != "f" else a.astype(dtype))

    def get(self, a):
        if self.name == "numpy" and isinstance(a, np.generic):
            a = np.asarray(a)  # numpy's reductions return scalars
        assert isinstance(a, self.type), f"expected a {self.name} array, got {type(a).__name__}"
        return to_numpy(a, dtype=np.float64)


@pytest.fixture(params=["numpy", "strict", "torch"])
def ns(request):
    return NS(request.param)


def close(expected, got, tol=1e-12):
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-300)
    np.testing.assert_allclose(got, expected, rtol=0, atol=tol * scale)


@pytest.fixture(scope="module")
def gmm():
    rng = np.random.default_rng(3)
    C, D, N = 6, 4, 333
    means = rng.normal(size=(C, D)) * 3 + 10.0
    variances = rng.uniform(0.5, 2.0, size=(C, D))
    weights = rng.dirichlet(np.ones(C))
    X = means[rng.integers(0, C, N)] + rng.normal(size=(N, D))
    return dict(X=X, means=means, variances=variances, log_weights=np.log(weights))


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_gmm_statistics_and_likelihoods(ns, gmm, dtype, tol):
    coef = kg.DiagGMMCoefficients.from_parameters(gmm["means"], gmm["variances"],
                                                  gmm["log_weights"], np.dtype(dtype))
    shift, c = gmm_xp.coefficients(*(ns.put(gmm[k]) for k in ("means", "variances", "log_weights")),
                                   dtype=ns.put(np.zeros(1, dtype)).dtype)
    close(coef.shift, ns.get(shift))  # (float32: on the grid of gmm.grid_shift)
    close(coef.coef, ns.get(c), tol)
    X = ns.put(gmm["X"], dtype)
    expected = kg.accumulate_shifted_statistics(gmm["X"], coef, 100, True)
    got = gmm_xp.accumulate_shifted_statistics(X, shift, c, 100, True)
    close(expected[0], ns.get(got[0]), tol)
    for e, g in zip(expected[1:], got[1:]):
        close(e, ns.get(g), tol)
        assert ns.get(g).dtype == np.float64
    e1 = kg.accumulate_shifted_statistics(gmm["X"], coef, 100, False)
    g1 = gmm_xp.accumulate_shifted_statistics(X, shift, c, 128, False)
    assert g1[3] is None
    close(e1[2], ns.get(g1[2]), tol)
    close(kg.log_likelihood(gmm["X"], coef, 50), ns.get(gmm_xp.log_likelihood(X, shift, c, 50)), tol)
    close(kg.log_weighted_likelihood(gmm["X"], coef, 50),
          ns.get(gmm_xp.log_weighted_likelihood(X, shift, c, 70)), tol)


@pytest.mark.parametrize("offset", [0.0, 100.0])
def test_gmm_float32_statistics_keep_the_variances_of_float64_as_numpy(ns, offset):
    """The device kernels' float32 statistics, about the shift on its grid and summed over 512
    rows at most in float32 too: variances within 4e-8 (1 + kappa) relative of float64."""
    worst = 0.0
    for seed in range(4):
        X, means, variances, weights = tight_clusters(seed)
        X, means = X + np.float32(offset), means + offset
        shift, c = gmm_xp.coefficients(ns.put(means), ns.put(variances), ns.put(np.log(weights)),
                                       dtype=ns.put(np.zeros(1, np.float32)).dtype)
        got = gmm_xp.accumulate_shifted_statistics(ns.put(X), shift, c, 8192, True)
        expected = kg.accumulate_shifted_statistics(
            X, kg.DiagGMMCoefficients.from_parameters(means, variances, np.log(weights)), 4096)
        worst = max(worst, variance_error([ns.get(a) for a in got[1:]], expected[1:], means, variances))
    assert worst < 4e-8


@pytest.mark.parametrize("dtype, far", [("float64", 1e160), ("float32", 3e19)])
def test_gmm_likelihoods_of_overflowing_frames_are_minus_inf_as_numpy(ns, gmm, dtype, far):
    """Frames whose squared distances overflow: -inf (the rounding of the exact value) in both
    likelihood functions, as the numpy kernels give, not NaN; the other rows are untouched."""
    X = gmm["X"][:5].copy()
    X[1, 0], X[3, 2] = far, -far
    coef = kg.DiagGMMCoefficients.from_parameters(gmm["means"], gmm["variances"],
                                                  gmm["log_weights"], np.dtype(dtype))
    shift, c = gmm_xp.coefficients(*(ns.put(gmm[k]) for k in ("means", "variances", "log_weights")),
                                   dtype=ns.put(np.zeros(1, dtype)).dtype)
    with np.errstate(over="ignore"):  # (the float32 copy of 1e160 is inf)
        Xd = ns.put(X, dtype)
    expected = kg.log_likelihood(X, coef)
    got = ns.get(gmm_xp.log_likelihood(Xd, shift, c))
    np.testing.assert_array_equal(got[[1, 3]], [-np.inf, -np.inf])
    np.testing.assert_array_equal(expected[[1, 3]], [-np.inf, -np.inf])
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(got[[0, 2, 4]], expected[[0, 2, 4]], rtol=tol)
    weighted = ns.get(gmm_xp.log_weighted_likelihood(Xd, shift, c))
    assert not np.isnan(weighted).any() and np.isneginf(weighted[[1, 3]]).any()
    np.testing.assert_array_equal(np.isneginf(weighted), np.isneginf(kg.log_weighted_likelihood(X, coef)))


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12)])
def test_gmm_collapsed_gaussians_use_the_exact_columns_as_numpy(ns, gmm, dtype, tol):
    """A Gaussian collapsed far from the shift (variances 1e-12): its log-likelihoods computed
    directly, as the numpy kernels do (the expanded square is off by whole nats there), from
    the host's ExactColumns and from device parameters alike.  (float64 only: float32 frames
    on a device are rounded before the direct formula, which the numpy kernels apply to the
    float64 frames, so there the two differ by about ``eps32 |x| / var``.)"""
    means, variances = gmm["means"].copy(), gmm["variances"].copy()
    means[2], variances[2] = gmm["X"][7], 1e-12
    X = gmm["X"][:40]
    coef = kg.DiagGMMCoefficients.from_parameters(means, variances, gmm["log_weights"], np.dtype(dtype))
    assert list(coef.exact.index) == [2]
    params = [ns.put(a) for a in (means, variances, gmm["log_weights"])]
    shift, c = gmm_xp.coefficients(*params, dtype=ns.put(np.zeros(1, dtype)).dtype)
    Xd = ns.put(X, dtype)
    from_host = gmm_xp.DeviceExactColumns.from_host(coef.exact, 6, ns.put)
    from_device = gmm_xp.exact_columns(*params)
    expected = kg.log_weighted_likelihood(X, coef)
    plain = ns.get(gmm_xp.log_weighted_likelihood(Xd, shift, c))
    assert abs(plain[7, 2] - expected[7, 2]) > 1e-3  # what the exact columns are for
    for exact in (from_host, from_device):
        close(expected, ns.get(gmm_xp.log_weighted_likelihood(Xd, shift, c, 16, exact)), tol)
        close(kg.log_likelihood(X, coef), ns.get(gmm_xp.log_likelihood(Xd, shift, c, 16, exact)), tol)
        e = kg.accumulate_shifted_statistics(X, coef, 16, True)
        g = gmm_xp.accumulate_shifted_statistics(Xd, shift, c, 16, True, exact)
        for a, b in zip(e, g):
            close(a, ns.get(b), tol)
    assert gmm_xp.exact_columns(*[ns.put(gmm[k]) for k in ("means", "variances", "log_weights")]) is None


def test_gmm_empty_input(ns, gmm):
    shift, c = gmm_xp.coefficients(*(ns.put(gmm[k]) for k in ("means", "variances", "log_weights")))
    empty = ns.put(np.zeros((0, 4)))
    ll, n, px, pxx = gmm_xp.accumulate_shifted_statistics(empty, shift, c)
    assert float(ns.get(ll)) == 0.0 and not ns.get(n).any() and not ns.get(pxx).any()
    assert ns.get(gmm_xp.log_likelihood(empty, shift, c)).shape == (0,)
    assert ns.get(gmm_xp.log_weighted_likelihood(empty, shift, c)).shape == (0, 6)


def test_device_block_rows():
    assert gmm_xp.device_block_rows(1024, 8) == 65536
    assert gmm_xp.device_block_rows(10**9, 8) == 1024


@pytest.fixture(scope="module")
def km():
    rng = np.random.default_rng(5)
    K, D, N = 7, 3, 401
    centroids = rng.normal(size=(K, D)) * 4 - 20.0
    X = centroids[rng.integers(0, K, N)] + rng.normal(size=(N, D))
    X[:3] = X[3]  # exact ties of distance for the far points: the earliest rows win
    return dict(X=X, centroids=centroids)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_kmeans_lloyd_statistics(ns, km, dtype, tol):
    K = km["centroids"].shape[0]
    coef = kk.CentroidCoefficients.from_centroids(km["centroids"], np.dtype(dtype))
    dev_coef = kmeans_xp.CentroidArrays.from_centroids(ns.put(km["centroids"]),
                                                       ns.put(np.zeros(1, dtype)).dtype)
    close(coef.minus_two_centred_t, ns.get(dev_coef.minus_two_centred_t), tol)
    expected = kk.lloyd_statistics(km["X"], coef, 64, squares=True, n_far=K)
    acc = kmeans_xp.lloyd_statistics(ns.put(km["X"]), dev_coef, 100, squares=True, n_far=K)
    np.testing.assert_array_equal(ns.get(acc.counts), expected["counts"])
    close(expected["sums"], ns.get(acc.sums), tol)
    close(expected["sq_sums"], ns.get(acc.sq_sums), tol)
    close(expected["sum_min_dist"], ns.get(acc.sum_min_dist), tol)
    close(expected["far_dists"], ns.get(acc.far_dists), tol)
    close(expected["far_points"], ns.get(acc.far_points), tol)
    assert acc.n_samples == km["X"].shape[0]
    labels, d2 = kk.assign(km["X"], coef, 64)
    got_labels, got_d2 = kmeans_xp.assign(ns.put(km["X"]), dev_coef, 50)
    np.testing.assert_array_equal(to_numpy(got_labels, dtype=None), labels)
    close(d2, ns.get(kmeans_xp.min_distances(ns.put(km["X"]), dev_coef, 1000)), tol)
    close(d2, ns.get(got_d2), tol)


def test_kmeans_coefficients_from_numpy(ns, km):
    coef = kk.CentroidCoefficients.from_centroids(km["centroids"])
    arrays = kmeans_xp.CentroidArrays.from_coefficients(coef, ns.put)
    assert arrays.n_clusters == 7
    close(coef.sq_norms, ns.get(arrays.sq_norms))
    labels, d2 = kmeans_xp.assign(ns.put(np.zeros((0, 3))), arrays)
    assert ns.get(d2).shape == (0,) and to_numpy(labels, dtype=None).shape == (0,)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(7)
    S, C, D, M = 5, 4, 3, 3
    ubm = GMMMachine(C)
    ubm.means = rng.normal(size=(C, D))
    ubm.variances = rng.uniform(0.5, 2.0, size=(C, D))
    ubm.weights = np.full(C, 1.0 / C)
    n = rng.uniform(0, 30, size=(S, C))
    n[0, 1] = 0.0  # a Gaussian without frames keeps the prior
    sum_px = rng.normal(size=(S, C, D)) * n[:, :, None] + 0.5
    sum_px[0, 1] = 0.0
    t = np.round(n.sum(axis=1))
    t[2] = 0.0
    stats = [GMMStats.from_arrays(n[i], sum_px[i], t=float(t[i])) for i in range(S)]
    models = rng.normal(size=(M, C, D))
    return dict(ubm=ubm, n=n, sum_px=sum_px, t=t, stats=stats, models=models)


@pytest.mark.parametrize("relevance, alpha", [(4.0, None), (None, 0.3)])
def test_map_adapt_means(ns, batch, relevance, alpha):
    ubm = batch["ubm"]
    expected = []
    for s in batch["stats"]:
        machine = GMMMachine(ubm.n_gaussians, trainer="map", ubm=ubm, map_relevance_factor=relevance,
                             map_alpha=0.5 if alpha is None else alpha)
        machine._copy_from_ubm()
        map_gmm_m_step(machine, s, reynolds_adaptation=relevance is not None,
                       relevance_factor=relevance, alpha=alpha)
        expected.append(machine.means)
    got = scoring_xp.map_adapt_means(ns.put(batch["n"]), ns.put(batch["sum_px"]), ns.put(ubm.means),
                                     relevance, alpha)
    close(np.array(expected), ns.get(got))
    np.testing.assert_array_equal(ns.get(got)[0, 1], ubm.means[1])


@pytest.mark.parametrize("fln", [False, True])
@pytest.mark.parametrize("offsets", [None, "array"])
def test_linear_scores(ns, batch, fln, offsets):
    ubm = batch["ubm"]
    off = None if offsets is None else np.random.default_rng(1).normal(size=(5, 4, 3)) * 0.1
    expected = linear_scoring(batch["models"], ubm, batch["stats"],
                              0 if off is None else off, frame_length_normalization=fln)
    got = scoring_xp.linear_scores(*(ns.put(a) for a in (batch["models"], ubm.means, ubm.variances,
                                                         batch["n"], batch["sum_px"], batch["t"])),
                                   offsets=None if off is None else ns.put(off),
                                   frame_length_normalization=fln)
    close(expected, ns.get(got))
    if fln:
        assert not ns.get(got)[:, 2].any()  # a probe of no frames scores 0


@pytest.mark.gpu
def test_kernels_on_a_cuda_device(gmm, km, batch):
    from emkit._backend import _device

    try:
        dev = _device.resolve_device("cuda")
    except _device.DeviceUnavailableError:
        pytest.skip("no CUDA device (PyTorch or CuPy with CUDA) on this machine")
    put = lambda a: _device.to_device(np.asarray(a), dev)  # noqa: E731
    coef = kg.DiagGMMCoefficients.from_parameters(gmm["means"], gmm["variances"], gmm["log_weights"])
    expected = kg.accumulate_shifted_statistics(gmm["X"], coef, 100, True)
    got = gmm_xp.accumulate_shifted_statistics(put(gmm["X"]), put(coef.shift), put(coef.coef), 100)
    for e, g in zip(expected, got):
        close(e, to_numpy(g))
    kcoef = kk.CentroidCoefficients.from_centroids(km["centroids"])
    ref = kk.lloyd_statistics(km["X"], kcoef, 64, squares=True, n_far=7)
    acc = kmeans_xp.lloyd_statistics(put(km["X"]), kmeans_xp.CentroidArrays.from_coefficients(
        kcoef, put), 100, squares=True, n_far=7)
    close(ref["sums"], to_numpy(acc.sums))
    close(ref["far_points"], to_numpy(acc.far_points))
    ubm = batch["ubm"]
    close(linear_scoring(batch["models"], ubm, batch["stats"]),
          to_numpy(scoring_xp.linear_scores(*(put(a) for a in (
              batch["models"], ubm.means, ubm.variances, batch["n"], batch["sum_px"], batch["t"])))))
