"""Model files whose every dataset reads well but whose values or parts do not make a usable model:
weights stored in a narrow float type, duplicate model ids, hostile enrolment parameters, machines
without the parts enrolment needs, PLDA parameters that contradict each other."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

import _model_files as mf
from emkit import GMMMachine
from emkit.io import InvalidFileError


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    return mf.write_all(tmp_path_factory.mktemp("valid"))


def _copy(valid, tmp_path, kind, change):
    path = tmp_path / f"bad_{kind}.h5"
    shutil.copy(valid[kind], path)
    with h5py.File(path, "r+") as f:
        change(f)
    return path


def _replace(name, value):
    def change(f):
        del f[name]
        f[name] = value
    return change


def _short_error(info, path, *named):
    message = str(info.value)
    assert str(path) in message and len(message) < 400 + len(str(path)), message
    for part in named:
        assert part in message, message


# ---------------------------------------------------------------------------------------------
# GMM weights stored as float16: the tolerance stays far below 1
# ---------------------------------------------------------------------------------------------


def _gmm_with_weights(tmp_path, weights):
    C = weights.size
    m = GMMMachine(C)
    m.means, m.variances, m.weights = np.zeros((C, 2)), np.ones((C, 2)), np.full(C, 1 / C)
    path = tmp_path / "gmm.h5"
    m.save(path)
    with h5py.File(path, "r+") as f:
        _replace("weights", weights)(f)
    return path


@pytest.mark.parametrize("total", [0.0, 2.0, 0.95])
def test_float16_weights_far_from_one_are_refused(tmp_path, total):
    C = 256  # 4 C eps(float16) = 1: the old tolerance let any sum through
    path = _gmm_with_weights(tmp_path, np.full(C, total / C).astype(np.float16))
    with pytest.raises(InvalidFileError, match="'/weights' must hold weights summing to 1") as info:
        GMMMachine.from_hdf5(path)
    _short_error(info, path)


@pytest.mark.parametrize("C", [256, 2048])
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_real_weights_stored_in_a_narrow_type_still_load(tmp_path, C, dtype):
    weights = np.random.default_rng(C).dirichlet(np.ones(C)).astype(dtype)
    weights = weights / weights.sum()  # normalised in the narrow type too
    path = _gmm_with_weights(tmp_path, weights)
    loaded = GMMMachine.from_hdf5(path)
    assert np.isfinite(loaded.log_likelihood(np.zeros((2, 2)))).all()


# ---------------------------------------------------------------------------------------------
# enrolled models: duplicate ids, enrolment parameters
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ids", [[b"alice", b"alice"], [b"bob", b"x" * 50_000, b"x" * 50_000]])
def test_enrolled_models_with_a_duplicate_id_are_refused(valid, tmp_path, ids):
    path = _copy(valid, tmp_path, "enrolled", _replace("model_ids", np.array(ids)))
    with pytest.raises(InvalidFileError, match="'/model_ids' lists model '.*' more than once") as info:
        mf.LOADERS["enrolled"](path)
    _short_error(info, path)


@pytest.mark.parametrize("value", [-1.0, 0.0, "text", np.array([4.0, 4.0])])
def test_enrolled_models_with_a_hostile_relevance_factor_are_refused(valid, tmp_path, value):
    def change(f):
        f.attrs["relevance_factor"] = value
    path = _copy(valid, tmp_path, "enrolled", change)
    with pytest.raises(InvalidFileError) as info:
        mf.LOADERS["enrolled"](path)
    _short_error(info, path, "relevance_factor")


def test_enrolled_models_keep_a_valid_relevance_factor(valid, tmp_path):
    def change(f):
        f.attrs["relevance_factor"] = np.int64(7)
    models = mf.LOADERS["enrolled"](_copy(valid, tmp_path, "enrolled", change))
    assert models.parameters["relevance_factor"] == 7.0
    assert models.scorer().relevance_factor == 7.0


def test_enrolled_models_with_a_duplicate_id_are_not_saved(tmp_path):
    models = mf.enrolled()
    models.model_ids = ["alice", "alice"]
    with pytest.raises(ValueError, match="not unique"):
        models.save(tmp_path / "models.h5")
    assert not (tmp_path / "models.h5").exists()
