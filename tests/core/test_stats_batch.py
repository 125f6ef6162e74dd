"""GMMStats.stack -> StatsBatch: the one way statistics are stacked, validated once."""

import re
import warnings

import numpy as np
import pytest

from emkit import GMMMachine, GMMStats
from emkit.stats import StatsBatch


@pytest.fixture(scope="module")
def sessions():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 3))
    ubm = GMMMachine(4, random_state=0, max_fitting_steps=2, convergence_threshold=None).fit(X)
    return ubm, ubm.transform([X[:90], X[90:200], X[200:]])


def test_stack_copies_every_field_in_order(sessions):
    _, stats = sessions
    batch = GMMStats.stack(stats, second_order=True)
    assert isinstance(batch, StatsBatch)
    assert (len(batch), batch.shape, batch.supervectors.shape) == (3, (4, 3), (3, 12))
    for i, s in enumerate(stats):
        np.testing.assert_array_equal(batch.n[i], s.n)
        np.testing.assert_array_equal(batch.sum_px[i], s.sum_px)
        np.testing.assert_array_equal(batch.sum_pxx[i], s.sum_pxx)
        assert batch.t[i] == s.t and batch.log_likelihood[i] == s.log_likelihood
    assert not np.shares_memory(batch.n, stats[0].n)
    assert GMMStats.stack(stats).sum_pxx is None


def test_take_total_and_to_stats(sessions):
    _, stats = sessions
    batch = GMMStats.stack(stats, second_order=True)
    part = batch.take(np.array([2, 0]))
    np.testing.assert_array_equal(part.sum_px, batch.sum_px[[2, 0]])
    total, expected = batch.total(), stats[0] + stats[1] + stats[2]
    assert total.t == expected.t
    for field in ("n", "sum_px", "sum_pxx"):
        a, b = getattr(total, field), getattr(expected, field)
        assert np.abs(a - b).max() <= 1e-12 * np.abs(b).max()
    assert batch.to_stats() == [GMMStats.from_arrays(s.n, s.sum_px, s.sum_pxx, t=s.t,
                                                     log_likelihood=s.log_likelihood) for s in stats]


def test_object_arrays_are_sequences(sessions):
    _, stats = sessions
    arr = np.empty(3, dtype=object)
    arr[:] = stats
    np.testing.assert_array_equal(GMMStats.stack(arr).sum_px, GMMStats.stack(stats).sum_px)


@pytest.mark.parametrize("make, error, message", [
    (lambda s: [], ValueError, "X is empty: expected at least one GMMStats"),
    (lambda s: [s[0], "x"], TypeError, "X[1] must be a GMMStats; got str"),
    (lambda s: s[0], TypeError, "X must be a sequence of GMMStats; got a single GMMStats"),
    # (no UBM here: it said "the UBM has (4, 3)")
    (lambda s: [s[0], GMMStats(5, 3)], ValueError,
     "X[1] has statistics of shape (n_gaussians, n_features) = (5, 3); X[0] has (4, 3)"),
])
def test_bad_sequences_are_named(sessions, make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        GMMStats.stack(make(sessions[1]))


@pytest.mark.parametrize("field", ["n", "sum_px", "sum_pxx"])
def test_nan_is_located(sessions, field):
    stats = [s.copy() for s in sessions[1]]
    getattr(stats[2], field)[1] = np.nan
    with pytest.raises(ValueError, match=re.escape(f"probes holds statistics with NaN or infinity: "
                                                   f"probes[7].{field}")):
        GMMStats.stack(stats, name="probes", offset=5, second_order=True)


@pytest.mark.parametrize("field, value, message", [
    ("n", -5.0, "probes holds a negative occupancy: probes[7].n[1] = -5.0"),
    ("t", -20, "probes holds a negative frame count: probes[7].t = -20.0"),
    ("t", np.nan, "probes holds statistics with NaN or infinity: probes[7].t"),
    ("log_likelihood", np.nan, "probes holds statistics with NaN or infinity: probes[7].log_likelihood"),
])
def test_invalid_occupancies_and_scalars_are_located(sessions, field, value, message):
    stats = [s.copy() for s in sessions[1]]
    if field == "n":
        stats[2].n[1] = value
    else:
        setattr(stats[2], field, value)
    with pytest.raises(ValueError, match=re.escape(message)):
        GMMStats.stack(stats, name="probes", offset=5, second_order=True)


@pytest.mark.parametrize("field", ["n", "sum_px", "sum_pxx", "t", "log_likelihood"])
def test_complex_fields_are_refused_not_cut_to_their_real_part(sessions, field):
    stats = [s.copy() for s in sessions[1]]
    setattr(stats[2], field, getattr(stats[2], field) + 1j)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's ComplexWarning would fail the test too
        with pytest.raises(TypeError, match=re.escape(f"probes[7].{field} must hold real numbers; got complex128")):
            GMMStats.stack(stats, name="probes", offset=5, second_order=True)


def test_from_arrays_refuses_complex_arrays():
    with pytest.raises(TypeError, match="^sum_px must hold real numbers; got complex values$"):
        GMMStats.from_arrays([1.0], [[1.0 + 0j]])


def test_shape_is_checked_against_the_given_one(sessions):
    with pytest.raises(ValueError, match=re.escape("the UBM has (4, 2)")):
        GMMStats.stack(sessions[1], shape=(4, 2))


def test_from_arrays_validates_and_copies():
    n = np.array([1.0, 2.0])
    s = GMMStats.from_arrays(n, np.ones((2, 3)), t=3, log_likelihood=-1.5)
    n[0] = 9
    assert s.n[0] == 1.0 and s.shape == (2, 3) and s.t == 3 and not s.sum_pxx.any()
    with pytest.raises(ValueError, match="sum_pxx must have the shape of sum_px"):
        GMMStats.from_arrays([1.0], np.ones((1, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="sum_px contains NaN or infinity"):
        GMMStats.from_arrays([1.0], [[np.inf]])
    with pytest.raises(ValueError, match="t must be a non-negative integer"):
        GMMStats.from_arrays([1.0], [[1.0]], t=-2)
    with pytest.raises(ValueError, match=re.escape("n must be occupancies >= 0; got -1.0 at index 1")):
        GMMStats.from_arrays([1.0, -1.0], np.ones((2, 3)), t=2)
    with pytest.raises(ValueError, match="log_likelihood contains NaN or infinity"):
        GMMStats.from_arrays([1.0], [[1.0]], t=1, log_likelihood=np.nan)


def test_map_adapt_from_statistics_equals_one_map_iteration(sessions):
    ubm, stats = sessions
    X = np.random.default_rng(4).normal(size=(150, 3))
    by_fit = GMMMachine(4, trainer="map", ubm=ubm, max_fitting_steps=1).fit(X)
    by_stats = GMMMachine(4, trainer="map", ubm=ubm).adapt(ubm.transform([X[:70], X[70:]]))
    assert np.abs(by_fit.means - by_stats.means).max() <= 1e-12 * np.abs(by_fit.means).max()
    with pytest.raises(ValueError, match="adapt needs a MAP machine"):
        GMMMachine(4).adapt(stats)


@pytest.mark.parametrize("args, error, message", [
    ((-1, 3), ValueError, "n_gaussians must be an integer >= 0; got -1"),
    ((2, 2.5), TypeError, "n_features must be an integer >= 0; got float: 2.5"),
])
def test_gmmstats_sizes_are_checked(args, error, message):
    with pytest.raises(error, match=re.escape(message)):
        GMMStats(*args)
