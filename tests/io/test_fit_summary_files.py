"""Files keep the summary of the last fit: ``n_iter_``, ``converged_`` (GMM, ISV, JFA,
i-vectors), ``classes_`` (ISV/JFA) and ``log_likelihood_`` (i-vectors); files without it leave
the attributes unset."""

import logging
import warnings

import h5py
import numpy as np
import pytest
from _parity import DATA

import emkit.io
from emkit.factor_analysis import ISVMachine, JFAMachine
from emkit.gmm import GMMMachine
from emkit.io import InvalidFileError
from emkit.ivector import IVectorMachine
from emkit.wccn import WCCN

SUMMARY = ("n_iter_", "converged_", "classes_", "log_likelihood_")


@pytest.fixture(scope="module")
def ubm_and_stats():
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (not converged in 3 steps)
        ubm = GMMMachine(2, random_state=0, max_fitting_steps=3).fit(rng.standard_normal((300, 2)))
    return ubm, ubm.transform([rng.standard_normal((20, 2)) for _ in range(6)])


def _fitted(name, ubm, stats):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "GMMMachine":
            return ubm
        if name == "ISVMachine":
            return ISVMachine(1, ubm=ubm, em_iterations=2).fit(stats, ["a", "b", "a", "b", "c", "c"])
        if name == "JFAMachine":
            return JFAMachine(1, 1, ubm=ubm, em_iterations=2).fit(stats, [5, 1, 5, 1, 9, 9])
        return IVectorMachine(ubm, dim_t=2, max_iterations=2).fit(stats)


@pytest.mark.parametrize("name", ["GMMMachine", "ISVMachine", "JFAMachine", "IVectorMachine"])
def test_the_fit_summary_reloads_as_it_was(tmp_path, ubm_and_stats, name):
    machine = _fitted(name, *ubm_and_stats)
    kept = {a: getattr(machine, a) for a in SUMMARY if hasattr(machine, a)}
    assert {"n_iter_", "converged_"} <= set(kept)
    emkit.io.save(machine, tmp_path / "m.h5")
    back = emkit.io.load(tmp_path / "m.h5")
    in_place = type(machine).__new__(type(machine))
    in_place.__dict__.update(machine.__dict__)
    in_place.load(tmp_path / "m.h5")
    for loaded in (back, in_place):
        assert {a for a in SUMMARY if hasattr(loaded, a)} == set(kept)
        for a, value in kept.items():
            got = getattr(loaded, a)
            assert type(got) is type(value) or isinstance(value, np.ndarray), a
            np.testing.assert_array_equal(got, value)
    assert back.n_iter_ == 2 if name != "GMMMachine" else back.n_iter_ == 3


def test_reference_files_and_unfitted_machines_leave_the_summary_unset(tmp_path):
    machine = GMMMachine.from_hdf5(DATA / "gmm" / "ref_gmm_ml_thr_cd.h5")
    assert not any(hasattr(machine, a) for a in SUMMARY)
    machine.save(tmp_path / "m.h5")  # never fitted: no group
    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert "emkit_fit" not in f
    assert not any(hasattr(GMMMachine.from_hdf5(tmp_path / "m.h5"), a) for a in SUMMARY)


def test_labels_of_mixed_types_are_not_saved_and_say_so(tmp_path, ubm_and_stats, caplog):
    ubm, stats = ubm_and_stats
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        isv = ISVMachine(1, ubm=ubm, em_iterations=1).fit(stats, ["a", 1, "a", 1, (2, 3), (2, 3)])
    with caplog.at_level(logging.WARNING, logger="emkit"):
        isv.save(tmp_path / "isv.h5")
    assert "classes_ holds labels that are not all numbers or all text" in caplog.text
    back = ISVMachine.from_hdf5(tmp_path / "isv.h5")
    assert not hasattr(back, "classes_") and back.n_iter_ == 1


def test_wccn_keeps_integer_labels_given_as_a_list(tmp_path):
    X = np.random.default_rng(1).standard_normal((12, 2))
    wccn = WCCN().fit(X, [3, 1, 2] * 4)
    emkit.io.save(wccn, tmp_path / "wccn.h5")
    classes = emkit.io.load(tmp_path / "wccn.h5").classes_
    assert classes.dtype == np.int64
    np.testing.assert_array_equal(classes, wccn.classes_)
    assert list(wccn.classes_) == [3, 1, 2]  # (an object array of the list's ints)


@pytest.mark.parametrize("name, value, problem", [
    ("n_iter", np.int64(-1), "'/emkit_fit/n_iter' must be >= 0"),
    ("converged", np.int64(2), "'/emkit_fit/converged' must hold booleans"),
    ("log_likelihood", np.array([1.0, np.nan]), "'/emkit_fit/log_likelihood' holds NaN"),
    ("classes", np.zeros(0, dtype=np.int64), "'/emkit_fit/classes' must hold at least one label"),
])
def test_a_damaged_fit_summary_is_refused_naming_the_dataset(tmp_path, ubm_and_stats, name, value,
                                                             problem):
    machine = _fitted("IVectorMachine", *ubm_and_stats)
    machine.save(tmp_path / "iv.h5")
    with h5py.File(tmp_path / "iv.h5", "a") as f:
        f["emkit_fit"].pop(name, None)
        f["emkit_fit"][name] = value
    with pytest.raises(InvalidFileError, match=rf"iv\.h5: dataset {problem}"):
        IVectorMachine.from_hdf5(tmp_path / "iv.h5")
