"""The reference's namespace beyond its classes: submodules as attributes of the package,
``utils``, ISV's V and the i-vector machine's bob tags (bob.learn.em 3.3.1, sections 0.2, 1, 2)."""

import dask.array as da
import numpy as np
import pytest

import emkit
from emkit import GMMMachine, ISVMachine, IVectorMachine
from emkit.utils import array_to_delayed_list, check_and_persist_dask_input


@pytest.mark.parametrize("name", ["factor_analysis", "gmm", "ivector", "kmeans", "utils", "wccn",
                                  "whitening"])
def test_submodules_are_attributes_of_the_package(name):
    module = getattr(emkit, name)
    assert module.__name__ == f"emkit.{name}"
    assert name in emkit.__all__


def test_linear_scoring_stays_the_function():
    import emkit.linear_scoring  # binding the submodule must not replace the function

    assert callable(emkit.linear_scoring) and emkit.linear_scoring.__name__ == "linear_scoring"


def test_check_and_persist_dask_input():
    is_dask, out = check_and_persist_dask_input([[1.0, 2.0], [3.0, 4.0]])
    assert is_dask is False and isinstance(out, np.ndarray) and out.shape == (2, 2)
    x = da.from_array(np.arange(12.0).reshape(6, 2), chunks=(2, 2))
    is_dask, out = check_and_persist_dask_input(x)
    assert is_dask is True and isinstance(out, da.Array)
    np.testing.assert_array_equal(out.compute(), np.arange(12.0).reshape(6, 2))
    is_dask, out = check_and_persist_dask_input(x, persist=False)
    assert out is x


def test_array_to_delayed_list():
    x = da.from_array(np.arange(12.0).reshape(6, 2), chunks=(2, 2))
    parts = array_to_delayed_list(x, True)
    assert len(parts) == 3
    np.testing.assert_array_equal(parts[1].compute(), [[4.0, 5.0], [6.0, 7.0]])
    y = np.zeros((2, 2))
    assert array_to_delayed_list(y, False) is y
    with pytest.raises(TypeError, match="data must be a dask array when input_is_dask is True"):
        array_to_delayed_list(y, True)


def _ubm():
    ubm = GMMMachine(2)
    ubm.means, ubm.variances = np.zeros((2, 3)), np.ones((2, 3))
    return ubm


def test_isv_V_is_the_integer_zero():
    isv = ISVMachine(2, ubm=_ubm())
    assert isv.V == 0 and isinstance(isv.V, int)
    assert isv.U.shape == (6, 2)  # (U and D are the drawn ones, as before)


def test_ivector_machine_has_the_reference_bob_tags():
    tags = IVectorMachine(_ubm())._more_tags()
    assert tags == {"requires_fit": True, "bob_fit_supports_dask_bag": True}
