"""Estimators read from files look fitted as they did when saved: ``n_features_in_`` (and, for
the GMM, derived from the means of any file, the reference's and bob 2.x's included)."""

import warnings

import numpy as np
import pytest
from _parity import DATA
from sklearn.utils.validation import check_is_fitted

import emkit.io
from emkit.factor_analysis import ISVMachine
from emkit.gmm import GMMMachine
from emkit.lda import LDA
from emkit.plda import PLDA
from emkit.wccn import WCCN
from emkit.whitening import Whitening


@pytest.fixture(scope="module")
def frames():
    return np.random.default_rng(0).standard_normal((120, 3))


def _gmm(X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (not converged in 3 steps)
        return GMMMachine(2, max_fitting_steps=3, **kwargs).fit(X)


def test_a_gmm_read_from_a_file_has_the_n_features_in_of_its_fit(tmp_path, frames):
    """GMMMachine.from_hdf5 gave a machine without n_features_in_ (check_is_fitted(m,
    "n_features_in_") raised NotFittedError) though the saved one had it."""
    _gmm(frames).save(tmp_path / "m.h5")
    in_place = GMMMachine(2)
    in_place.load(tmp_path / "m.h5")
    for back in (GMMMachine.from_hdf5(tmp_path / "m.h5"), emkit.io.load(tmp_path / "m.h5"), in_place):
        check_is_fitted(back, "n_features_in_")
        assert back.n_features_in_ == 3 and type(back.n_features_in_) is int
        with pytest.raises(ValueError, match="2 features"):
            back.log_likelihood(frames[:, :2])


@pytest.mark.parametrize("name", ["ref_gmm_ml_thr_cd.h5", "ref_gmm_map.h5", "legacy_gmm.h5"])
def test_gmm_files_of_the_reference_give_n_features_in_from_their_means(name):
    ubm = GMMMachine.from_hdf5(DATA / "gmm" / "ref_gmm_ml_thr_cd.h5")
    machine = GMMMachine.from_hdf5(DATA / "gmm" / name, ubm=ubm if "map" in name else None)
    assert machine.n_features_in_ == machine.means.shape[1] >= 1


def test_the_ubm_inside_a_map_or_isv_file_has_n_features_in_(tmp_path, frames):
    ubm = _gmm(frames)
    rng = np.random.default_rng(1)
    stats = ubm.transform([rng.standard_normal((20, 3)) for _ in range(4)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        isv = ISVMachine(1, ubm=ubm, em_iterations=1).fit(stats, [0, 1, 0, 1])
        adapted = GMMMachine(2, trainer="map", ubm=ubm, max_fitting_steps=2).fit(frames[:30])
    isv.save(tmp_path / "isv.h5")
    adapted.save(tmp_path / "map.h5")
    assert ISVMachine.from_hdf5(tmp_path / "isv.h5").ubm.n_features_in_ == 3
    back = GMMMachine.from_hdf5(tmp_path / "map.h5")
    assert back.n_features_in_ == back.ubm.n_features_in_ == 3


@pytest.mark.parametrize("make", [lambda: PLDA(max_iterations=2), Whitening, WCCN, lambda: LDA(2)])
def test_other_estimators_read_from_files_keep_n_features_in(tmp_path, frames, make):
    y = np.repeat(np.arange(12), 10)
    est = make().fit(frames, y)
    emkit.io.save(est, tmp_path / "e.h5")
    assert emkit.io.load(tmp_path / "e.h5").n_features_in_ == est.n_features_in_ == 3
