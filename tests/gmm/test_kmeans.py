"""KMeansMachine behaviour: initialisations, empty clusters, numpy/dask equivalence, outputs."""

import re

import dask.array as da
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from emkit import KMeansMachine
from emkit._kmeans_init import row_uniforms
from emkit.kmeans import get_centroids_distance
from _parity import assert_parity, max_rel_diff


def _blobs(seed=0, n=900):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6, size=(5, 2))
    return centres[rng.integers(0, 5, n)] + rng.normal(size=(n, 2))


def _naive_lloyd(X, centroids, iterations):
    for _ in range(iterations):
        labels = cdist(X, centroids, "sqeuclidean").argmin(1)
        centroids = np.array([X[labels == k].mean(0) for k in range(len(centroids))])
    return centroids


def test_lloyd_matches_a_naive_implementation_and_reports_the_true_mean_distance():
    X = _blobs()
    init = X[:5].copy()
    km = KMeansMachine(5, init_method=init, max_iter=4, convergence_threshold=None).fit(X)
    assert max_rel_diff(km.centroids_, _naive_lloyd(X, init, 4)) < 1e-12
    before_last = _naive_lloyd(X, init, 3)
    expected = cdist(X, before_last, "sqeuclidean").min(1).mean()
    np.testing.assert_allclose(km.average_min_distance, expected, rtol=1e-12)
    np.testing.assert_allclose(init, X[:5])  # the given array is copied, not modified


def test_transform_is_clusters_first_and_exact_and_predict_is_its_argmin():
    X = _blobs(1)
    km = KMeansMachine(5, max_iter=10).fit(X)
    d = km.transform(X)
    assert d.shape == (5, len(X))
    assert_parity(d, cdist(km.centroids_, X, "sqeuclidean"), tol=1e-14)
    np.testing.assert_array_equal(km.predict(X), d.argmin(0))
    assert km.transform(X[0]).shape == (5, 1) and km.predict(X[0]).shape == (1,)
    assert get_centroids_distance(X[:3], km.means).shape == (5, 3)


@pytest.mark.parametrize("means", [np.zeros(3), np.zeros((1, 2, 3))])
def test_get_centroids_distance_names_means_that_are_not_k_by_d(means):
    # a 1-D means raised IndexError ('tuple index out of range')
    with pytest.raises(ValueError, match=re.escape(f"means must be a (K, D) array of centroids; "
                                                   f"got shape {means.shape}")):
        get_centroids_distance(_blobs(1)[:3], means)


@pytest.mark.parametrize("method", ["random", "k-means++", "k-means||"])
@pytest.mark.parametrize("seed", [int, np.random.RandomState, np.random.default_rng], ids=["int", "RandomState", "Generator"])
def test_initialisations_give_distinct_centroids_and_depend_only_on_the_seed(method, seed):
    X = _blobs(2)
    a = KMeansMachine(5, init_method=method, random_state=seed(7), max_iter=0).fit(X).centroids_
    b = KMeansMachine(5, init_method=method, random_state=seed(7), max_iter=0).fit(X).centroids_
    c = KMeansMachine(5, init_method=method, random_state=seed(8), max_iter=0).fit(X).centroids_
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(np.unique(a, axis=0)) == 5


def test_random_state_objects_and_global_generator_untouched():
    X = _blobs(3)
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    for rs in (np.random.RandomState(1), np.random.default_rng(1), None, 1):
        KMeansMachine(5, random_state=rs, max_iter=2).fit(X)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("chunks", [900, 100, 333])
def test_kmeans_parallel_and_lloyd_same_for_numpy_and_dask(chunks):
    X = _blobs(4)
    ref = KMeansMachine(5, random_state=3).fit(X)
    got = KMeansMachine(5, random_state=3).fit(da.from_array(X, chunks=(chunks, 2)))
    assert max_rel_diff(got.centroids_, ref.centroids_) < 1e-10
    np.testing.assert_array_equal(got.predict(da.from_array(X, chunks=200)).compute(), ref.predict(X))


def test_row_uniforms_do_not_depend_on_how_rows_are_split():
    whole = row_uniforms(5, 2, 0, 1000)
    parts = np.concatenate([row_uniforms(5, 2, 0, 300), row_uniforms(5, 2, 300, 700)])
    np.testing.assert_array_equal(whole, parts)
    assert 0 < whole.min() and whole.max() <= 1 and abs(whole.mean() - 0.5) < 0.05


