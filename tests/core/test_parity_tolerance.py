"""The suite's parity measure (tests/_parity.py): scaled to the array, not element-wise."""

import numpy as np
import pytest
from _parity import assert_parity, max_rel_diff


def elementwise_rel(a, b):
    return float(np.max(np.abs(a - b) / np.abs(b)))


def test_small_entry_of_an_ill_conditioned_result_passes():
    # issue 10 item 1: an entry of 1.1e-4 with an absolute error of 4e-14 in an array of scale 1
    desired = np.array([[1.0, -0.3], [1.1e-4, 0.7]])
    actual = desired + np.array([[0.0, 0.0], [4e-14, 0.0]])
    assert elementwise_rel(actual, desired) == pytest.approx(4e-14 / 1.1e-4, rel=1e-3)  # 3.6e-10
    assert elementwise_rel(actual, desired) > 1e-10  # the old element-wise check fails ...
    assert max_rel_diff(actual, desired) == pytest.approx(4e-14, rel=1e-3)  # ... the scaled one passes
    assert_parity(actual, desired)


def test_real_errors_still_fail():
    desired = np.array([[1.0, -0.3], [1.1e-4, 0.7]])
    wrong_small = desired + np.array([[0.0, 0.0], [1e-8, 0.0]])  # 1e-8 of the array's scale
    assert max_rel_diff(wrong_small, desired) == pytest.approx(1e-8, rel=1e-6)
    with pytest.raises(AssertionError, match="1e-08 > 1e-10"):
        assert_parity(wrong_small, desired)
    wrong_large = desired * (1 + 2e-10)
    with pytest.raises(AssertionError):
        assert_parity(wrong_large, desired)
    with pytest.raises(AssertionError):
        assert_parity(np.where(desired > 0.5, np.nan, desired), desired)  # NaN never passes
    with pytest.raises(AssertionError):
        assert_parity(desired[:1], desired)  # nor a shape mismatch


def test_condition_number_scales_the_tolerance_and_zero_arrays():
    desired = np.array([1.0, 2.0])
    actual = desired + [0.0, 2e-8]
    with pytest.raises(AssertionError):
        assert_parity(actual, desired)
    assert_parity(actual, desired, cond=1e3)  # 1e-8 <= 1e-10 * 1e3
    assert max_rel_diff(np.zeros(3), np.zeros(3)) == 0.0
    assert max_rel_diff([0.0, 1e-300], np.zeros(2)) == 1e-300  # all-zero reference: absolute
    assert max_rel_diff(np.empty((0, 3)), np.empty((0, 3))) == 0.0
