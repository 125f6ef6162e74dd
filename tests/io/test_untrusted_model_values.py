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


# ---------------------------------------------------------------------------------------------
# machines without the parts enrolment needs (the formats let an untrained machine be saved)
# ---------------------------------------------------------------------------------------------


def _delete(*names):
    def change(f):
        for name in names:
            del f[name]
    return change


MISSING = [
    ("isv", ("U",), "U"), ("isv", ("D",), "D"), ("isv", ("ubm",), "ubm"), ("jfa", ("V",), "V"),
    ("ivector", ("T", "sigma"), "T, sigma"), ("backend", ("ivector/T",), "T"),
]


@pytest.mark.parametrize("kind, names, listed", MISSING, ids=[f"{k}-{n[0]}" for k, n, _ in MISSING])
def test_machine_without_a_part_is_refused_for_enrolment(valid, tmp_path, kind, names, listed):
    from emkit.experiment import load_machine

    path = _copy(valid, tmp_path, kind, _delete(*names))
    with pytest.raises(InvalidFileError, match="untrained") as info:
        load_machine(path)
    _short_error(info, path, f"(missing: {listed})")


@pytest.mark.parametrize("kind", ["gmm", "isv", "jfa", "ivector", "backend"])
def test_complete_machines_load_for_enrolment(valid, kind):
    from emkit.experiment import load_machine

    assert load_machine(valid[kind]) is not None


def test_enroll_refuses_an_isv_machine_without_U(valid, tmp_path):
    from click.testing import CliRunner

    from emkit.cli import cli

    path = _copy(valid, tmp_path, "isv", _delete("U"))
    np.save(tmp_path / "u1.npy", np.random.default_rng(0).normal(size=(30, mf.D)))
    (tmp_path / "spk2utt").write_text("alice u1\n")
    out = tmp_path / "models.h5"
    result = CliRunner().invoke(cli, ["enroll", "-m", str(path), "-e", str(tmp_path / "spk2utt"),
                                      "-o", str(out), str(tmp_path / "u1.npy")])
    assert result.exit_code == 1 and not out.exists()
    assert f"{path} holds an untrained ISVMachine (missing: U)" in result.stderr


def test_backend_with_an_unfitted_plda_is_refused(valid, tmp_path):
    path = _copy(valid, tmp_path, "backend", _delete("plda/fitted"))
    with pytest.raises(InvalidFileError, match="'/plda' holds a PLDA that is not fitted") as info:
        mf.LOADERS["backend"](path)
    _short_error(info, path)


def test_backend_with_an_unfitted_plda_is_not_saved(tmp_path):
    from emkit.plda import PLDA

    backend = mf.backend()
    backend.plda = PLDA()
    with pytest.raises(ValueError, match="plda is not fitted"):
        backend.save(tmp_path / "backend.h5")
    assert not (tmp_path / "backend.h5").exists()


def test_enrolled_plda_models_without_their_plda_are_refused(valid, tmp_path):
    from emkit.experiment import enroll

    models = enroll(mf.backend(), ["alice"], [[mf.stats()]], backend="plda")
    path = tmp_path / "models.h5"
    models.save(path)
    with h5py.File(path, "r+") as f:
        del f["machine/plda"]
    with pytest.raises(InvalidFileError, match=r"untrained IVectorBackend \(missing: plda\)") as info:
        mf.LOADERS["enrolled"](path)
    _short_error(info, path)


# ---------------------------------------------------------------------------------------------
# PLDA parameters that contradict each other or overflow scoring
# ---------------------------------------------------------------------------------------------


def _scale(name, factor):
    def change(f):
        f[name][...] = f[name][()] * factor
    return change


PLDA_CASES = [
    ("mean-1e308", "plda", lambda f: f["fitted/mean"].__setitem__(..., 1e308), "/fitted/mean", "beyond"),
    ("F-1e200", "plda", _scale("fitted/F", 1e200), "/fitted/F", "beyond"),
    ("sigma-1e-320", "plda", _replace("fitted/sigma", np.eye(mf.R) * 1e-320), "/fitted/sigma", "variances"),
    ("F-0-columns", "plda", _replace("fitted/F", np.zeros((mf.R, 0))), "/fitted/F", "columns"),
    ("dim_f-not-F", "plda", _replace("dim_f", np.int64(2)), "/fitted/F", "dim_f"),
    ("full-dim_g-not-G", "plda_full", _replace("dim_g", np.int64(2)), "/fitted/G", "dim_g"),
    ("full-sigma-1e-320", "plda_full", _replace("fitted/sigma", np.full(mf.R, 1e-320)), "/fitted/sigma", "variances"),
]


@pytest.mark.parametrize("kind, change, named, problem", [c[1:] for c in PLDA_CASES],
                         ids=[c[0] for c in PLDA_CASES])
def test_plda_parameters_that_cannot_score_are_refused(valid, tmp_path, kind, change, named, problem):
    path = _copy(valid, tmp_path, kind, change)
    with pytest.raises(InvalidFileError, match=problem) as info:
        mf.LOADERS[kind](path)
    _short_error(info, path, f"'{named}'")


@pytest.mark.parametrize("model", ["two-covariance", "simplified", "full"])
def test_fitted_plda_of_every_model_reloads(tmp_path, model):
    from emkit.plda import PLDA

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)) + np.repeat(rng.normal(size=(6, 4)) * 3, 10, axis=0)
    plda = PLDA(model, max_iterations=2).fit(X, np.repeat(np.arange(6), 10))
    plda.save(tmp_path / "plda.h5")
    back = PLDA.from_hdf5(tmp_path / "plda.h5")
    e = back.enroll(X[:3])
    assert np.allclose(back.log_likelihood_ratio(e, X[3:5]), plda.log_likelihood_ratio(e, X[3:5]))
