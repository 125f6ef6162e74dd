"""``save`` never writes a file that emkit would refuse to load: a parameter assigned, or given
to ``set_params``, that disagrees with the rest of the model (more centroids than n_clusters, a U
of another rank, an i-vector T for another dim_t...) raises ValueError naming the dataset, and
nothing is written, into a path or an open h5py group (left as it was)."""

import _model_files as mf
import h5py
import numpy as np
import pytest

import emkit.io
from emkit.io import read_back
from emkit import PLDA, GMMMachine, IVectorMachine, ISVMachine, JFAMachine, KMeansMachine


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    ubm = GMMMachine(2, max_fitting_steps=3).fit(X)
    stats = [ubm.acc_stats(X[i * 10:(i + 1) * 10]) for i in range(6)]
    return X, ubm, stats


def _kmeans(d):
    return KMeansMachine(2, max_iter=3).fit(d[0])


def _gmm(d):
    return GMMMachine(2, max_fitting_steps=2).fit(d[0])


def _isv(d):
    return ISVMachine(1, ubm=d[1], em_iterations=1).fit(d[2], [0, 0, 1, 1, 2, 2])


def _jfa(d):
    return JFAMachine(1, 1, ubm=d[1], em_iterations=1).fit(d[2], [0, 0, 1, 1, 2, 2])


def _ivector(d):
    return IVectorMachine(d[1], 2, max_iterations=1, random_state=0).fit(d[2])


def _plda(d):
    return PLDA(dim_f=1, dim_g=1, max_iterations=1).fit(d[0], np.repeat([0, 1, 2], 20))


def _map_gmm(d):
    return GMMMachine(2, trainer="map", ubm=d[1], max_fitting_steps=1).fit(d[0])


def _three_gaussians():
    ubm = GMMMachine(3)
    ubm.means, ubm.variances, ubm.weights = np.eye(3), np.ones((3, 3)), np.full(3, 1 / 3)
    return ubm


def _simplified_plda(d):
    return PLDA(model="simplified", dim_f=1, max_iterations=1).fit(d[0], np.repeat([0, 1, 2], 20))


def _enrolled(d):
    return mf.enrolled()  # gmm-map models of a UBM of C=3 Gaussians, D=2 features


def _backend(d):
    return mf.backend()  # an i-vector machine of dim_t=2 (C=3, D=2), whitening, WCCN, PLDA


