"""Numerical extremes of GMM and k-means training: data far from the origin (issue 11, item 2).

Each test fits the same data twice: ``Xr`` near the origin and ``Xr + offset``.  ``Xr`` is chosen
as ``fl(X + offset) - offset`` so that ``Xr + offset`` is exactly representable: both fits see
the same numbers, and any difference is the algorithm's rounding.  The raw ``E[x^2] - E[x]^2``
loses every digit of a unit variance at an offset of about 1e8.

The clusters are well separated (unit variances, centres 15 standard deviations apart): far from
the origin the means themselves can only be stored to ``spacing(offset)`` (1.2e-4 at 1e12), which
moves the responsibilities of overlapping clusters by about that much; separated clusters make
the variances insensitive to it, so 1e-6 can be asked at every offset.  Overlapping clusters are
tested up to 1e8.
"""

import copy
import io
import pickle

import dask.array as da
import numpy as np
import pytest

from emkit import GMMMachine, GMMStats, KMeansMachine
from emkit.gmm import e_step, m_step

OFFSETS = [1e4, 1e6, 1e8, 1e10, 1e12]
VAR_RTOL = 1e-6


def _data(offset, seed=0, n=(500, 300), gap=10.0):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(size=(n[0], 3)), rng.normal(size=(n[1], 3)) + gap * np.array([1.0, -1.0, 0.5])])
    shifted = X + offset
    return shifted - offset, shifted  # Xr, Xr + offset (exact)


def _means_tol(offset):
    return 1e-6 + 8 * np.spacing(offset)  # the offset data are only known to their last bit


def _assert_same_model(near, far, offset):
    np.testing.assert_allclose(far.variances, near.variances, rtol=VAR_RTOL, atol=0)
    np.testing.assert_allclose(far.weights, near.weights, rtol=0, atol=1e-9)
    np.testing.assert_allclose(far.means - offset, near.means, rtol=0, atol=_means_tol(offset))


def _ml(means, variances, weights, steps=25):
    m = GMMMachine(2, update_variances=True, update_weights=True, max_fitting_steps=steps,
                   convergence_threshold=None)
    m.means, m.variances, m.weights = means, variances, weights
    return m


@pytest.mark.parametrize("offset", OFFSETS)
def test_ml_em_recovers_unit_variances_far_from_the_origin(offset):
    Xr, Xo = _data(offset)
    start = (np.array([[0.5, 0.5, 0.0], [9.0, -9.0, 4.0]]), np.full((2, 3), 2.0), np.array([0.5, 0.5]))
    near = _ml(*start).fit(Xr)
    far = _ml(start[0] + offset, *start[1:]).fit(Xo)
    assert np.all(np.abs(near.variances - 1) < 0.2)  # unit-variance clusters
    _assert_same_model(near, far, offset)


@pytest.mark.parametrize("offset", [1e4, 1e6, 1e8])
def test_ml_em_with_overlapping_clusters_far_from_the_origin(offset):
    Xr, Xo = _data(offset, gap=2.0)
    start = (np.array([[0.5, 0.5, 0.0], [1.5, -1.5, 1.0]]), np.full((2, 3), 2.0), np.array([0.5, 0.5]))
    near = _ml(*start, steps=40).fit(Xr)
    far = _ml(start[0] + offset, *start[1:], steps=40).fit(Xo)
    _assert_same_model(near, far, offset)


@pytest.mark.parametrize("offset", OFFSETS)
def test_ml_fit_with_kmeans_initialisation_far_from_the_origin(offset):
    Xr, Xo = _data(offset, seed=1)
    kw = dict(update_variances=True, update_weights=True, max_fitting_steps=30, convergence_threshold=None)
    near = GMMMachine(2, **kw).fit(Xr)
    far = GMMMachine(2, **kw).fit(Xo)
    order_n, order_f = np.argsort(near.means[:, 0]), np.argsort(far.means[:, 0])
    np.testing.assert_allclose(far.variances[order_f], near.variances[order_n], rtol=VAR_RTOL)
    np.testing.assert_allclose(far.weights[order_f], near.weights[order_n], atol=1e-9)
    np.testing.assert_allclose(far.means[order_f] - offset, near.means[order_n], atol=_means_tol(offset))


