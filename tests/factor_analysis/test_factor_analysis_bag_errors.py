"""A bad item of a dask bag that ISV or JFA reads again at every pass (``dask_cache="off"``) is
named by its partition and its index there, as the i-vector machine names it: the index within
its partition alone (``X[2]`` for item 7 of a bag of two partitions) named another item."""

import re

import dask
import numpy as np
import pytest
from ivector_cases import small_ubm_and_stats

import emkit
from emkit.factor_analysis import ISVMachine, JFAMachine

db = pytest.importorskip("dask.bag")


@pytest.fixture(scope="module")
def ubm_and_stats():
    return small_ubm_and_stats()


def _machine(kind, ubm):
    if kind == "isv":
        return ISVMachine(r_U=1, ubm=ubm, em_iterations=1)
    return JFAMachine(ubm=ubm, r_U=1, r_V=1, em_iterations=1)


@pytest.mark.parametrize("kind", ["isv", "jfa"])
@pytest.mark.parametrize("form", ["labels", "pairs"])
def test_a_bad_item_read_at_every_pass_is_named_by_its_partition(ubm_and_stats, kind, form):
    ubm, stats = ubm_and_stats
    stats = [s.copy() for s in stats]
    stats[7].n[1] = np.nan  # item 2 of partition 1 (items 5-9) of a bag of two partitions
    labels = [i % 3 for i in range(10)]
    X, y = (list(zip(labels, stats)), None) if form == "pairs" else (stats, labels)
    message = "X holds statistics with NaN or infinity: X[item 2 of partition 1].n"
    with dask.config.set(scheduler="synchronous"), emkit.config_context(dask_cache="off"):
        with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
            _machine(kind, ubm).fit(db.from_sequence(X, npartitions=2), y)

