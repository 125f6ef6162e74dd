"""``ubm_kwargs`` of ISV/JFA machines go into their files as JSON: numpy scalars included."""

import logging

import h5py
import numpy as np
import pytest

from emkit.factor_analysis import ISVMachine, JFAMachine
from emkit.gmm import GMMMachine


@pytest.mark.parametrize("make", [lambda: ISVMachine(1), lambda: JFAMachine(1, 1)])
def test_numpy_scalars_in_ubm_kwargs_are_saved_as_python_numbers(tmp_path, caplog, make):
    """They were dropped, with 'ubm_kwargs is not JSON-serialisable and was not saved' logged: the
    reloaded machine had ubm_kwargs None (fit_using_array without a UBM: a TypeError)."""
    kwargs = {"n_gaussians": np.int64(5), "convergence_threshold": np.float64(0.1),
              "max_fitting_steps": np.int32(3), "mean_var_update_threshold": np.float32(0.25),
              "update_variances": np.bool_(True), "trainer": np.str_("ml")}
    machine = make().set_params(ubm_kwargs=kwargs)
    with caplog.at_level(logging.WARNING, logger="emkit"):
        machine.save(tmp_path / "m.h5")
    assert "ubm_kwargs" not in caplog.text
    back = type(machine).from_hdf5(tmp_path / "m.h5").ubm_kwargs
    assert back == {"n_gaussians": 5, "convergence_threshold": 0.1, "max_fitting_steps": 3,
                    "mean_var_update_threshold": 0.25, "update_variances": True, "trainer": "ml"}
    assert [type(v) for v in back.values()] == [int, float, int, float, bool, str]
    assert GMMMachine(**back).get_params() == GMMMachine(**kwargs).get_params()


@pytest.mark.parametrize("value", [np.complex128(1j), np.datetime64("2020-01-01"), np.bytes_(b"x"),
                                   object()])
def test_values_json_cannot_hold_are_still_left_out_with_a_warning(tmp_path, caplog, value):
    machine = ISVMachine(1).set_params(ubm_kwargs={"n_gaussians": 2, "other": value})
    with caplog.at_level(logging.WARNING, logger="emkit"):
        machine.save(tmp_path / "m.h5")
    assert "ISVMachine.save: ubm_kwargs is not JSON-serialisable and was not saved" in caplog.text
    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert "ubm_kwargs" not in f.attrs
    assert ISVMachine.from_hdf5(tmp_path / "m.h5").ubm_kwargs is None


def test_a_ubm_kwargs_that_contains_itself_is_left_out_with_a_warning(tmp_path, caplog):
    """(json.dumps raises ValueError for it, which went through save uncaught)"""
    kwargs = {"n_gaussians": 2}
    kwargs["self"] = kwargs
    with caplog.at_level(logging.WARNING, logger="emkit"):
        ISVMachine(1).set_params(ubm_kwargs=kwargs).save(tmp_path / "m.h5")
    assert "ubm_kwargs is not JSON-serialisable" in caplog.text
    assert ISVMachine.from_hdf5(tmp_path / "m.h5").ubm_kwargs is None