def test_empty_cluster_is_reseeded_with_the_farthest_sample():
    X = np.array([[0.0, 0], [0.1, 0], [0, 0.1], [10, 10], [10.1, 10]])
    init = np.array([[0.0, 0.0], [10.0, 10.0], [100.0, 100.0]])  # the third never wins a sample
    km = KMeansMachine(3, init_method=init, max_iter=1, convergence_threshold=None).fit(X)
    assert np.all(np.isfinite(km.centroids_))
    far = cdist(X, init[:2]).min(1).argmax()
    np.testing.assert_array_equal(km.centroids_[2], X[far])


def test_variances_and_weights_for_each_cluster():
    X = _blobs(5)
    km = KMeansMachine(5, max_iter=20).fit(X)
    variances, weights = km.get_variances_and_weights_for_each_cluster(X)
    labels = km.predict(X)
    for k in range(5):
        members = X[labels == k]
        assert_parity(variances[k], members.var(0), tol=1e-9)
        np.testing.assert_allclose(weights[k], len(members) / len(X))
    # deviations whose squares overflow gave NaN variances
    huge = KMeansMachine(2)
    huge.centroids_ = np.zeros((2, X.shape[1]))
    with pytest.raises(ValueError, match=r"squared deviations from the centroids overflow float64"):
        huge.get_variances_and_weights_for_each_cluster(X * 1e300)


def test_equality_and_similarity():
    X = _blobs(6)
    a = KMeansMachine(5).fit(X)
    b = KMeansMachine(5).fit(X)
    assert a == b and a.is_similar_to(b)
    b.centroids_ = b.centroids_ + 1e-3
    assert not a == b and a.is_similar_to(b, r_epsilon=1e-2, a_epsilon=1e-2)
    assert not KMeansMachine(2) == KMeansMachine(2)


def test_bad_input():
    X = _blobs(7)
    with pytest.raises(ValueError, match="n_clusters"):
        KMeansMachine(0).fit(X)
    with pytest.raises(ValueError, match="shape"):
        KMeansMachine(2, init_method=np.zeros((3, 2))).fit(X)
    with pytest.raises(ValueError, match="init_method must be one of"):
        KMeansMachine(2, init_method="foo").fit(X)
    with pytest.raises(ValueError, match="n_samples=3 is smaller than n_clusters=4"):
        KMeansMachine(4, init_method="random").fit(X[:3])
    with pytest.raises(ValueError, match="both be None"):
        KMeansMachine(2, max_iter=None, convergence_threshold=None).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        KMeansMachine(2).fit(np.array([[np.nan, 1.0], [1.0, 2.0]]))
    with pytest.raises(Exception, match="fit"):
        KMeansMachine(2).predict(X)


# -- issue 12: the EM contract and fitted state ----------------------------------------------


