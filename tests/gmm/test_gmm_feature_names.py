"""GMMMachine keeps the column names of the DataFrame it was fitted on (``feature_names_in_``) and
checks them as scikit-learn does; its files keep them."""

import re
import warnings

import h5py
import numpy as np
import pytest
from data_frames import Frame

import emkit.io
from emkit.gmm import GMMMachine
from emkit.io import InvalidFileError

NAMES = ["mfcc0", "mfcc1", "energy"]
OTHER_ORDER = ["energy", "mfcc0", "mfcc1"]


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    return Frame(rng.normal(size=(200, 3)) * [1.0, 2.0, 5.0] + [0.0, 1.0, 10.0], NAMES)


def _fit(X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # (k-means / EM: few steps)
        return GMMMachine(2, max_fitting_steps=3, **kwargs).fit(X)


@pytest.fixture(scope="module")
def gmm(frame):
    return _fit(frame)


def test_names_are_recorded_and_a_reordered_frame_is_refused(gmm, frame):
    """A frame with its columns reordered was scored as if in the order of fit: other numbers
    without a word (the log-likelihood of the energy read as mfcc0's)."""
    assert list(gmm.feature_names_in_) == NAMES
    swapped = frame.reordered(OTHER_ORDER)
    message = re.escape(f"data's feature names {OTHER_ORDER} differ from those GMMMachine was fitted "
                        f"with, {NAMES} (the same names in another order)")
    for score in (gmm.log_likelihood, gmm.log_weighted_likelihood):
        with pytest.raises(ValueError, match=message):
            score(swapped)
    with pytest.raises(ValueError, match="X's feature names"):
        gmm.acc_stats(swapped)
    with pytest.raises(ValueError, match="X's feature names"):
        gmm.transform([frame, swapped])  # (every session is checked)
    with pytest.raises(ValueError, match=r"X's feature names \['a', 'b', 'c'\] differ from those"):
        gmm.acc_stats(Frame(frame.values, ["a", "b", "c"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (the names of fit: no warning)
        by_name = gmm.log_likelihood(frame)
    with pytest.warns(UserWarning):
        np.testing.assert_array_equal(by_name, gmm.log_likelihood(frame.values))


def test_arrays_given_to_a_machine_fitted_with_names_warn_once(gmm, frame):
    with pytest.warns(UserWarning, match="data does not have valid feature names, but GMMMachine"):
        gmm.log_likelihood(frame.values)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stats = gmm.transform([frame.values[:50], frame.values[50:]])
    assert [str(w.message) for w in caught] == [
        "X does not have valid feature names, but GMMMachine was fitted with feature names"]
    assert len(stats) == 2 and stats[0].t == 50


def test_a_refit_on_an_array_forgets_the_names(frame):
    gmm = _fit(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        gmm.fit(frame.values)
    assert not hasattr(gmm, "feature_names_in_")
    with pytest.warns(UserWarning, match="data has feature names, but GMMMachine was fitted without"):
        gmm.log_likelihood(frame)


def test_map_adaptation_checks_the_frames_against_the_ubm(gmm, frame):
    with pytest.raises(ValueError, match="X's feature names .* differ from those GMMMachine"):
        GMMMachine(2, trainer="map", ubm=gmm, max_fitting_steps=1).fit(frame.reordered(OTHER_ORDER))
    adapted = GMMMachine(2, trainer="map", ubm=gmm, max_fitting_steps=1).fit(frame)
    assert list(adapted.feature_names_in_) == NAMES


def test_files_keep_the_names(tmp_path, gmm, frame):
    """A GMM read back forgot them: the reordered frame above was scored again."""
    gmm.save(tmp_path / "m.h5")
    in_place = GMMMachine(2)
    in_place.load(tmp_path / "m.h5")
    for back in (GMMMachine.from_hdf5(tmp_path / "m.h5"), emkit.io.load(tmp_path / "m.h5"), in_place):
        assert back.feature_names_in_.dtype == object and list(back.feature_names_in_) == NAMES
        with pytest.raises(ValueError, match="data's feature names"):
            back.log_likelihood(frame.reordered(OTHER_ORDER))
    adapted = GMMMachine(2, trainer="map", ubm=gmm, max_fitting_steps=1).fit(frame)
    adapted.save(tmp_path / "map.h5")
    back = GMMMachine.from_hdf5(tmp_path / "map.h5")
    assert list(back.feature_names_in_) == list(back.ubm.feature_names_in_) == NAMES
    _fit(frame.values).save(tmp_path / "plain.h5")
    with h5py.File(tmp_path / "plain.h5", "r") as f:
        assert "feature_names" not in f["emkit_fit"]
    assert not hasattr(GMMMachine.from_hdf5(tmp_path / "plain.h5"), "feature_names_in_")


@pytest.mark.parametrize("value, problem", [
    (np.array(["a", "b"], dtype=h5py.string_dtype()), r"must have shape \(3,\); found \(2,\)"),
    (np.array([1.0, 2.0, 3.0]), "must hold text"),
])
def test_damaged_names_in_a_file_are_refused_naming_the_dataset(tmp_path, gmm, value, problem):
    gmm.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        del f["emkit_fit/feature_names"]
        f["emkit_fit/feature_names"] = value
    with pytest.raises(InvalidFileError, match=rf"m\.h5: dataset '/emkit_fit/feature_names' {problem}"):
        GMMMachine.from_hdf5(tmp_path / "m.h5")
