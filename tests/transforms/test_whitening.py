"""Whitening: parity with bob.learn.em 3.3.1, properties, and a scikit-learn i-vector back-end."""

import pickle
import re

import numpy as np
import pytest
from _parity import DATA, assert_parity, max_rel_diff
from sklearn.base import clone
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer

from emkit.lda import LDA
from emkit.wccn import WCCN
from emkit.whitening import Whitening

FIX = np.load(DATA / "ivector" / "linear.npz")


@pytest.mark.parametrize("name", ["a", "b"])
@pytest.mark.parametrize("pinv", [False, True])
def test_parity(name, pinv):
    X = FIX[f"white_{name}_X"]
    white = Whitening(pinv=pinv).fit(X)
    key = f"white_{name}_pinv{int(pinv)}"
    assert max_rel_diff(white.weights, FIX[key + "_weights"]) <= 1e-10
    assert max_rel_diff(white.input_subtract, FIX[key + "_subtract"]) <= 1e-10
    assert white.input_divide == 1.0
    out = white.transform(X)
    assert max_rel_diff(out, FIX[key + "_out"]) <= 1e-10
    np.testing.assert_allclose(np.cov(out, rowvar=False), np.eye(X.shape[1]), atol=1e-10)  # N-1 covariance
    assert_parity(Whitening(pinv=pinv).fit_transform(X), out, tol=1e-14)


def test_lists_and_float32_are_accepted():
    X = FIX["white_a_X"]
    np.testing.assert_array_equal(Whitening().fit(X.tolist()).weights, Whitening().fit(X).weights)
    assert Whitening().fit(X.astype(np.float32)).weights.dtype == np.float64


def test_bad_input():
    X = FIX["white_a_X"]
    with pytest.raises(NotFittedError):
        Whitening().transform(X)
    white = Whitening().fit(X)
    assert_parity(white.transform(X[3]), white.transform(X)[3], tol=1e-14)  # 1-D: (D,)
    with pytest.raises(ValueError, match="at least 2 samples"):
        Whitening().fit(X[:1])
    with pytest.raises(ValueError, match="singular"):
        Whitening().fit(np.c_[X, 2 * X[:, :1]])
    with pytest.raises(ValueError, match="pseudo-inverse"):
        Whitening(pinv=True).fit(np.c_[X, np.ones(len(X))])  # constant column: pinv(Cov) is PSD
    # a duplicated direction: pinv gives a (nearly) degenerate but finite factor, as the reference
    collinear = np.c_[X, 2 * X[:, :1]]
    try:
        weights = Whitening(pinv=True).fit(collinear).weights
    except ValueError as exc:
        assert "pseudo-inverse" in str(exc)
    else:
        assert np.isfinite(weights).all()
    with pytest.raises(ValueError, match="X has 3 features"):
        Whitening().fit(X).transform(X[:, :3])


def test_pinv_is_suggested_only_where_it_succeeds():
    X = FIX["white_a_X"]
    constant = np.c_[X, np.full(len(X), 3.0)]
    with pytest.raises(ValueError, match="singular or not positive definite: reduce the dimension") as info:
        Whitening().fit(constant)
    assert "pinv" not in str(info.value) and "constant or collinear feature" in str(info.value)
    with pytest.raises(ValueError, match="pseudo-inverse"):
        Whitening(pinv=True).fit(constant)
    collinear = np.c_[X, 2 * X[:, :1]]
    try:
        Whitening(pinv=True).fit(collinear)
    except ValueError:
        works = False
    else:
        works = True
    with pytest.raises(ValueError, match="singular") as info:
        Whitening().fit(collinear)
    assert ("use pinv=True" in str(info.value)) == works


@pytest.mark.parametrize("scale", [1e-150, 1e150])
def test_pinv_of_tiny_or_huge_data_is_finite_and_matches_the_factorisation(scale):
    # the pseudo-inverse of a tiny covariance overflowed to inf weights: it is scaled first
    X = FIX["white_a_X"] * scale
    with_pinv, without = Whitening(pinv=True).fit(X), Whitening().fit(X)
    assert np.isfinite(with_pinv.weights).all()
    np.testing.assert_allclose(with_pinv.transform(X), without.transform(X), atol=1e-10)


@pytest.mark.parametrize("pinv", [False, True])
def test_data_whose_covariance_is_subnormal_are_refused(pinv):
    # at 1e-157 the covariance is below 1e-308 (subnormal): both paths kept only a few digits
    # (they agreed to 1e-2); such data are now refused, naming X (test_numerical_edges_transforms)
    with pytest.raises(ValueError, match="^X varies by at most .* too little to square in float64"):
        Whitening(pinv=pinv).fit(FIX["white_a_X"] * 1e-157)


def test_a_transform_that_overflows_is_refused():
    # a model file's weights out of scale gave inf, then scores of 0.0 after length normalisation
    from emkit import WCCN

    X = FIX["white_a_X"]
    for model in (Whitening._from_fitted(np.eye(X.shape[1]) * 1e300, 0.0, 1e-300),
                  WCCN._from_fitted(np.eye(X.shape[1]) * 1e300, 0.0, 1e-10)):
        with pytest.raises(ValueError, match=rf"^{type(model).__name__}.transform overflows float64 on X"):
            model.transform(X)


