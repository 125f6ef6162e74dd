"""ISV/JFA HDF5 persistence in emkit's versioned layout."""

import h5py
import numpy as np
import pytest
from factor_analysis_cases import load_case, machine, make_stats, trained

from emkit.factor_analysis import ISVMachine, JFAMachine


@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_round_trip_through_a_path(tmp_path, kind):
    d = load_case("small")
    m = trained(kind, d, enroll_iterations=2)
    m.ubm_kwargs = {"n_gaussians": 4}
    path = tmp_path / f"{kind}.h5"
    m.save(path)
    with h5py.File(path, "r") as f:
        assert f.attrs["emkit_class"] == type(m).__name__ and f.attrs["emkit_format_version"] == 1
        assert "ubm" in f
    loaded = type(m).from_hdf5(path)
    assert loaded.get_params(deep=False).keys() == m.get_params(deep=False).keys()
    for key, value in m.get_params(deep=False).items():
        if key != "ubm":
            assert loaded.get_params(deep=False)[key] == value, key
    assert loaded.ubm.is_similar_to(m.ubm, rtol=0, atol=0)
    for name in ("U", "V", "D") if kind == "jfa" else ("U", "D"):
        assert np.array_equal(getattr(loaded, name), getattr(m, name))
    enroll, probes = make_stats(d, "enroll_"), make_stats(d, "probe_")
    assert loaded.score(loaded.enroll(enroll), probes) == m.score(m.enroll(enroll), probes)
    # load() replaces the state of an existing machine
    other = ISVMachine(9) if kind == "isv" else JFAMachine(9, 9)
    other.load(path)
    assert other.r_U == m.r_U and np.array_equal(other.U, m.U)


def test_round_trip_through_an_open_group_and_unfitted_machines(tmp_path):
    d = load_case("tiny")
    isv = trained("isv", d)
    jfa = machine("jfa", d, random_state=None)  # not fitted, random_state None
    with h5py.File(tmp_path / "both.h5", "w") as f:
        isv.save(f.create_group("isv"))
        jfa.save(f.create_group("jfa"))
    with h5py.File(tmp_path / "both.h5", "r") as f:
        isv2 = ISVMachine.from_hdf5(f["isv"])
        jfa2 = JFAMachine.from_hdf5(f["jfa"])
    assert np.array_equal(isv2.U, isv.U)
    assert jfa2.random_state is None and not jfa2.__sklearn_is_fitted__()
    assert jfa2.ubm.is_similar_to(jfa.ubm)


def test_wrong_class_or_version(tmp_path):
    d = load_case("tiny")
    path = tmp_path / "isv.h5"
    trained("isv", d).save(path)
    with pytest.raises(ValueError, match="not a JFAMachine"):
        JFAMachine.from_hdf5(path)
    with h5py.File(path, "a") as f:
        f.attrs["emkit_format_version"] = 99
    with pytest.raises(ValueError, match="version 99 is newer"):
        ISVMachine.from_hdf5(path)
    with pytest.raises(FileNotFoundError):
        ISVMachine.from_hdf5(tmp_path / "missing.h5")


def test_failed_save_leaves_no_file(tmp_path):
    m = ISVMachine(2)
    m.ubm_kwargs = {"n_gaussians": 2}
    m.r_U = "two"  # np.int64("two") fails half-way through writing
    with pytest.raises(ValueError):
        m.save(tmp_path / "broken.h5")
    assert list(tmp_path.iterdir()) == []
