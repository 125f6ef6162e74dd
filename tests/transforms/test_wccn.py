"""WCCN: parity with bob.learn.em 3.3.1, labels of any hashable type, scikit-learn integration."""

import pickle
import re

import numpy as np
import pytest
from _parity import DATA, assert_parity, max_rel_diff
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline

from emkit.wccn import WCCN

FIX = np.load(DATA / "ivector" / "linear.npz")


@pytest.mark.parametrize("name", ["doc", "rand"])
@pytest.mark.parametrize("pinv", [False, True])
def test_parity(name, pinv):
    X, y = FIX[f"wccn_{name}_X"], FIX[f"wccn_{name}_y"]
    wccn = WCCN(pinv=pinv).fit(X, y)
    assert max_rel_diff(wccn.weights, FIX[f"wccn_{name}_pinv{int(pinv)}_weights"]) <= 1e-10
    out = wccn.transform(X)
    assert isinstance(out, np.ndarray) and out.shape == X.shape  # the reference returned a list
    assert max_rel_diff(out, FIX[f"wccn_{name}_pinv{int(pinv)}_out"]) <= 1e-10
    assert_parity(WCCN(pinv=pinv).fit_transform(X, y), out, tol=1e-14)
    assert np.all(np.triu(wccn.weights, 1) == 0)


def test_reference_matlab_values():
    wccn = WCCN().fit(FIX["wccn_doc_X"], FIX["wccn_doc_y"])
    expected = [[15.8455444, 0, 0], [-10.7946764, 2.87942129, 0], [18.76762201, -2.19719292, 2.1505817]]
    np.testing.assert_allclose(wccn.weights, expected, rtol=1e-7, atol=1e-7)


def _within_class_cov(Z, y):
    classes = np.unique(y)
    Sw = sum((Z[y == k] - Z[y == k].mean(0)).T @ (Z[y == k] - Z[y == k].mean(0)) for k in classes)
    return Sw / len(classes)


def test_output_within_class_covariance_is_identity():
    X, y = FIX["wccn_rand_X"], FIX["wccn_rand_y"]
    out = WCCN().fit(X, y).transform(X)
    np.testing.assert_allclose(_within_class_cov(out, y), np.eye(X.shape[1]), atol=1e-10)


@pytest.mark.parametrize("relabel", [
    lambda y: np.array([f"speaker-{v}" for v in y]),
    lambda y: [("spk", int(v)) for v in y],
    lambda y: [None if v == 0 else ("x" if v == 1 else v + 10) for v in y],
    lambda y: np.array(y) * 7 + 100,
])
def test_labels_of_any_hashable_type(relabel):
    X, y = FIX["wccn_rand_X"], FIX["wccn_rand_y"]
    expected = WCCN().fit(X, y).weights
    wccn = WCCN().fit(X, relabel(y))
    assert_parity(wccn.weights, expected, tol=1e-12)
    assert len(wccn.classes_) == 4


@pytest.mark.parametrize("container", [np.array, list])
def test_nan_labels_are_refused_naming_y_and_the_index(container):
    X, y = FIX["wccn_rand_X"], FIX["wccn_rand_y"].astype(np.float64)
    y[[5, 9]] = np.nan
    with pytest.raises(ValueError, match=re.escape("y[5] is NaN: class labels must not be NaN")):
        WCCN().fit(X, container(y))


def test_list_labels_keep_first_appearance_order_and_arrays_sort():
    X = FIX["wccn_rand_X"][:6]
    assert WCCN(pinv=True).fit(X, ["b", "a", "b", "c", "a", "c"]).classes_ == ["b", "a", "c"]
    assert WCCN(pinv=True).fit(X, np.array([3, 1, 3, 2, 1, 2])).classes_.tolist() == [1, 2, 3]


def test_a_constant_feature_gets_advice_that_works():
    X, y = FIX["wccn_rand_X"], FIX["wccn_rand_y"]
    X = np.c_[X, np.ones(len(X))]
    with pytest.raises(ValueError, match="within-class covariance is singular") as info:
        WCCN().fit(X, y)
    assert "pinv" not in str(info.value) and "reduce the dimension" in str(info.value)
    with pytest.raises(ValueError, match=re.escape("X has 0 sample(s) (shape=(0, 2)): WCCN needs at least 1")):
        WCCN().fit(np.empty((0, 2)), [])


def test_sklearn_integration():
    X, y = FIX["wccn_rand_X"], FIX["wccn_rand_y"]
    wccn = WCCN(pinv=True)
    assert wccn.get_params() == {"pinv": True}
    assert clone(wccn).get_params() == {"pinv": True}
    fitted = pickle.loads(pickle.dumps(wccn.fit(X, y)))
    np.testing.assert_array_equal(fitted.transform(X), wccn.transform(X))
    pipe = make_pipeline(WCCN()).fit(X, y)
    np.testing.assert_allclose(pipe.transform(X), WCCN().fit(X, y).transform(X), rtol=1e-14)
    assert list(wccn.get_feature_names_out()) == [f"wccn{i}" for i in range(X.shape[1])]


def test_bad_input():
    X, y = FIX["wccn_rand_X"], FIX["wccn_rand_y"]
    with pytest.raises(NotFittedError):
        WCCN().transform(X)
    with pytest.raises(ValueError, match="requires y"):
        WCCN().fit(X, None)
    with pytest.raises(ValueError, match=re.escape("one label per row of X (60); got 59")):
        WCCN().fit(X, y[:-1])
    with pytest.raises(ValueError, match="singular"):
        WCCN().fit(np.c_[X, X[:, :1]], y)  # duplicated column
    with pytest.raises(ValueError, match="X has 4 features"):
        WCCN().fit(X, y).transform(X[:, :4])
    with pytest.raises(ValueError, match="n_samples = 1"):
        WCCN().fit(X[:1], y[:1])
    for pinv in (False, True):  # it blamed "a constant or collinear feature" (pinv: a zero W)
        with pytest.raises(ValueError, match="^y: every one of the 60 classes has a single sample"):
            WCCN(pinv=pinv).fit(X, np.arange(len(X)))
    with pytest.raises(ValueError, match="2D array"):
        WCCN().fit(X, y).transform(X[0])  # the reference failed on 1-D input too
    with pytest.raises(ValueError, match="NaN"):
        WCCN().fit(np.where(X > 3, np.nan, X), y)


def test_too_few_samples_per_class_are_named_not_blamed_on_the_features():
    # 30 samples in 29 classes: the within-class covariance has rank 1 < 3 whatever the features;
    # the message blamed only "a constant or collinear feature"
    X = np.random.default_rng(0).standard_normal((30, 3))
    y = list(range(29)) + [0]
    with pytest.raises(ValueError, match=re.escape(
            "y: 30 samples in 29 classes give a within-class covariance of rank at most 1 < "
            "n_features = 3; WCCN needs n_samples - n_classes >= n_features (more samples per class, "
            "or fewer features). the within-class covariance is singular")):
        WCCN().fit(X, y)
    assert WCCN().fit(X, [k % 26 for k in range(30)]).weights.shape == (3, 3)  # 30 - 26 >= 3