@pytest.mark.parametrize("make, what", [
    (lambda: Whitening(), "covariance of X"), (lambda: Whitening(pinv=True), "covariance of X"),
    ("wccn", "within-class covariance"), ("lda", "within-class scatter of X")])
def test_data_too_large_to_square_is_refused_naming_x(make, what):
    # scipy's "array must not contain infs or NaNs" named nothing
    from emkit import WCCN
    from emkit.lda import LDA

    X, y = FIX["white_a_X"] * 1e300, np.arange(len(FIX["white_a_X"])) % 4
    model = {"wccn": WCCN, "lda": lambda: LDA(1)}.get(make, make)()
    with pytest.raises(ValueError, match=f"^the {what} overflows float64 .* rescale X$"):
        model.fit(X) if isinstance(model, Whitening) else model.fit(X, y)


def test_empty_training_data_names_x_and_the_estimator():
    with pytest.raises(ValueError, match=re.escape("X has 0 sample(s) (shape=(0, 3)): Whitening needs at least 1")):
        Whitening().fit(np.empty((0, 3)))


def test_sklearn_conventions():
    X = FIX["white_b_X"]
    white = Whitening(pinv=True)
    assert clone(white).get_params() == {"pinv": True}
    fitted = pickle.loads(pickle.dumps(white.fit(X)))
    np.testing.assert_array_equal(fitted.transform(X), white.transform(X))
    assert fitted.n_features_in_ == X.shape[1]


def test_ivector_backend_pipeline():
    """Whitening -> length normalisation -> LDA -> WCCN, as documented in emkit.ivector."""
    rng = np.random.default_rng(0)
    n_classes, per_class, dim = 6, 30, 8
    labels = np.repeat(np.arange(n_classes), per_class)
    X = rng.normal(size=(n_classes, dim))[labels] * 3 + rng.normal(size=(len(labels), dim)) @ rng.normal(size=(dim, dim))
    front = make_pipeline(Whitening(), Normalizer())
    normed = front.fit_transform(X)
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, rtol=1e-12)
    backend = make_pipeline(Whitening(), Normalizer(), LinearDiscriminantAnalysis(n_components=4), WCCN())
    out = backend.fit(X, labels).transform(X)
    assert out.shape == (len(labels), 4)
    # WCCN's output has an identity within-class covariance (scatter / number of classes)
    centred = out - np.array([out[labels == k].mean(0) for k in range(n_classes)])[labels]
    np.testing.assert_allclose(centred.T @ centred / n_classes, np.eye(4), atol=1e-9)
    lda = LinearDiscriminantAnalysis(n_components=4).fit(normed, labels)
    np.testing.assert_allclose(out, WCCN().fit(lda.transform(normed), labels).transform(lda.transform(normed)),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make, attribute, value, expected", [
    # (weights of 4 features, WCCN's only array over them, make it read 4: the frames are refused)
    (lambda X, y: WCCN().fit(X, y), "weights", np.ones((4, 4)), r"X has 3 features, but WCCN is "
     r"expecting 4 features as input \(shape \(30, 3\)\)"),
    (lambda X, y: WCCN().fit(X, y), "weights", np.ones((3, 3, 1)), r"WCCN\.weights has shape "
     r"\(3, 3, 1\)"),
    (lambda X, y: Whitening().fit(X), "weights", np.ones(3), r"Whitening\.weights has shape \(3,\)"),
    (lambda X, y: Whitening().fit(X), "input_subtract", np.zeros(4), r"Whitening\.input_subtract has "
     r"shape \(4,\); frames of D = 3 features need a number or shape \(3,\)"),
    (lambda X, y: WCCN().fit(X, y), "input_divide", np.ones((3, 3)), r"WCCN\.input_divide has shape \(3, 3\)"),
    (lambda X, y: LDA(2).fit(X, y), "input_subtract", np.zeros(2), r"LDA\.input_subtract has shape \(2,\)"),
])
def test_assigned_arrays_that_do_not_fit_the_frames_are_named(make, attribute, value, expected):
    # numpy's broadcasting or matmul error named none of them (its frames pass the D check)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 3)), np.repeat([0, 1, 2], 10)
    transform = make(X, y)
    setattr(transform, attribute, value)
    with pytest.raises(ValueError, match=expected):
        transform.transform(X)


def test_an_assigned_scalar_subtract_and_a_per_feature_divide_still_apply():
    X = np.random.default_rng(1).standard_normal((30, 3))
    white = Whitening().fit(X)
    white.input_subtract, white.input_divide = 0.5, np.array([1.0, 2.0, 4.0])
    np.testing.assert_allclose(white.transform(X), ((X - 0.5) / [1.0, 2.0, 4.0]) @ white.weights,
                               rtol=1e-15)
