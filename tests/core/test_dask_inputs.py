"""dask inputs behave like numpy inputs (issue 10 item 5, issue 11 item 7).

Every GMM/k-means method that takes data (or parameters) as dask arrays gives numpy's numbers
whatever the chunking, along either axis; bad dask input raises the error numpy input raises.
"""

import re

import dask.array as da
import numpy as np
import pytest

from emkit import PLDA, WCCN, GMMMachine, KMeansMachine, Whitening
from emkit.lda import LDA

CHUNKINGS = [(-1, -1), (7, 1), (13, 2), (1, -1), (50, 1), ((3, 60, 57), (2, 1))]


def _close(actual, expected, rtol):
    """Equal within ``rtol`` of the array's largest magnitude (not element-wise relative)."""
    expected = np.asarray(expected, dtype=np.float64)
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=0,
                               atol=rtol * np.max(np.abs(expected)))


def _blobs(seed=0, n=120):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(size=(n // 2, 3)), rng.normal(size=(n - n // 2, 3)) + [4.0, -3.0, 2.0]])


def _gmm(X, **kw):
    m = GMMMachine(2, update_variances=True, update_weights=True, max_fitting_steps=4,
                   convergence_threshold=None, **kw)
    m.means = np.array([[0.5, 0.0, 0.0], [3.0, -2.0, 1.0]])
    m.variances = np.ones((2, 3))
    m.weights = np.array([0.5, 0.5])
    return m


def _kmeans(**kw):
    return KMeansMachine(2, init_method=np.array([[0.5, 0.0, 0.0], [3.0, -2.0, 1.0]]), max_iter=5, **kw)


# -- the example ---------------------------------------------------------------------


def test_kmeans_with_dask_centroids_on_one_sample_in_two_chunks():
    km = KMeansMachine(2)
    km.centroids_ = da.from_array(np.array([[0.0, 0.0, 0.0], [3.0, 70.0, 1.0]]))
    x = da.from_array(np.array([3.0, 70.0, 1.0]), chunks=2)
    np.testing.assert_array_equal(np.asarray(km.transform(x)), [[4910.0], [0.0]])
    np.testing.assert_array_equal(np.asarray(km.predict(x)), [1])


# -- every method, every chunking ------------------------------------------------------------


@pytest.mark.parametrize("chunks", CHUNKINGS, ids=str)
def test_kmeans_methods_match_numpy_for_any_chunking(chunks):
    X = _blobs()
    dX = da.from_array(X, chunks=chunks)
    ref = _kmeans().fit(X)
    fitted = _kmeans().fit(dX)
    _close(fitted.centroids_, ref.centroids_, rtol=1e-13)
    _close(np.asarray(ref.transform(dX)), ref.transform(X), rtol=1e-13)
    np.testing.assert_array_equal(np.asarray(ref.predict(dX)), ref.predict(X))
    v_d, w_d = ref.get_variances_and_weights_for_each_cluster(dX)
    v_n, w_n = ref.get_variances_and_weights_for_each_cluster(X)
    _close(v_d, v_n, rtol=1e-12)
    np.testing.assert_array_equal(w_d, w_n)
    # the default k-means|| initialisation does not depend on the chunking either
    _close(KMeansMachine(2).fit(dX).centroids_, KMeansMachine(2).fit(X).centroids_,
                               rtol=1e-12)


@pytest.mark.parametrize("chunks", CHUNKINGS, ids=str)
def test_gmm_methods_match_numpy_for_any_chunking(chunks):
    X = _blobs(1)
    dX = da.from_array(X, chunks=chunks)
    m = _gmm(X)
    _close(np.asarray(m.log_likelihood(dX)), m.log_likelihood(X), rtol=1e-13)
    _close(np.asarray(m.log_weighted_likelihood(dX)), m.log_weighted_likelihood(X),
                               rtol=1e-13)
    assert m.acc_stats(dX).is_similar_to(m.acc_stats(X), rtol=1e-12, atol=1e-12)
    per_row_d, per_row_n = m.transform(dX[:5]), m.transform(X[:5])
    assert len(per_row_d) == 5 and all(a.is_similar_to(b, 1e-12, 1e-12) for a, b in zip(per_row_d, per_row_n))
    ml_d, ml_n = _gmm(X).fit(dX), _gmm(X).fit(X)
    _close(ml_d.variances, ml_n.variances, rtol=1e-12)
    _close(ml_d.means, ml_n.means, rtol=1e-12)
    ubm = _gmm(X).fit(X)
    kw = dict(trainer="map", ubm=ubm, update_variances=True, max_fitting_steps=2)
    map_d, map_n = GMMMachine(2, **kw).fit(dX), GMMMachine(2, **kw).fit(X)
    _close(map_d.means, map_n.means, rtol=1e-12)
    _close(map_d.variances, map_n.variances, rtol=1e-12)


@pytest.mark.parametrize("chunks", [1, 2, 3], ids=str)
def test_one_sample_as_a_1d_dask_array_in_any_chunking(chunks):
    X = _blobs(2)
    x = np.array([3.0, 70.0, 1.0])
    dx = da.from_array(x, chunks=chunks)
    m = _gmm(X)
    _close(np.asarray(m.log_likelihood(dx)), m.log_likelihood(x), rtol=1e-13)
    _close(np.asarray(m.log_weighted_likelihood(dx)), m.log_weighted_likelihood(x),
                               rtol=1e-13)
    assert m.acc_stats(dx).is_similar_to(m.acc_stats(x), rtol=1e-12, atol=1e-12)
    km = _kmeans().fit(X)
    _close(np.asarray(km.transform(dx)), km.transform(x), rtol=1e-13)
    np.testing.assert_array_equal(np.asarray(km.predict(dx)), km.predict(x))


def test_parameters_assigned_as_dask_arrays_in_odd_chunks():
    X = _blobs(3)
    ref = _gmm(X)
    m = _gmm(X)
    m.means = da.from_array(ref.means, chunks=(1, 2))
    m.variances = da.from_array(ref.variances, chunks=(2, 1))
    m.weights = da.from_array(ref.weights, chunks=1)
    assert type(m.means) is np.ndarray and type(m.variances) is np.ndarray
    np.testing.assert_array_equal(m.log_likelihood(X), ref.log_likelihood(X))
    _close(m.fit(da.from_array(X, chunks=(11, 2))).means, _gmm(X).fit(X).means, rtol=1e-12)
    km = _kmeans().fit(X)
    init = da.from_array(np.array([[0.5, 0.0, 0.0], [3.0, -2.0, 1.0]]), chunks=(1, 2))
    np.testing.assert_array_equal(KMeansMachine(2, init_method=init, max_iter=5).fit(X).centroids_, km.centroids_)
    km2 = KMeansMachine(2)
    km2.centroids_ = da.from_array(km.centroids_, chunks=(1, 2))
    np.testing.assert_array_equal(np.asarray(km2.predict(da.from_array(X, chunks=(9, 2)))), km.predict(X))


# -- unknown chunk sizes (X[mask]) -----------------------------------------------------------


def test_masked_dask_arrays_with_unknown_chunk_sizes():
    X = _blobs(4)
    dX = da.from_array(X, chunks=(25, 3))
    mask = X[:, 0] > 0.5
    dm = dX[dX[:, 0] > 0.5]
    assert np.isnan(dm.shape[0])
    Xm = X[mask]
    _close(_kmeans().fit(dm).centroids_, _kmeans().fit(Xm).centroids_, rtol=1e-13)
    _close(KMeansMachine(2).fit(dm).centroids_, KMeansMachine(2).fit(Xm).centroids_, rtol=1e-12)
    _close(_gmm(X).fit(dm).variances, _gmm(X).fit(Xm).variances, rtol=1e-12)
    _close(GMMMachine(2, max_fitting_steps=3).fit(dm).means,
                               GMMMachine(2, max_fitting_steps=3).fit(Xm).means, rtol=1e-12)
    m = _gmm(X)
    _close(np.asarray(m.log_likelihood(dm)), m.log_likelihood(Xm), rtol=1e-13)
    assert m.acc_stats(dm).is_similar_to(m.acc_stats(Xm), rtol=1e-12, atol=1e-12)
    km = _kmeans().fit(X)
    np.testing.assert_array_equal(np.asarray(km.predict(dm)), km.predict(Xm))
    _close(np.asarray(km.transform(dm)), km.transform(Xm), rtol=1e-13)


# -- bad input: the error numpy input gets ---------------------------------------------------


def _both(X, **chunks):
    return [X, da.from_array(X, **chunks)]


def _nan_rows(kind):
    X = _blobs(5)
    X[37, 1] = np.nan if kind == "NaN" else np.inf
    return X


GMM_METHODS = {
    "fit": lambda m, X: m.fit(X),
    "acc_stats": lambda m, X: m.acc_stats(X),
    "log_likelihood": lambda m, X: np.asarray(m.log_likelihood(X)),
    "log_weighted_likelihood": lambda m, X: np.asarray(m.log_weighted_likelihood(X)),
    "transform": lambda m, X: m.transform(X),
}
KMEANS_METHODS = {
    "fit": lambda m, X: _kmeans().fit(X),
    "fit k-means||": lambda m, X: KMeansMachine(2).fit(X),
    "fit k-means++": lambda m, X: KMeansMachine(2, init_method="k-means++").fit(X),
    "predict": lambda m, X: np.asarray(m.predict(X)),
    "transform": lambda m, X: np.asarray(m.transform(X)),
    "variances": lambda m, X: m.get_variances_and_weights_for_each_cluster(X),
}


@pytest.mark.parametrize("kind", ["NaN", "infinity"])
@pytest.mark.parametrize("method", list(GMM_METHODS))
def test_gmm_non_finite_dask_input_raises_like_numpy(method, kind):
    X = _nan_rows(kind)
    for data in _both(X, chunks=(20, 2)):
        with pytest.raises(ValueError, match=f"contains {kind}"):
            GMM_METHODS[method](_gmm(X), data)


@pytest.mark.parametrize("kind", ["NaN", "infinity"])
@pytest.mark.parametrize("method", list(KMEANS_METHODS))
def test_kmeans_non_finite_dask_input_raises_like_numpy(method, kind):
    X = _nan_rows(kind)
    fitted = _kmeans().fit(_blobs(5))
    for data in _both(X, chunks=(20, 2)):
        with pytest.raises(ValueError, match=f"contains {kind}"):
            KMEANS_METHODS[method](fitted, data)


def test_nan_error_names_the_row_of_the_whole_array():
    X = _nan_rows("NaN")
    with pytest.raises(ValueError, match=re.escape("data contains NaN (first at index (37, 1) in rows 20 to 39, a dask chunk)")):
        np.asarray(_gmm(X).log_likelihood(da.from_array(X, chunks=(20, 2))))


@pytest.mark.parametrize("method", [("gmm", m) for m in GMM_METHODS] + [("kmeans", m) for m in KMEANS_METHODS])
def test_every_dask_path_names_the_index_in_the_whole_array(method):
    # the statistics of fit, acc_stats and the k-means passes checked each chunk without its
    # offset: 'at index (17, 1) of one of its dask chunks' for row 37
    family, name = method
    X = _nan_rows("NaN")
    data = da.from_array(X, chunks=(20, 3))
    # (GMM transform and k-means++ compute the whole array, and name its index as numpy's)
    whole = r"contains NaN \(first at index \(37, 1\)( in rows 20 to 39, a dask chunk)?\)$"
    with pytest.raises(ValueError, match=whole):
        if family == "gmm":
            GMM_METHODS[name](_gmm(X), data)
        else:
            KMEANS_METHODS[name](_kmeans().fit(_blobs(5)), data)


TRANSFORM_CALLS = {
    "whitening fit": lambda X, y: Whitening().fit(X),
    "whitening transform": lambda X, y: Whitening().fit(_blobs(5)).transform(X),
    "wccn fit": lambda X, y: WCCN().fit(X, y),
    "wccn transform": lambda X, y: WCCN().fit(_blobs(5), y).transform(X),
    "lda fit": lambda X, y: LDA(1).fit(X, y),
    "lda transform": lambda X, y: LDA(1).fit(_blobs(5), y).transform(X),
    "plda fit": lambda X, y: PLDA(max_iterations=2).fit(X, y),
    "plda scores": lambda X, y: PLDA(max_iterations=2).fit(_blobs(5), y).log_likelihood_ratio(X, X),
}


@pytest.mark.parametrize("kind", ["NaN", "infinity"])
@pytest.mark.parametrize("call", list(TRANSFORM_CALLS))
def test_estimators_that_compute_dask_input_whole_refuse_nan_like_numpy(call, kind):
    # before: their dask input was never checked: fits said 'the covariance of X overflows
    # float64 ... rescale X', transforms 'overflows float64 on X (|X| up to nan', and PLDA
    # scores of a NaN model came back NaN without a word
    X, y = _nan_rows(kind), np.arange(120) % 2
    name = "models" if call == "plda scores" else "X"
    for data in _both(X, chunks=(20, 2)):
        with pytest.raises(ValueError, match=re.escape(f"Input {name} contains {kind} (first at "
                                                       "index (37, 1))")):
            TRANSFORM_CALLS[call](data, y)


def test_the_rows_named_are_those_of_the_chunk_that_failed():
    # NaN in every chunk: whichever chunk fails first, the index is of the whole array and the
    # message says which rows were searched for the first (not the first of the whole array)
    data = da.from_array(np.full((8, 3), np.nan), chunks=2)
    with pytest.raises(ValueError) as caught:
        np.asarray(_gmm(_blobs()).log_likelihood(data))
    found = re.search(r"first at index \((\d+), 0\) in rows (\d+) to (\d+), a dask chunk\)$", str(caught.value))
    assert found is not None, str(caught.value)
    row, start, stop = (int(g) for g in found.groups())
    assert row == start and stop == start + 1 and start % 2 == 0


def test_fit_refuses_a_1d_dask_array_like_numpy():
    x = np.arange(900.0)
    # the message names X and its shape, without printing the values (scikit-learn's does)
    match = r"^Expected 2D array, got 1D array instead: X is a 1-D (dask )?array of shape \(900,\)\. Reshape"
    for data in _both(x, chunks=300):
        with pytest.raises(ValueError, match=match):
            GMMMachine(1).fit(data)
        with pytest.raises(ValueError, match=match):
            KMeansMachine(1).fit(data)


@pytest.mark.parametrize("bad,match", [
    (np.empty((0, 3)), "0 sample"),
    (np.zeros((4, 0)), "0 feature"),
    (np.ones((4, 3)) + 1j, "^Complex data not supported: X must hold real numbers; got (a dask array of dtype complex128|complex values)$"),
    (np.ones((2, 4, 3)), re.escape("X must be a 2-D (n_samples, n_features) array; got ") + r"(a dask array of )?shape \(2, 4, 3\)"),
])
def test_malformed_dask_arrays_raise_like_numpy(bad, match):
    for data in _both(bad):
        with pytest.raises(ValueError, match=match):
            GMMMachine(2).fit(data)
        with pytest.raises(ValueError, match=match):
            KMeansMachine(2).fit(data)


def test_string_dask_array_is_refused():
    bad = np.array([["a", "b"], ["c", "d"]])
    for data in _both(bad):
        with pytest.raises(ValueError, match="numbers|numeric"):
            KMeansMachine(1).fit(data)


def test_wrong_number_of_features_names_the_argument():
    X = _blobs(6)
    m, km = _gmm(X), _kmeans().fit(X)
    for data in _both(np.ones((5, 4)), chunks=(2, 3)):
        with pytest.raises(ValueError, match="4 features.*expecting 3"):
            m.log_likelihood(data)
        with pytest.raises(ValueError, match="4 features.*expecting 3"):
            km.predict(data)


def test_integer_dask_input_gives_the_numpy_result():
    X = np.round(_blobs(7) * 3).astype(np.int64)
    _close(_kmeans().fit(da.from_array(X, chunks=(30, 1))).centroids_,
                               _kmeans().fit(X).centroids_, rtol=1e-13)
    m = _gmm(X)
    _close(np.asarray(m.log_likelihood(da.from_array(X, chunks=17))), m.log_likelihood(X),
                               rtol=1e-13)


def test_fit_of_a_bag_or_a_delayed_object_says_what_it_accepts():
    # a bag failed with "'Bag' object has no attribute 'shape'", a delayed object with "Truth of
    # Delayed objects is not supported" (GMM) or "Delayed objects of unspecified length are not
    # iterable" (k-means)
    import dask
    import dask.bag as db

    X = _blobs(8)
    accepted = (r"^X must be a numpy array \(or array-like\), a dask array, or a PyTorch or CuPy "
                r"array, of shape \(n_samples, n_features\); got ")
    for data, got in [(db.from_sequence([X[:60], X[60:]], npartitions=2), r"a dask bag \(dask\.bag\.Bag\); "
                       r"stack its \(n_frames, n_features\) arrays into one dask array"),
                      (dask.delayed(X), r"a dask delayed object \(dask\.delayed\.Delayed\); make it a "
                       r"dask array: dask\.array\.from_delayed\(X, "),
                      (dask.delayed(np.vstack)([X[:60], X[60:]]), r"a dask delayed object")]:
        for machine in (GMMMachine(2), KMeansMachine(2), _gmm(X), _kmeans()):
            with pytest.raises(TypeError, match=accepted + got):
                machine.fit(data)
    delayed = dask.delayed(X)  # made a dask array as the message says, it trains
    as_array = da.from_delayed(delayed, shape=X.shape, dtype=X.dtype)
    _close(_kmeans().fit(as_array).centroids_, _kmeans().fit(X).centroids_, rtol=1e-13)


@pytest.mark.parametrize("kind", ["bag", "delayed"])
def test_other_methods_refuse_a_bag_or_a_delayed_object_naming_the_argument(kind):
    # "'Bag' object has no attribute 'shape'" and "Delayed objects of unspecified length are not
    # iterable" (k-means' feature names) before
    import dask
    import dask.bag as db

    X = _blobs(9)
    data = db.from_sequence([X[:60], X[60:]], npartitions=2) if kind == "bag" else dask.delayed(X)
    got = r"a dask bag \(dask\.bag\.Bag\)" if kind == "bag" else r"a dask delayed object"
    gmm, km = _gmm(X), _kmeans().fit(X)
    for method, name in [(gmm.log_likelihood, "data"), (gmm.log_weighted_likelihood, "data"),
                         (gmm.acc_stats, "X"), (km.predict, "X"), (km.transform, "X")]:
        with pytest.raises(TypeError, match=rf"^{name} must be a numpy array \(or array-like\), a "
                                            rf"dask array, .*; got {got}"):
            method(data)
