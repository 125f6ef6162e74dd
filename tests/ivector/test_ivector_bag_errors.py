"""A bad item of a dask bag that is not cached (``transform``, ``fit`` with ``dask_cache="off"``,
``e_step``) is named by its partition and its index there: its index in the whole bag would take
a pass more to know, and the index within its partition alone (``X[2]`` for item 7 of a bag of
two partitions) named another item of the bag."""

import re

import dask
import numpy as np
import pytest
from ivector_cases import small_ubm_and_stats

import emkit
from emkit.ivector import IVectorMachine, e_step

db = pytest.importorskip("dask.bag")


@pytest.fixture(scope="module")
def machine_and_stats():
    ubm, stats = small_ubm_and_stats()
    return IVectorMachine(ubm, dim_t=2, max_iterations=1).fit(stats), stats


def _with_nan_in_item_7(stats):
    stats = [s.copy() for s in stats]
    stats[7].n[1] = np.nan  # item 2 of partition 1 (items 5-9) of a bag of two partitions
    return db.from_sequence(stats, npartitions=2)


NAN_IN_ITEM_7 = "holds statistics with NaN or infinity: {}[item 2 of partition 1].n"


def test_transform_names_the_partition_of_a_bad_item(machine_and_stats):
    machine, stats = machine_and_stats
    ivectors = machine.transform(_with_nan_in_item_7(stats))
    with dask.config.set(scheduler="synchronous"):
        with pytest.raises(ValueError, match="^" + re.escape("X " + NAN_IN_ITEM_7.format("X")) + "$"):
            ivectors.compute()
        good = np.array(machine.transform(db.from_sequence(stats, npartitions=2)).compute())
    np.testing.assert_array_equal(good, machine.transform(stats))


def test_transform_names_the_partition_of_an_item_that_is_not_statistics(machine_and_stats):
    machine, stats = machine_and_stats
    bag = db.from_sequence(stats[:8] + [3] + stats[9:], npartitions=2)
    with dask.config.set(scheduler="synchronous"):
        with pytest.raises(TypeError, match=r"^X\[item 3 of partition 1\] must be a GMMStats; got int$"):
            machine.transform(bag).compute()


def test_fit_without_a_cache_names_the_partition_of_a_bad_item(machine_and_stats):
    machine, stats = machine_and_stats
    with dask.config.set(scheduler="synchronous"), emkit.config_context(dask_cache="off"):
        with pytest.raises(ValueError, match="^" + re.escape("X " + NAN_IN_ITEM_7.format("X")) + "$"):
            IVectorMachine(machine.ubm, dim_t=2, max_iterations=1).fit(_with_nan_in_item_7(stats))


def test_a_cached_bag_still_names_the_index_in_the_whole_bag(machine_and_stats):
    machine, stats = machine_and_stats
    with dask.config.set(scheduler="synchronous"), emkit.config_context(dask_cache="memory"):
        with pytest.raises(ValueError, match=r"^X holds statistics with NaN or infinity: X\[7\]\.n$"):
            IVectorMachine(machine.ubm, dim_t=2, max_iterations=1).fit(_with_nan_in_item_7(stats))


def test_e_step_of_a_bag_names_the_partition_of_a_bad_item(machine_and_stats):
    machine, stats = machine_and_stats
    with dask.config.set(scheduler="synchronous"):
        with pytest.raises(ValueError, match="^" + re.escape("data " + NAN_IN_ITEM_7.format("data")) + "$"):
            e_step(machine, _with_nan_in_item_7(stats))
