"""API misuse of GMMMachine and KMeansMachine (issue 10 items 6-8, issue 11 item 8).

Invalid constructor arguments raise at construction (as the reference does for some of them),
``set_params`` stores anything (scikit-learn's searches set parameters one at a time), and ``fit``
checks again, before any work is done.  Every error names the parameter.
"""

import copy

import numpy as np
import pytest
from sklearn.base import clone

from emkit import GMMMachine, KMeansMachine


def _blobs(seed=0, n=200):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(size=(n // 2, 2)), rng.normal(size=(n - n // 2, 2)) + 5])


def _ubm(C=2):
    return GMMMachine(C, update_variances=True, update_weights=True, max_fitting_steps=5).fit(_blobs(1))


KMEANS_BAD = [
    ("n_clusters", 0, ValueError),
    ("n_clusters", -1, ValueError),
    ("n_clusters", 2.5, TypeError),
    ("n_clusters", "2", TypeError),
    ("n_clusters", True, TypeError),
    ("max_iter", -1, ValueError),
    ("max_iter", 2.5, TypeError),
    ("max_iter", "10", TypeError),
    ("convergence_threshold", -1e-5, ValueError),
    ("convergence_threshold", "1e-5", TypeError),
    ("convergence_threshold", float("nan"), ValueError),
    ("init_max_iter", -1, ValueError),
    ("init_max_iter", 1.5, TypeError),
    ("oversampling_factor", 0, ValueError),
    ("oversampling_factor", -2, ValueError),
    ("oversampling_factor", float("inf"), ValueError),
    ("oversampling_factor", "2", TypeError),
    ("random_state", "seed", TypeError),
    ("random_state", -1, ValueError),
    ("random_state", 1.5, TypeError),
    ("init_method", "foo", ValueError),
    ("init_method", np.zeros((3, 2)), ValueError),
    ("init_method", np.array([[0.0, np.nan], [1.0, 1.0]]), ValueError),
    ("init_method", {"a": 1}, TypeError),
]


@pytest.mark.parametrize("name,value,error", KMEANS_BAD, ids=[f"{n}={v!r}" for n, v, _ in KMEANS_BAD])
def test_kmeans_bad_parameter_raises_at_construction_and_in_fit(name, value, error):
    with pytest.raises(error, match=name):
        KMeansMachine(**{"n_clusters": 2, name: value})
    km = KMeansMachine(2)
    km.set_params(**{name: value})  # stored as given
    assert km.get_params()[name] is value
    with pytest.raises(error, match=name):
        km.fit(_blobs())
    assert km.centroids_ is None  # no work was done


def test_kmeans_both_limits_none():
    with pytest.raises(ValueError, match="max_iter.*cannot both be None"):
        KMeansMachine(2, max_iter=None, convergence_threshold=None)
    km = KMeansMachine(2, max_iter=None)
    km.set_params(convergence_threshold=None)
    with pytest.raises(ValueError, match="cannot both be None"):
        km.fit(_blobs())


def test_kmeans_valid_edge_values_are_accepted():
    X = _blobs()
    assert KMeansMachine(2, max_iter=0).fit(X).n_iter_ == 0  # only initialises
    assert KMeansMachine(2, convergence_threshold=0, max_iter=3).fit(X).n_iter_ <= 3
    KMeansMachine(2, init_max_iter=None, oversampling_factor=0.5, random_state=np.random.default_rng(1)).fit(X)
    KMeansMachine(np.int64(2), max_iter=np.int32(3), convergence_threshold=np.float32(1e-4)).fit(X)


GMM_BAD = [
    ("n_gaussians", 0, ValueError),
    ("n_gaussians", 2.0, TypeError),
    ("trainer", "foo", ValueError),
    ("trainer", "MAP", ValueError),
    ("trainer", "ML", ValueError),
    ("trainer", None, ValueError),
    ("max_fitting_steps", -1, ValueError),
    ("max_fitting_steps", 2.5, TypeError),
    ("convergence_threshold", "1e-5", TypeError),
    ("convergence_threshold", -1.0, ValueError),
    ("convergence_threshold", float("nan"), ValueError),
    ("map_relevance_factor", -1, ValueError),
    ("map_relevance_factor", "4", TypeError),
    ("map_relevance_factor", float("inf"), ValueError),
    ("map_alpha", -0.1, ValueError),
    ("map_alpha", 1.5, ValueError),
    ("map_alpha", "0.5", TypeError),
    ("map_alpha", np.array([0.5, 0.5, 0.5]), ValueError),
    ("map_alpha", np.array([0.5, 2.0]), ValueError),
    ("mean_var_update_threshold", -1e-3, ValueError),
    ("update_means", "yes", TypeError),
    ("update_variances", 2, TypeError),
    ("compute_dtype", "float16", ValueError),
    ("random_state", "seed", TypeError),
    ("k_means_trainer", "kmeans", TypeError),
    ("ubm", "ubm", TypeError),
    ("weights", np.array([0.5, 0.3, 0.2]), ValueError),
    ("weights", np.array([-0.5, 1.5]), ValueError),
    ("weights", np.array([np.nan, 1.0]), ValueError),
]


@pytest.mark.parametrize("name,value,error", GMM_BAD, ids=[f"{n}={v!r}" for n, v, _ in GMM_BAD])
def test_gmm_bad_parameter_raises_at_construction_and_in_fit(name, value, error):
    with pytest.raises(error, match=name):
        GMMMachine(**{"n_gaussians": 2, name: value})
    m = GMMMachine(2)
    if name == "weights":
        m._weights_param = value  # set_params would assign the live weights too: checked below
    else:
        m.set_params(**{name: value})
        assert m.get_params()[name] is value
    with pytest.raises(error, match=name):
        m.fit(_blobs())
    assert not m.__sklearn_is_fitted__()  # no k-means, no EM: nothing was done


def test_gmm_unknown_trainer_message_lists_the_accepted_values():
    with pytest.raises(ValueError, match=r"trainer must be one of \('ml', 'map'\).*got 'foo'"):
        GMMMachine(2, trainer="foo")


def test_gmm_set_params_trainer_map_does_not_silently_train_ml():
    m = GMMMachine(2)
    m.set_params(trainer="MAP", ubm=_ubm())
    with pytest.raises(ValueError, match="trainer"):
        m.fit(_blobs())
    m.set_params(trainer="map")
    m.fit(_blobs())  # now a real MAP fit
    assert m.trainer == "map" and m.ubm is not None


def test_gmm_init_stores_the_trainer_unchanged():
    ubm = _ubm()
    assert GMMMachine(2, trainer="map", ubm=ubm).get_params()["trainer"] == "map"
    assert GMMMachine(2, trainer=np.str_("ml")).get_params()["trainer"] == "ml"


def test_gmm_map_parameters_that_raise_in_the_reference_raise_at_construction():
    with pytest.raises(ValueError, match="UBM is required"):
        GMMMachine(2, trainer="map")
    with pytest.raises(ValueError, match="not compatible"):
        GMMMachine(3, trainer="map", ubm=_ubm(2))
    with pytest.raises(ValueError, match="convergence_threshold and max_fitting_steps"):
        GMMMachine(2, max_fitting_steps=None, convergence_threshold=None)


def test_gmm_live_weights_set_after_construction_are_checked_by_fit():
    m = GMMMachine(2)
    with pytest.raises(ValueError, match=r"GMMMachine.weights must be >= 0; got -0.5 at index \(1,\)"):
        m.weights = np.array([0.5, -0.5])  # refused when assigned
    m2 = GMMMachine(2)
    m2.set_params(weights=np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="weights"):
        m2.fit(_blobs())


def test_gmm_zero_fitting_steps_is_valid_and_only_initialises():
    X = _blobs()
    m = GMMMachine(2, max_fitting_steps=0).fit(X)
    assert m.n_iter_ == 0
    km = KMeansMachine(2, random_state=0).fit(X)
    np.testing.assert_array_equal(m.means, km.centroids_)


def test_gmm_valid_edge_values_are_accepted():
    X = _blobs()
    ubm = _ubm()
    GMMMachine(2, trainer="map", ubm=ubm, map_relevance_factor=0, max_fitting_steps=2).fit(X)
    GMMMachine(2, trainer="map", ubm=ubm, map_relevance_factor=None, map_alpha=np.array([0.0, 1.0]),
               max_fitting_steps=2).fit(X)
    GMMMachine(np.int64(2), update_means=np.bool_(True), update_variances=1, max_fitting_steps=np.int64(2),
               convergence_threshold=np.float32(1e-3), random_state=np.random.RandomState(0)).fit(X)


# -- clone and refit -------------------------------------------------------------------------


def test_clone_of_a_map_machine_refits_to_the_same_model():
    X = _blobs(2)
    ubm = _ubm()
    m = GMMMachine(2, trainer="map", ubm=ubm, update_variances=True, max_fitting_steps=3)
    twin = clone(m)
    assert twin.ubm is not ubm and twin.ubm == ubm  # a copy of the trained prior
    assert twin.get_params(deep=False).keys() == m.get_params(deep=False).keys()
    fitted = m.fit(X)
    refit = clone(fitted).fit(X)
    np.testing.assert_array_equal(refit.means, fitted.means)
    np.testing.assert_array_equal(refit.variances, fitted.variances)
    np.testing.assert_array_equal(ubm.means, twin.ubm.means)  # the prior is untouched


def test_clone_of_ml_machines_with_a_kmeans_trainer_and_of_kmeans():
    X = _blobs(3)
    m = GMMMachine(2, k_means_trainer=KMeansMachine(2, random_state=4), max_fitting_steps=3)
    fitted = m.fit(X)
    assert clone(fitted).fit(X) == fitted
    km = KMeansMachine(2, init_method=np.array([[0.0, 0.0], [5.0, 5.0]]), max_iter=5).fit(X)
    twin = clone(km)
    assert twin.centroids_ is None
    np.testing.assert_array_equal(twin.fit(X).centroids_, km.centroids_)
    km2 = KMeansMachine(2, random_state=7).fit(X)
    np.testing.assert_array_equal(clone(km2).fit(X).centroids_, km2.centroids_)


def test_deepcopy_and_clone_of_an_unfitted_map_machine_with_an_unfitted_ubm():
    m = GMMMachine(2, trainer="map", ubm=GMMMachine(2))
    twin = clone(m)
    with pytest.raises(ValueError, match="ubm has no parameters"):
        twin.fit(_blobs())
    copy.deepcopy(m)