def test_converged_is_true_when_the_threshold_stops_training_and_false_at_the_cap():
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    X = _blobs(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the suite ignores it by default
        km = KMeansMachine(5, max_iter=200, convergence_threshold=1e-8).fit(X)
    assert km.converged_ is True and km.n_iter_ < 200
    with pytest.warns(ConvergenceWarning, match="k-means did not converge in 2 iterations") as caught:
        capped = KMeansMachine(5, init_method=X[:5], max_iter=2, convergence_threshold=1e-8).fit(X)
    assert caught[0].filename == __file__  # the user's line (was emkit's _em.py)
    assert capped.converged_ is False and capped.n_iter_ == 2


@pytest.mark.parametrize("offset", [0.0, 1e6])
@pytest.mark.parametrize("repeats", [1, 25])
def test_exactly_k_distinct_points_converge_at_the_second_iteration(offset, repeats):
    """Centroids on the points but for rounding: distances of about 1e-32 that change by 100%
    from one iteration to the next are no change (they ran to max_iter, with a warning)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    P = np.random.RandomState(0).randn(4, 3) + offset
    X = np.repeat(P, repeats, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        km = KMeansMachine(4).fit(X)
    assert km.converged_ is True and km.n_iter_ == 2
    centroids = km.centroids_[km.predict(P)]
    np.testing.assert_allclose(centroids, P, rtol=0, atol=4 * np.spacing(np.abs(P).max()))
    assert km.average_min_distance <= 3 * (8 * np.finfo(float).eps * np.abs(P).max()) ** 2


@pytest.mark.parametrize("scale", [1e-22, 1e-18, 1e20, 1e100])
def test_kmeans_parallel_initialisation_is_scale_invariant_without_warnings(scale):
    """k-means|| scores in float32: spreads outside its range are scaled by a power of two first
    (the centroids changed, and overflow warnings leaked, beyond about 1e-21 and 1e19)."""
    import warnings

    X = _blobs(4)
    reference = KMeansMachine(5, max_iter=0).fit(X).centroids_
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        scaled = KMeansMachine(5, max_iter=0).fit(X * scale).centroids_
    np.testing.assert_allclose(scaled / scale, reference, rtol=1e-9)


def test_kmeans_parallel_rescores_rows_beyond_float32_in_float64():
    import warnings

    X = _blobs(5)
    X[7] = 1e30  # one row whose float32 distance overflows
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        km = KMeansMachine(5, max_iter=0).fit(X)
    assert np.isfinite(km.centroids_).all()
    assert any(np.array_equal(c, X[7]) for c in km.centroids_)  # the outlier is its own cluster


def test_centroids_are_read_only_and_their_constants_cached_until_reassigned():
    X = _blobs(3)
    km = KMeansMachine(5, max_iter=3).fit(X)
    assert set(vars(KMeansMachine(5))) == set(KMeansMachine(5).get_params())
    with pytest.raises(ValueError, match="read-only"):
        km.centroids_[0, 0] = 1.0
    coef = km._coefficients()
    assert km._coefficients() is coef
    km.means = km.centroids_[::-1]
    assert km._coefficients() is not coef
    np.testing.assert_array_equal(km.predict(X), km.transform(X).argmin(0))
    assert KMeansMachine(5).centroids_ is None and KMeansMachine(5).average_min_distance == np.inf


def test_module_steps_match_the_reference_loop_and_give_the_true_average():
    from emkit.kmeans import e_step, m_step

    X = _blobs(3) + 1e4  # far from the origin: the sums must not lose the offset
    means = X[[0, 1, 2, 3, 4]].copy()
    labels = cdist(X, means, "sqeuclidean").argmin(1)
    chunks = [X[:250], X[250:]]
    stats = [e_step(c, means) for c in chunks]
    counts, sums, mean_min = stats[0]
    assert counts.dtype == np.int64 and counts.sum() == 250
    np.testing.assert_array_equal(counts, np.bincount(labels[:250], minlength=5))
    expected = np.array([X[:250][labels[:250] == k].sum(0) for k in range(5)])
    assert max_rel_diff(sums, expected) < 1e-13
    np.testing.assert_allclose(mean_min, cdist(X[:250], means, "sqeuclidean").min(1).mean(),
                               rtol=1e-10)
    centroids, average = m_step(stats, len(X))
    assert max_rel_diff(centroids, _naive_lloyd(X, means, 1)) < 1e-13
    # the true mean over both (unequal) chunks, not the reference's sum of means / N
    np.testing.assert_allclose(average, cdist(X, means, "sqeuclidean").min(1).mean(), rtol=1e-10)
    np.testing.assert_array_equal(means, X[:5])  # inputs untouched


def test_module_m_step_never_makes_an_empty_cluster_nan():
    from emkit.kmeans import e_step, m_step

    X = _blobs(4)
    means = np.vstack([X[:4], [1e6, 1e6]])  # the last centroid is nearest to no sample
    stats = [e_step(X, means)]
    with pytest.raises(ValueError, match=r"cluster\(s\) \[4\] got no sample: pass means="):
        m_step(stats, len(X))
    centroids, _ = m_step(stats, len(X), means=means)
    np.testing.assert_array_equal(centroids[4], [1e6, 1e6])
    assert np.isfinite(centroids).all()
    with pytest.raises(ValueError, match="stats is empty"):
        m_step([], 10)
    with pytest.raises(ValueError, match="data"):
        e_step(np.full((3, 2), np.nan), means)
