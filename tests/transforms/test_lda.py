"""emkit.lda.LDA against a naive computation: per-class loops for the scatter matrices and
scipy.linalg.eigh's generalised symmetric eigenproblem."""

import h5py
import numpy as np
import pytest
import scipy.linalg

from emkit.lda import LDA


def naive_lda(X, y, k):
    mean = X.mean(axis=0)
    d = X.shape[1]
    s_w, s_b = np.zeros((d, d)), np.zeros((d, d))
    for c in np.unique(y):
        xc = X[y == c]
        mc = xc.mean(axis=0)
        for x in xc:
            s_w += np.outer(x - mc, x - mc)
        s_b += len(xc) * np.outer(mc - mean, mc - mean)
    values, vectors = scipy.linalg.eigh(s_b, s_w)
    order = np.argsort(values)[::-1][:k]
    return values[order], vectors[:, order], s_w / len(X)


def data(seed=0, n_classes=6, per_class=20, d=5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(n_classes, d))
    mix = rng.normal(size=(d, d))
    y = np.repeat(np.arange(n_classes), per_class)
    X = centres[y] + rng.normal(size=(len(y), d)) @ mix
    return X, y


def test_lda_equals_the_naive_generalised_eigenproblem():
    X, y = data()
    lda = LDA(3).fit(X, y)
    values, vectors, s_w = naive_lda(X, y, 3)
    np.testing.assert_allclose(lda.eigenvalues_, values, rtol=1e-10)
    # same directions (up to sign and scale): unit-normalised columns agree
    a = lda.weights / np.linalg.norm(lda.weights, axis=0)
    b = vectors / np.linalg.norm(vectors, axis=0)
    b *= np.sign((a * b).sum(axis=0))
    np.testing.assert_allclose(a, b, atol=1e-10)
    # scaled so that the projected within-class covariance is the identity
    np.testing.assert_allclose(lda.weights.T @ s_w @ lda.weights, np.eye(3), atol=1e-10)
    np.testing.assert_allclose(lda.transform(X), (X - X.mean(axis=0)) @ lda.weights, atol=1e-12)


def test_string_labels_and_hdf5_round_trip(tmp_path):
    X, y = data(seed=1)
    lda = LDA(2).fit(X, np.array([f"spk{v}" for v in y]))
    np.testing.assert_allclose(lda.weights, LDA(2).fit(X, y).weights, atol=1e-12)
    with h5py.File(tmp_path / "lda.h5", "w") as f:
        lda.save(f.create_group("lda"))
    with h5py.File(tmp_path / "lda.h5", "r") as f:
        back = LDA.from_hdf5(f["lda"])
    np.testing.assert_array_equal(back.transform(X), lda.transform(X))


def test_bad_inputs():
    X, y = data()
    with pytest.raises(ValueError, match="n_components"):
        LDA(0)
    with pytest.raises(ValueError, match=r"min\(5, 5\)"):
        LDA(6).fit(X, y)
    for bad, error in ((0, ValueError), (-1, ValueError), (2.5, TypeError), (None, TypeError)):
        with pytest.raises(error, match="n_components must be an integer >= 1"):  # set_params: at fit
            LDA(2).set_params(n_components=bad).fit(X, y)
    with pytest.raises(ValueError, match="one label per row"):
        LDA(2).fit(X, y[:-1])
    with pytest.raises(ValueError, match="singular"):
        LDA(1).fit(np.zeros((4, 5)) + np.arange(4)[:, None], [0, 0, 1, 1])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LDA(2).fit(bad, y)
    before = X.copy()
    LDA(2).fit(X, y)
    np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize("value,kind", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_transform_refuses_non_finite_input(value, kind):
    # before: NaN/inf went through to the projection silently
    X, y = data()
    lda = LDA(2).fit(X, y)
    bad = X[:3].copy()
    bad[1, 2] = value
    with pytest.raises(ValueError, match=rf"^Input X contains {kind} \(first at index \(1, 2\)\)$"):
        lda.transform(bad)


def test_labels_and_values_are_checked_as_the_other_estimators_do():
    # NaN was a class of its own, complex input lost its imaginary part with a warning only
    X, y = data()
    with pytest.raises(ValueError, match=r"y\[0\] is NaN: class labels must not be NaN"):
        LDA(2).fit(X, np.where(y == 0, np.nan, y))
    with pytest.raises(ValueError, match="^Complex data not supported: X must hold real numbers"):
        LDA(2).fit(X + 1j, y)
    lda = LDA(2).fit(X, y)
    with pytest.raises(ValueError, match="^Complex data not supported: X must hold real numbers"):
        lda.transform(X[:2] + 1j)
    mixed = [v if v % 2 else f"s{v}" for v in y]  # not sortable: classes in order of first appearance
    np.testing.assert_allclose(np.abs(LDA(2).fit(X, mixed).weights), np.abs(lda.weights), rtol=1e-10)


def test_scikit_learn_conventions():
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = data()
    assert LDA(3).get_params() == {"n_components": 3}
    assert LDA(3).__sklearn_tags__().target_tags.required  # fit needs y
    assert clone(LDA(3).fit(X, y)).n_components == 3 and not hasattr(clone(LDA(3)), "n_features_in_")
    lda = LDA(2).fit(X, y)
    assert list(lda.get_feature_names_out()) == ["lda0", "lda1"]
    np.testing.assert_allclose(lda.fit_transform(X, y), lda.transform(X), rtol=1e-12)
    piped = make_pipeline(StandardScaler(), LDA(2)).fit(X, y).transform(X)
    assert piped.shape == (len(X), 2)


def test_a_projection_that_overflows_is_refused():
    # as Whitening's and WCCN's: LDA weights of a file far out of scale gave inf silently
    X, y = data()
    lda = LDA._from_fitted(np.eye(5)[:, :2] * 1e300, np.zeros(5), np.ones(2))
    with pytest.raises(ValueError, match="^LDA.transform overflows float64 on X"):
        lda.transform(X * 1e10)


def test_singular_within_class_scatter_raises_singular_error_as_wccn_does():
    from emkit.whitening import SingularError

    X = np.zeros((4, 5)) + np.arange(4)[:, None]  # 4 samples in 2 classes: rank <= 2 < 5
    with pytest.raises(SingularError, match=r"^y: 4 samples in 2 classes give a singular "
                       r"within-class scatter \(its rank is at most 2 < n_features = 5\); LDA "
                       r"needs n_samples - n_classes >= n_features") as info:
        LDA(1).fit(X, [0, 0, 1, 1])
    assert isinstance(info.value, ValueError) and isinstance(info.value, np.linalg.LinAlgError)


def test_a_duplicated_feature_is_blamed_not_the_number_of_samples():
    """Before: 1000 samples with a duplicated feature were told the rank bound n_samples -
    n_classes (998, far above the 4 features) made the scatter singular."""
    from emkit.whitening import SingularError

    X = np.random.default_rng(0).normal(size=(1000, 3))
    with pytest.raises(SingularError, match=r"^X: the within-class scatter of its 1000 samples "
                       r"of 4 features in 2 classes of y is singular: a feature is constant "
                       r"within the classes or collinear with others") as info:
        LDA(1).fit(np.c_[X, X[:, :1]], np.arange(1000) % 2)
    assert "n_samples - n_classes" not in str(info.value)