CASES = {
    "more centroids than n_clusters": (_kmeans, lambda m: setattr(m, "means", np.zeros((3, 3))),
                                       r"'/fitted/centroids' must have shape \(2, \*\); found \(3, 3\)"),
    "k-means oversampling_factor 0": (_kmeans, lambda m: m.set_params(oversampling_factor=0),
                                      r"'/oversampling_factor' must be > 0"),
    "GMM means of 3 Gaussians": (_gmm, lambda m: setattr(m, "means", np.zeros((3, 3))),
                                 r"'/gaussians/means' must have shape \(2, \*\)"),
    "GMM n_gaussians changed": (_gmm, lambda m: m.set_params(n_gaussians=3),
                                r"'/weights' must have shape \(3,\); found \(2,\)"),
    "GMM trainer": (_gmm, lambda m: m.set_params(trainer="MAP"), r"'/trainer' must be 'ml' or 'map'"),
    "ISV U of rank 2": (_isv, lambda m: setattr(m, "U", np.zeros((6, 2))),
                        r"'/U' must have shape \(6, 1\); found \(6, 2\)"),
    "ISV negative D": (_isv, lambda m: setattr(m, "D", -np.ones(6)), r"'/D' must hold values >= 0"),
    "ISV D negative in its last value": (_isv, lambda m: setattr(m, "D", np.r_[np.ones(5), -1.0]),
                                         r"'/D' must hold values >= 0"),
    "JFA r_V 0": (_jfa, lambda m: m.set_params(r_V=0), r"'/r_V' must be >= 1"),
    "i-vector dim_t changed": (_ivector, lambda m: m.set_params(dim_t=3),
                               r"'/T' must have shape \(2, 3, 3\); found \(2, 3, 2\)"),
    "i-vector negative sigma": (_ivector, lambda m: setattr(m, "sigma", -np.ones((2, 3))),
                                r"'/sigma' must hold values > 0"),
    "i-vector sigma 0 in its last value": (
        _ivector, lambda m: setattr(m, "sigma", np.array([[1.0, 1, 1], [1, 1, 0]])),
        r"'/sigma' must hold values > 0"),
    "PLDA F_ of other D": (_plda, lambda m: setattr(m, "F_", np.zeros((4, 1))),
                           r"'/fitted/F' must have shape \(3, \*\)"),
    # checks of one dataset against another (a UBM's shape, a subspace's columns)
    "MAP GMM of a UBM of 3 Gaussians": (
        _map_gmm, lambda m: m.set_params(ubm=_three_gaussians()),
        r"'/ubm' must be a UBM of the machine's shape \(2, 3\)"),
    "PLDA dim_f changed": (_simplified_plda, lambda m: m.set_params(dim_f=2),
                           r"'/fitted/F' must have 2 columns \(dim_f\); found 1"),
    "enrolled means of 4 Gaussians": (_enrolled,
                                      lambda m: m.arrays.update(means=np.zeros((2, 4, 2))),
                                      r"'/means' must have shape \(2, 3, 2\); found \(2, 4, 2\)"),
    "back-end i-vector dim_t changed": (
        _backend, lambda m: m.ivector.set_params(dim_t=5),
        r"'/ivector/T' must have shape \(3, 2, 5\); found \(3, 2, 2\)"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("how", ["path", "method into a group", "emkit.io.save into a file"])
def test_a_model_its_reader_refuses_is_not_saved(tmp_path, data, case, how):
    make, spoil, problem = CASES[case]
    machine = make(data)
    spoil(machine)
    name = type(machine).__name__
    match = (rf"{name} not saved, nothing was written: emkit would refuse to load the file "
             rf"\(dataset '(/inner)?{problem[1:]}")  # (the dataset's path within the file)
    path = tmp_path / "model.h5"
    if how == "path":
        with pytest.raises(ValueError, match=match):
            machine.save(path)
        assert list(tmp_path.iterdir()) == []
        return
    with h5py.File(path, "w") as f:
        f.attrs["mine"] = 1
        f.create_group("inner").create_dataset("kept", data=[1.0])
        with pytest.raises(ValueError, match=match):
            if how == "emkit.io.save into a file":
                emkit.io.save(machine, f)
            else:
                machine.save(f["inner"])
    with h5py.File(path, "r") as f:  # as it was
        assert list(f) == ["inner"] and dict(f.attrs) == {"mine": 1}
        assert list(f["inner"]) == ["kept"] and not f["inner"].attrs


@pytest.mark.parametrize("case", list(CASES))
def test_refused_as_well_when_read_back_in_small_blocks(tmp_path, data, case, monkeypatch):
    """The read-back compares and checks each array block by block (emkit.io.read_back): blocks
    of 3 values refuse the same models, a bad value in the last block included."""
    monkeypatch.setattr(read_back, "BLOCK_BYTES", 24)
    make, spoil, problem = CASES[case]
    machine = make(data)
    spoil(machine)
    with pytest.raises(ValueError, match=rf"nothing was written: .* \(dataset '{problem[1:]}"):
        machine.save(tmp_path / "model.h5")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("make", [_kmeans, _gmm, _isv, _jfa, _ivector, _plda, _enrolled, _backend])
def test_consistent_models_are_saved_and_load_as_before(tmp_path, data, make):
    machine = make(data)
    machine.save(tmp_path / "model.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        machine.save(f.create_group("inner"))
    for loaded in (type(machine).from_hdf5(tmp_path / "model.h5"),
                   emkit.io.load(tmp_path / "model.h5")):
        assert type(loaded) is type(machine)
    with h5py.File(tmp_path / "other.h5", "r") as f:
        assert type(type(machine).from_hdf5(f["inner"])) is type(machine)
