"""KMeansMachine against bob.learn.em 3.3.1, from the same initial centroids (float64).

Fixtures: ``tests/data/gmm/make_fixtures.py`` (reference interpreter).  Data sets: "blobs"
(uneven cluster sizes 200/110/60/30), "d1" (D = 1), "c1" (K = 1), "f32" (float32 input; the
reference was fitted on the float64 copy because it sums cluster members in float32, emkit gets
the float32 array itself).
"""

import numpy as np
import pytest
from _parity import DATA, max_rel_diff

from emkit.kmeans import KMeansMachine, get_centroids_distance

TOL = 1e-10
DATASETS = ["blobs", "d1", "c1", "f32"]
RUNS = {"steps": 2, "conv": 200}

DATA_NPZ = np.load(DATA / "gmm" / "datasets.npz")
REF = np.load(DATA / "gmm" / "kmeans.npz")


def _fit(name, max_iter):
    X = DATA_NPZ[f"{name}__X"]
    init = DATA_NPZ[f"{name}__means0"].copy()
    km = KMeansMachine(len(init), init_method=init, max_iter=max_iter)
    km.fit(X)
    # the init array is not mutated
    np.testing.assert_array_equal(init, DATA_NPZ[f"{name}__means0"])
    return km, X


def test_float32_case_really_is_float32():
    assert DATA_NPZ["f32__X"].dtype == np.float32
    assert DATA_NPZ["blobs__X"].dtype == np.float64


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("name", DATASETS)
def test_centroids_and_iterations(name, run):
    km, X = _fit(name, RUNS[run])
    ref = f"{name}__{run}"
    assert km.centroids_.dtype == np.float64
    assert max_rel_diff(km.centroids_, REF[f"{ref}__centroids"]) <= TOL
    assert km.n_iter_ == int(REF[f"{ref}__n_iter"])
    # emkit's average_min_distance is the true mean; the reference divided by N a second time
    expected = REF[f"{ref}__average_min_distance"] * len(X)
    assert max_rel_diff(km.average_min_distance, expected) <= TOL


@pytest.mark.parametrize("name", DATASETS)
def test_transform_and_predict(name):
    km, X = _fit(name, RUNS["conv"])
    X_test = DATA_NPZ[f"{name}__X_test"]
    ref = f"{name}__conv"
    K = len(km.centroids_)
    for data, key in [(X, "train"), (X_test, "test")]:
        dist = km.transform(data)
        assert dist.shape == (K, len(data))  # clusters first, as the reference
        assert max_rel_diff(dist, REF[f"{ref}__transform_{key}"]) <= TOL
        module_dist = get_centroids_distance(data, km.centroids_)
        assert max_rel_diff(module_dist, REF[f"{ref}__transform_{key}"]) <= TOL
        np.testing.assert_array_equal(km.predict(data), REF[f"{ref}__predict_{key}"])
    one = km.transform(X_test[0])  # a 1-D sample is one sample
    assert one.shape == (K, 1)
    assert max_rel_diff(one, REF[f"{ref}__transform_one"]) <= TOL
    assert km.predict(X_test[0]).shape == (1,)


@pytest.mark.parametrize("name", DATASETS)
def test_variances_and_weights_for_each_cluster(name):
    km, X = _fit(name, RUNS["conv"])
    variances, weights = km.get_variances_and_weights_for_each_cluster(X)
    assert max_rel_diff(variances, REF[f"{name}__conv__cluster_variances"]) <= TOL
    assert max_rel_diff(weights, REF[f"{name}__conv__cluster_weights"]) <= TOL


@pytest.mark.parametrize("name", ["blobs", "f32"])
def test_parity_holds_when_the_kernels_walk_many_row_blocks(name):
    """The fixtures have fewer rows than one default block: force 37-row blocks."""
    from emkit import config_context

    with config_context(block_rows=37):
        km, X = _fit(name, RUNS["conv"])
        assert max_rel_diff(km.centroids_, REF[f"{name}__conv__centroids"]) <= TOL
        assert km.n_iter_ == int(REF[f"{name}__conv__n_iter"])
        np.testing.assert_array_equal(km.predict(X), REF[f"{name}__conv__predict_train"])
