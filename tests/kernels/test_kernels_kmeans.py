"""The k-means kernels against a naive oracle (scipy's cdist, explicit loops)."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from emkit._kernels import kmeans as kk


def _problem(seed=0, N=300, D=5, K=9):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, D)) * 2 + 50
    X[N // 2 :: 7] = X[N // 3]  # repeated rows: equal distances, ties by position
    centroids = X[rng.choice(N // 4, K, replace=False)] + 0.1
    return X, centroids


@pytest.mark.parametrize("block_rows", [1, 7, 64, 10_000])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lloyd_statistics_match_the_naive_loop_for_any_block_size(block_rows, dtype):
    X, centroids = _problem()
    K = len(centroids)
    coef = kk.CentroidCoefficients.from_centroids(centroids, dtype=dtype)
    d = cdist(X, centroids, "sqeuclidean")
    labels = d.argmin(1)
    min_dist = d[np.arange(len(X)), labels]
    r = kk.lloyd_statistics(X, coef, block_rows, squares=True, n_far=4)
    tol = 1e-10 if dtype == np.float64 else 1e-5  # float32 rounds the centred rows
    c = coef.shift + coef.centred
    np.testing.assert_array_equal(r["counts"], np.bincount(labels, minlength=K))
    dev = X - c[labels]
    sums = np.array([dev[labels == k].sum(0) for k in range(K)])
    sq = np.array([(dev[labels == k] ** 2).sum(0) for k in range(K)])
    np.testing.assert_allclose(r["sums"], sums, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(r["sq_sums"], sq, rtol=tol)
    np.testing.assert_allclose(r["sum_min_dist"], min_dist.sum(), rtol=tol)
    far = np.lexsort((np.arange(len(X)), -min_dist))[:4]  # largest first, ties by position
    np.testing.assert_allclose(r["far_dists"], min_dist[far], rtol=tol)
    np.testing.assert_array_equal(r["far_points"], X[far])
    got_labels, got_dist = kk.assign(X, coef, block_rows)
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_allclose(got_dist, min_dist, rtol=tol)


@pytest.mark.parametrize("m", [1, 5, 40])
@pytest.mark.parametrize("block", [1, 13, 500])
def test_farthest_rows_are_the_global_top_m_with_ties_to_the_earlier_row(m, block):
    """Candidates gathered block by block and reduced now and then give the rows of one global
    sort: farthest first, equal distances (many here) in row order."""
    rng = np.random.default_rng(m + block)
    dists = rng.integers(0, 30, 1000).astype(float)  # ties everywhere
    X = rng.normal(size=(1000, 3))
    far = kk.FarthestRows(m)
    for start in range(0, len(dists), block):
        far.add(start, dists[start : start + block])
    points, got = far.result(X)
    expected = np.lexsort((np.arange(len(dists)), -dists))[:m]
    np.testing.assert_array_equal(got, dists[expected])
    np.testing.assert_array_equal(points, X[expected])
    few = kk.FarthestRows(10)  # fewer rows offered than asked for: all of them, in order
    few.add(0, np.array([1.0, 3.0, 1.0]))
    np.testing.assert_array_equal(few.result(X)[1], [3.0, 1.0, 1.0])
    np.testing.assert_array_equal(few.result(X)[0], X[[1, 0, 2]])


def test_cluster_sums_add_rows_per_label():
    rng = np.random.default_rng(1)
    X, labels = rng.normal(size=(50, 3)), rng.integers(0, 6, 50)
    labels[labels == 4] = 5  # an empty cluster
    sums, squares = kk.cluster_sums(X, labels, 7, squares=True)
    for k in range(7):
        np.testing.assert_allclose(sums[k], X[labels == k].sum(0), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(squares[k], (X[labels == k] ** 2).sum(0), rtol=1e-13, atol=1e-15)
    assert not sums[4].any()


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e25])
def test_float32_screening_finds_the_float64_nearest_centroid(scale):
    """Near-ties that float32 cannot resolve, data far from the origin and scores beyond float32's
    range: the screened labels are those of the float64 product, row for row."""
    rng = np.random.default_rng(2)
    K, D = 40, 7
    centroids = rng.normal(size=(K, D)) * 3
    centroids[1] = centroids[0] + 0.01 * rng.normal(size=D)
    mid = (centroids[0] + centroids[1]) / 2  # equidistant from two centroids ...
    X = np.concatenate([rng.normal(size=(400, D)), mid + 1e-9 * rng.normal(size=(200, D)),  # ... or nearly
                        centroids[5] + 1e-7 * rng.normal(size=(50, D))])
    X, centroids = X * scale + 1e4 * scale, centroids * scale + 1e4 * scale
    coef = kk.CentroidCoefficients.from_centroids(centroids)
    augmented = kk._augmented(coef)
    xa = np.concatenate([X - coef.shift, np.ones((len(X), 1))], axis=1)
    expected = np.argmin(xa @ augmented, axis=1)
    assert kk._screen(coef, augmented, 64) is not None
    labels, _ = kk.assign(X, coef, 64)
    np.testing.assert_array_equal(labels, expected)
    assert len(np.unique(labels[400:600])) == 2


def test_rows_rescored_in_float64_get_the_deviations_of_their_float64_centroid():
    """Rows whose float32 nearest centroid is wrong: labels, distances and sums are those of the
    float64 argmin (the deviations of the rescored rows are computed again)."""
    rng = np.random.default_rng(3)
    K, D = 16, 6
    centroids = rng.normal(size=(K, D))
    centroids[1] = centroids[0] + 1e-4 * rng.normal(size=D)
    X = np.concatenate([rng.normal(size=(300, D)),
                        (centroids[0] + centroids[1]) / 2 + 1e-6 * rng.normal(size=(300, D))])
    coef = kk.CentroidCoefficients.from_centroids(centroids)
    augmented = kk._augmented(coef)
    xa = np.concatenate([X - coef.shift, np.ones((len(X), 1))], axis=1)
    expected = np.argmin(xa @ augmented, axis=1)
    float32 = np.argmin(xa.astype(np.float32) @ augmented.astype(np.float32), axis=1)
    assert (float32 != expected).any()  # the float32 product alone gets some rows wrong
    labels, dist = kk.assign(X, coef, 128)
    np.testing.assert_array_equal(labels, expected)
    dev = (X - coef.shift) - coef.centred[expected]
    np.testing.assert_array_equal(dist, np.einsum("ij,ij->i", dev, dev))
    r = kk.lloyd_statistics(X, coef, 128)
    sums = np.array([dev[expected == k].sum(0) for k in range(K)])
    np.testing.assert_array_equal(r["counts"], np.bincount(expected, minlength=K))
    np.testing.assert_allclose(r["sums"], sums, rtol=1e-12, atol=1e-15)


def test_a_reused_one_hot_gives_the_sums_of_a_new_one():
    rng = np.random.default_rng(4)
    X, first, second = rng.normal(size=(40, 3)), rng.integers(0, 5, 40), rng.integers(0, 5, 40)
    onehot = kk._one_hot(first, 5)
    reused = kk._one_hot(second, 5, onehot)
    assert reused is onehot
    np.testing.assert_array_equal(kk.cluster_sums(X, second, 5, onehot=reused)[0], kk.cluster_sums(X, second, 5)[0])
    other = kk._one_hot(second[:7], 5, onehot)  # another number of rows: a new one
    assert other is not onehot and other.shape == (5, 7)