def test_the_issue_example_two_unit_variance_clusters_offset_by_1e8():
    Xr, Xo = _data(1e8, seed=2, n=(400, 400), gap=10.0)
    m = GMMMachine(2, update_variances=True, update_weights=True).fit(Xo)
    np.testing.assert_allclose(m.weights, [0.5, 0.5], atol=1e-9)
    order = np.argsort(m.means[:, 0])
    expected = np.array([Xr[:400].var(0), Xr[400:].var(0)])
    np.testing.assert_allclose(m.variances[order], expected, rtol=1e-6)


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("flags", [dict(update_means=True, update_variances=True, update_weights=True),
                                   dict(update_means=True, update_variances=True)])
@pytest.mark.parametrize("adaptation", [dict(map_relevance_factor=4), dict(map_relevance_factor=None, map_alpha=0.3)])
def test_map_adaptation_far_from_the_origin(offset, flags, adaptation):
    Xr, Xo = _data(offset, seed=3)
    ubm = _ml(np.array([[0.5, 0.5, 0.0], [9.0, -9.0, 4.0]]), np.full((2, 3), 2.0), np.array([0.5, 0.5]), 10).fit(Xr)
    ubm_far = copy.deepcopy(ubm)
    ubm_far.means = ubm.means + offset
    ubm.means = ubm_far.means - offset  # both priors the same numbers (exact subtraction)
    Yr, Yo = _data(offset, seed=4, n=(100, 60), gap=10.5)
    kw = dict(trainer="map", max_fitting_steps=3, convergence_threshold=None, **flags, **adaptation)
    near = GMMMachine(2, ubm=ubm, **kw).fit(Yr)
    far = GMMMachine(2, ubm=ubm_far, **kw).fit(Yo)
    assert not np.allclose(near.variances, ubm.variances)  # adaptation happened
    _assert_same_model(near, far, offset)


@pytest.mark.parametrize("offset", OFFSETS)
def test_kmeans_variances_and_weights_for_gmm_initialisation_far_from_the_origin(offset):
    Xr, Xo = _data(offset, seed=5)
    init = np.array([[0.5, 0.5, 0.0], [9.0, -9.0, 4.0]])
    near = KMeansMachine(2, init_method=init, max_iter=10).fit(Xr)
    far = KMeansMachine(2, init_method=init + offset, max_iter=10).fit(Xo)
    np.testing.assert_allclose(far.centroids_ - offset, near.centroids_, atol=_means_tol(offset))
    v_near, w_near = near.get_variances_and_weights_for_each_cluster(Xr)
    v_far, w_far = far.get_variances_and_weights_for_each_cluster(Xo)
    assert np.all(np.abs(v_near - 1) < 0.2)
    np.testing.assert_allclose(v_far, v_near, rtol=VAR_RTOL)
    np.testing.assert_array_equal(w_far, w_near)


@pytest.mark.parametrize("offset", [1e8, 1e12])
def test_kmeans_empty_cluster_gets_the_variance_of_all_the_data_far_from_the_origin(offset):
    Xr, Xo = _data(offset, seed=6)
    far = KMeansMachine(3, init_method=np.array([[0.0, 0, 0], [4, -4, 2], [1e6, 1e6, 1e6]]) + offset, max_iter=0)
    far.fit(Xo)
    variances, weights = far.get_variances_and_weights_for_each_cluster(Xo)
    assert weights[2] == 0
    np.testing.assert_allclose(variances[2], Xr.var(0), rtol=VAR_RTOL)


def test_explicit_e_and_m_steps_keep_the_precision():
    Xr, Xo = _data(1e8, seed=7)
    start = (np.array([[0.5, 0.5, 0.0], [9.0, -9.0, 4.0]]), np.full((2, 3), 2.0), np.array([0.5, 0.5]))
    near, far = _ml(*start), _ml(start[0] + 1e8, *start[1:])
    for _ in range(5):
        m_step([e_step(Xr[:400], near), e_step(Xr[400:], near)], near)
        m_step([e_step(Xo[:400], far), e_step(Xo[400:], far)], far)
    _assert_same_model(near, far, 1e8)


