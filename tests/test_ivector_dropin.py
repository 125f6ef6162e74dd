"""IVectorMachine used as code written for bob.learn.em 3.3.1 uses it: numpy object arrays of
GMMStats, clone + refit, and statistics far from the origin."""

import numpy as np
import pytest
from sklearn.base import clone
from test_ivector import load_set

from emkit.ivector import IVectorMachine, e_step


@pytest.fixture(scope="module")
def small():
    ubm, cfg, seed, train, test = load_set("small")
    return ubm, cfg, seed, train, test


def test_object_arrays_of_stats(small):
    ubm, cfg, seed, train, test = small
    fitted = IVectorMachine(ubm, random_state=seed, **cfg).fit(train)
    from_array = IVectorMachine(ubm, random_state=seed, **cfg).fit(np.array(train))
    np.testing.assert_array_equal(from_array.T, fitted.T)
    np.testing.assert_array_equal(from_array.sigma, fitted.sigma)
    np.testing.assert_array_equal(fitted.transform(np.array(test)), fitted.transform(test))
    np.testing.assert_array_equal(fitted.project(np.array(test[0])), fitted.project(test[0]))
    a, b = e_step(fitted, np.array(train)), e_step(fitted, train)
    np.testing.assert_array_equal(a.nij_sigma_wij2, b.nij_sigma_wij2)


def test_clone_and_refit(small):
    ubm, cfg, seed, train, _ = small
    fitted = IVectorMachine(ubm, random_state=seed, **cfg).fit(train)
    np.testing.assert_array_equal(clone(fitted).fit(train).T, fitted.T)
