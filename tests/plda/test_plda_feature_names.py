"""PLDA keeps the column names of the DataFrame it was fitted on (``feature_names_in_``) and
checks them as scikit-learn does; its files keep them."""

import re
import warnings

import h5py
import numpy as np
import pytest
from data_frames import Frame

import emkit.io
from emkit.io import InvalidFileError
from emkit.plda import PLDA

NAMES = ["lda0", "lda1", "lda2", "lda3"]
OTHER_ORDER = ["lda3", "lda2", "lda1", "lda0"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(8), 10)
    X = rng.normal(size=(8, 4))[y] * 3.0 + rng.normal(size=(80, 4)) * [1.0, 0.5, 2.0, 0.1]
    return Frame(X, NAMES), y


@pytest.fixture(scope="module")
def plda(data):
    return PLDA(max_iterations=3).fit(*data)


def test_names_are_recorded_and_a_reordered_frame_is_refused(plda, data):
    """Vectors with their columns reordered were enrolled and scored as if in the order of fit:
    other log-likelihood ratios without a word."""
    X, y = data
    assert list(plda.feature_names_in_) == NAMES
    swapped = X.reordered(OTHER_ORDER)
    message = re.escape(f"X's feature names {OTHER_ORDER} differ from those PLDA was fitted with, "
                        f"{NAMES} (the same names in another order)")
    with pytest.raises(ValueError, match=message):
        plda.enroll(swapped, y)
    with pytest.raises(ValueError, match=message):
        plda.log_likelihood(swapped, y)
    models = plda.enroll(X, y)
    with pytest.raises(ValueError, match="probes's feature names"):
        plda.log_likelihood_ratio(models, swapped)
    with pytest.raises(ValueError, match=r"models's feature names"):
        plda.log_likelihood_ratio([X, swapped], X)  # (every model of a list is checked)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (the names of fit: no warning)
        by_name = plda.log_likelihood_ratio(models, X)
    with pytest.warns(UserWarning, match="probes does not have valid feature names, but PLDA"):
        np.testing.assert_array_equal(by_name, plda.log_likelihood_ratio(models, X.values))


def test_arrays_warn_and_a_refit_on_arrays_forgets_the_names(data):
    X, y = data
    plda = PLDA(max_iterations=2).fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plda.log_likelihood_ratio([X.values[:5], X.values[5:10]], X.values[:3])
    assert [str(w.message) for w in caught] == [
        "models does not have valid feature names, but PLDA was fitted with feature names",
        "probes does not have valid feature names, but PLDA was fitted with feature names"]
    plda.fit(X.values, y)
    assert not hasattr(plda, "feature_names_in_")
    with pytest.warns(UserWarning, match="X has feature names, but PLDA was fitted without"):
        plda.enroll(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unfitted PLDA enrols without a word on names
        PLDA().enroll(X)


def test_files_keep_the_names(tmp_path, plda, data):
    X, y = data
    plda.save(tmp_path / "p.h5")
    for back in (PLDA.from_hdf5(tmp_path / "p.h5"), emkit.io.load(tmp_path / "p.h5"),
                 PLDA().load(tmp_path / "p.h5")):
        assert back.feature_names_in_.dtype == object and list(back.feature_names_in_) == NAMES
        with pytest.raises(ValueError, match="X's feature names"):
            back.enroll(X.reordered(OTHER_ORDER))
    PLDA(max_iterations=2).fit(X.values, y).save(tmp_path / "plain.h5")
    with h5py.File(tmp_path / "plain.h5", "r") as f:
        assert "feature_names" not in f["fitted"]
    assert not hasattr(PLDA.from_hdf5(tmp_path / "plain.h5"), "feature_names_in_")


@pytest.mark.parametrize("value, problem", [
    (np.array(["a", "b"], dtype=h5py.string_dtype()), r"must have shape \(4,\); found \(2,\)"),
    (np.arange(4), "must hold text"),
])
def test_damaged_names_in_a_file_are_refused_naming_the_dataset(tmp_path, plda, value, problem):
    plda.save(tmp_path / "p.h5")
    with h5py.File(tmp_path / "p.h5", "a") as f:
        del f["fitted/feature_names"]
        f["fitted/feature_names"] = value
    with pytest.raises(InvalidFileError, match=rf"p\.h5: dataset '/fitted/feature_names' {problem}"):
        PLDA.from_hdf5(tmp_path / "p.h5")