def test_dask_input_far_from_the_origin_matches_numpy():
    Xr, Xo = _data(1e10, seed=8)
    start = (np.array([[0.5, 0.5, 0.0], [9.0, -9.0, 4.0]]) + 1e10, np.full((2, 3), 2.0), np.array([0.5, 0.5]))
    a = _ml(*start, steps=5).fit(Xo)
    b = _ml(*start, steps=5).fit(da.from_array(Xo, chunks=(97, 2)))
    np.testing.assert_allclose(b.variances, a.variances, rtol=1e-12)
    # separated clusters: the ML variances are the sample variances of the two clusters
    np.testing.assert_allclose(a.variances, [Xr[:500].var(0), Xr[500:].var(0)], rtol=1e-6)


# -- GMMStats keep their public (reference) meaning ------------------------------------------


def _machine(offset=0.0):
    m = GMMMachine(2)
    m.means = np.array([[0.0, 0.0, 0.0], [4.0, -4.0, 2.0]]) + offset
    m.variances = np.ones((2, 3))
    m.weights = np.array([0.6, 0.4])
    return m


def test_stats_public_fields_are_the_raw_sums_and_stay_additive():
    Xr, _ = _data(0.0, seed=9)
    m = _machine()
    whole, a, b = m.acc_stats(Xr), m.acc_stats(Xr[:300]), m.acc_stats(Xr[300:])
    R = np.exp(m.log_weighted_likelihood(Xr) - m.log_likelihood(Xr))  # (C, N) responsibilities
    np.testing.assert_allclose(whole.sum_px, R @ Xr, rtol=1e-12)
    np.testing.assert_allclose(whole.sum_pxx, R @ Xr**2, rtol=1e-12)
    total = a + b
    np.testing.assert_allclose(total.sum_pxx, whole.sum_pxx, rtol=1e-13)
    a += b
    assert a == total


def test_stats_hdf5_and_pickle_round_trips(tmp_path):
    _, Xo = _data(1e8, seed=10)
    m = _machine(1e8)
    stats = m.acc_stats(Xo)
    stats.save(tmp_path / "s.h5")
    back = GMMStats.from_hdf5(tmp_path / "s.h5")
    assert back == stats  # the reference's raw sums, bit for bit
    again = pickle.loads(pickle.dumps(stats))
    assert again == stats
    # the pickled copy keeps the precise moments: its M-step equals the original's
    m1, m2 = copy.deepcopy(m), copy.deepcopy(m)
    m1.update_variances = m2.update_variances = True
    m_step(stats, m1)
    m_step(again, m2)
    np.testing.assert_array_equal(m1.variances, m2.variances)
    assert np.all(np.abs(m1.variances - 1) < 0.2)


@pytest.mark.parametrize("how", ["in place", "assigned", "n in place"])
def test_changed_statistics_are_used_as_changed(how):
    Xr, _ = _data(0.0, seed=11)
    m = _machine()
    stats = m.acc_stats(Xr)
    expected = stats.copy()
    if how == "in place":
        stats.sum_px[0, 0] += 50.0
        expected.init_fields(expected.log_likelihood, expected.t, expected.n.copy(), stats.sum_px.copy(),
                             expected.sum_pxx.copy())
    elif how == "assigned":
        stats.sum_pxx = stats.sum_pxx * 1.5
        expected.init_fields(expected.log_likelihood, expected.t, expected.n.copy(), expected.sum_px.copy(),
                             stats.sum_pxx.copy())
    else:
        stats.n[1] *= 2
        expected.init_fields(expected.log_likelihood, expected.t, stats.n.copy(), expected.sum_px.copy(),
                             expected.sum_pxx.copy())
    a, b = copy.deepcopy(m), copy.deepcopy(m)
    a.update_variances = b.update_variances = True
    m_step(stats, a)
    m_step(expected, b)  # plain raw sums (no shifted moments)
    np.testing.assert_allclose(a.means, b.means, rtol=1e-12)
    np.testing.assert_allclose(a.variances, b.variances, rtol=1e-9)


def test_statistics_read_from_a_file_give_the_in_memory_m_step(tmp_path):
    Xr, _ = _data(0.0, seed=12)
    m = _machine()
    stats = m.acc_stats(Xr)
    buf = tmp_path / "stats.h5"
    stats.save(buf)
    a, b = copy.deepcopy(m), copy.deepcopy(m)
    a.update_variances = b.update_variances = a.update_weights = b.update_weights = True
    m_step(stats, a)
    m_step(GMMStats.from_hdf5(buf), b)
    np.testing.assert_allclose(b.variances, a.variances, rtol=1e-12)
    np.testing.assert_allclose(b.means, a.means, rtol=1e-14)
