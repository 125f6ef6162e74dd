"""Saving into (or loading from) an h5py handle that cannot be used says why, naming the file."""

import h5py
import numpy as np
import pytest

import emkit.io
from emkit.gmm import GMMMachine
from emkit.plda import PLDA
from emkit.stats import GMMStats


def _objects():
    gmm = GMMMachine(2)
    gmm.means = np.zeros((2, 3))
    gmm.variances = np.ones((2, 3))
    gmm.weights = np.array([0.5, 0.5])
    return {"stats": GMMStats.from_arrays(np.ones(2), np.ones((2, 3))), "gmm": gmm, "plda": PLDA()}


@pytest.mark.parametrize("kind", ["stats", "gmm", "plda"])
@pytest.mark.parametrize("where", ["root", "group"])
@pytest.mark.parametrize("how", ["method", "emkit.io.save"])
def test_saving_into_a_file_open_read_only_names_the_file_and_the_mode(tmp_path, kind, where, how):
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f:
        f.create_group("inner")
    obj = _objects()[kind]
    with h5py.File(path, "r") as f:
        target = f if where == "root" else f["inner"]
        save = obj.save if how == "method" else (lambda t: emkit.io.save(obj, t))
        with pytest.raises(ValueError, match=r"model\.h5 is open read-only \(h5py mode 'r'\): "
                                             r"open it with mode 'r\+' or 'a'"):
            save(target)
    with h5py.File(path, "r") as f:  # untouched
        assert list(f) == ["inner"] and not f.attrs and not f["inner"].attrs and not list(f["inner"])


def test_a_file_open_for_appending_is_saved_into(tmp_path):
    path = tmp_path / "model.h5"
    h5py.File(path, "w").close()
    stats = _objects()["stats"]
    with h5py.File(path, "a") as f:
        stats.save(f.create_group("inner"))
    with h5py.File(path, "r") as f:
        assert GMMStats.from_hdf5(f["inner"]) == stats


def test_a_closed_file_is_refused_as_closed_on_save_and_load(tmp_path):
    path = tmp_path / "model.h5"
    _objects()["stats"].save(path)
    f = h5py.File(path, "r")
    f.close()
    with pytest.raises(ValueError, match="hdf5 is a closed h5py File/Group"):
        _objects()["stats"].save(f)
    with pytest.raises(ValueError, match="hdf5 is a closed h5py File/Group"):
        GMMStats.from_hdf5(f)
    with pytest.raises(ValueError, match="hdf5 is a closed h5py File/Group"):
        emkit.io.load(f)
