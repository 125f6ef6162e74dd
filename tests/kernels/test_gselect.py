"""Gaussian selection (emkit._kernels.gselect) against dense computations, and its opt-in API."""

import re

import numpy as np
import pytest

import emkit
from emkit import GMMMachine
from emkit._kernels import gmm as kg
from emkit._kernels import gselect as gs


def _problem(C=96, D=5, N=700, spread=0.8, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, spread, (C, D))
    variances = rng.uniform(0.5, 1.5, (C, D))
    weights = rng.dirichlet(np.full(C, 5.0))
    comp = rng.choice(C, N, p=weights)
    X = means[comp] + rng.standard_normal((N, D)) * np.sqrt(variances[comp]) + 3.0
    machine = GMMMachine(C)
    machine.means, machine.variances, machine.weights = means + 3.0, variances, weights
    return machine, X


def _dense_stats(machine, X, keep=None):
    """Plain statistics from a dense (N, C) posterior matrix; ``keep(L, P) -> P'`` masks it."""
    L = machine.log_weighted_likelihood(X).T
    P = np.exp(L - L.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    ll = None
    if keep is not None:
        P, ll = keep(L, P)
    return ll, P.sum(axis=0), P.T @ X, P.T @ X**2


def test_top_k_columns_match_a_full_partition():
    rng = np.random.default_rng(1)
    for C, k in ((300, 7), (1030, 20), (1030, 1), (2048, 40), (50, 3)):
        L = rng.normal(0.0, 30.0, (257, C)).astype(np.float32)
        got = np.sort(gs.top_k_columns(L, k), axis=1)
        want = np.sort(np.argpartition(L, C - k, axis=1)[:, C - k:], axis=1)
        np.testing.assert_array_equal(got, want)
    L = rng.normal(size=(9, 600)).astype(np.float32)
    np.testing.assert_array_equal(gs.top_k_columns(L, 600), np.broadcast_to(np.arange(600), L.shape))


def test_top_k_columns_with_ties_and_infinities_keep_k_distinct_columns():
    L = np.zeros((5, 600), dtype=np.float32)
    L[:, ::3] = -np.inf
    L[:, 7] = 1.0
    idx = gs.top_k_columns(L, 10)
    assert idx.shape == (5, 10)
    assert (idx == 7).any(axis=1).all()
    assert all(len(set(row)) == 10 for row in idx.tolist())
    assert np.isfinite(np.take_along_axis(L, idx, axis=1)).all()


def test_all_gaussians_and_no_floor_give_the_exact_statistics():
    machine, X = _problem()
    exact = machine.acc_stats(X)
    selected = machine.acc_stats(X, top_k=machine.shape[0], min_posterior=0.0)
    for name in ("n", "sum_px", "sum_pxx"):
        a, b = getattr(exact, name), getattr(selected, name)
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-10 * np.abs(a).max(), err_msg=name)
    assert selected.log_likelihood == pytest.approx(exact.log_likelihood, rel=1e-12)
    assert selected.t == exact.t


def test_top_k_statistics_equal_dense_statistics_of_masked_posteriors():
    machine, X = _problem(C=64, N=400, spread=0.4)
    k, floor = 5, 0.05

    def keep(L, P):
        L32 = (kg.fill_design(X, machine._coefficients().shift, np.empty((len(X), 11)))
               @ machine._coefficients().coef).astype(np.float32)
        top = np.argpartition(L32, 64 - k, axis=1)[:, 64 - k:]
        mask = np.zeros(P.shape, bool)
        np.put_along_axis(mask, top, True, axis=1)
        sel = np.where(mask, P, 0.0)
        total = sel.sum(axis=1)
        ll = float(np.sum(np.log(total) + np.log(np.exp(L - L.max(1, keepdims=True)).sum(1))
                          + L.max(1)))
        sel /= total[:, None]
        best = sel.argmax(axis=1)
        low = sel < floor
        low[np.arange(len(sel)), best] = False
        sel[low] = 0.0
        return sel / sel.sum(axis=1, keepdims=True), ll

    ll, n, px, pxx = _dense_stats(machine, X, keep)
    got = machine.acc_stats(X, top_k=k, min_posterior=floor)
    np.testing.assert_allclose(got.n, n, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.sum_px, px, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got.sum_pxx, pxx, rtol=1e-10, atol=1e-10)
    assert got.log_likelihood == pytest.approx(ll, rel=1e-10)
    assert not np.allclose(got.n, _dense_stats(machine, X)[1], rtol=1e-3)  # it did prune


def test_posteriors_below_the_floor_are_dropped_and_the_rest_renormalised():
    ll = np.log(np.array([[0.5, 0.3, 0.15, 0.05], [0.26, 0.25, 0.25, 0.24], [0.9, 0.04, 0.03, 0.03]]))
    frame_ll, post = gs.selected_posteriors(ll, 0.1)
    np.testing.assert_allclose(frame_ll, 0.0, atol=1e-15)
    np.testing.assert_allclose(post[0], [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0])
    np.testing.assert_allclose(post[1], [0.26, 0.25, 0.25, 0.24])
    np.testing.assert_allclose(post[2], [1.0, 0.0, 0.0, 0.0])
    _, post = gs.selected_posteriors(ll, 0.95)  # above every posterior: the best one is kept
    np.testing.assert_array_equal(post, [[1, 0, 0, 0]] * 3)
    csr = gs.sparse_posteriors(np.array([[3, 1, 0, 2]] * 3), post, 5)
    assert csr.nnz == 3 and csr.shape == (3, 5)
    np.testing.assert_array_equal(csr.toarray()[:, 3], 1.0)


def test_transform_and_config_context_use_the_selection_and_exact_stays_the_default():
    machine, X = _problem(C=64, N=300, spread=0.4)
    sessions = [X[:100], X[100:250], X[250:]]
    exact = machine.transform(sessions)
    explicit = machine.transform(sessions, top_k=3, min_posterior=0.02)
    with emkit.config_context(gselect_top_k=3, gselect_min_posterior=0.02):
        configured = machine.transform(sessions)
        total = machine.acc_stats(X)
    for a, b in zip(explicit, configured):
        np.testing.assert_array_equal(a.sum_px, b.sum_px)
    np.testing.assert_allclose(total.n, sum(s.n for s in explicit), rtol=1e-12)
    assert not np.allclose(explicit[0].n, exact[0].n, rtol=1e-3)
    again = machine.transform(sessions)  # the context is gone
    np.testing.assert_array_equal(again[0].sum_px, exact[0].sum_px)
    assert emkit.get_config()["gselect_top_k"] is None


def test_fit_uses_the_configured_selection():
    machine, X = _problem(C=16, N=400, spread=0.6)
    kwargs = dict(max_fitting_steps=2, convergence_threshold=None, update_variances=True,
                  update_weights=True)

    def fitted():
        m = GMMMachine(16, **kwargs)
        m.means, m.variances, m.weights = machine.means, machine.variances, machine.weights
        return m.fit(X)

    exact = fitted()
    with emkit.config_context(gselect_top_k=16):
        full = fitted()
    with emkit.config_context(gselect_top_k=2):
        pruned = fitted()
    np.testing.assert_allclose(full.means, exact.means, rtol=1e-10, atol=1e-12)
    assert not np.allclose(pruned.means, exact.means, rtol=1e-6)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(top_k=0), ValueError, "top_k must be in [1, 64]"),
    (dict(top_k=65), ValueError, "top_k must be in [1, 64] (the UBM has 64 Gaussians); got 65"),
    (dict(top_k=2.5), TypeError, "top_k must be an integer"),
    (dict(top_k=True), TypeError, "top_k must be an integer"),
    (dict(top_k=4, min_posterior=1.0), ValueError, "min_posterior must be in [0, 1)"),
    (dict(top_k=4, min_posterior=-0.1), ValueError, "min_posterior must be in [0, 1)"),
    (dict(min_posterior=0.1), ValueError, "min_posterior=0.1 needs a Gaussian selection"),
])
def test_bad_selection_arguments_are_named(kwargs, error, message):
    machine, X = _problem(C=64, N=20)
    with pytest.raises(error, match=re.escape(message)):
        machine.acc_stats(X, **kwargs)
    with pytest.raises(error, match=re.escape(message)):
        machine.transform([X], **kwargs)


def test_bad_configured_selection_names_the_setting():
    machine, X = _problem(C=64, N=20)
    with emkit.config_context(gselect_top_k=100):
        with pytest.raises(ValueError, match=re.escape("gselect_top_k must be in [1, 64]")):
            machine.transform([X])
    with pytest.raises(ValueError, match="gselect_top_k must be None or a positive integer"):
        emkit.set_config(gselect_top_k=0)
    with pytest.raises(ValueError, match=re.escape("gselect_min_posterior must be a float in [0, 1)")):
        emkit.set_config(gselect_min_posterior=1.5)
    assert emkit.get_config()["gselect_top_k"] is None


def test_dask_chunks_give_the_statistics_of_numpy():
    da = pytest.importorskip("dask.array")
    machine, X = _problem(C=64, N=500, spread=0.4)
    want = machine.acc_stats(X, top_k=4, min_posterior=0.01)
    got = machine.acc_stats(da.from_array(X, chunks=(130, 5)), top_k=4, min_posterior=0.01)
    np.testing.assert_allclose(got.sum_pxx, want.sum_pxx, rtol=1e-12)
    np.testing.assert_allclose(got.n, want.n, rtol=1e-12)
    assert got.log_likelihood == pytest.approx(want.log_likelihood, rel=1e-12)


def test_batched_sessions_equal_one_session_at_a_time(monkeypatch):
    from emkit import _gmm_estep as estep

    machine, X = _problem(C=64, N=900, spread=0.4)
    cuts = [0, 0, 7, 300, 301, 650, 900]  # an empty session, short ones, "long" ones
    sessions = [X[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    monkeypatch.setattr(estep, "GROUP_FRAMES", 320)  # 350 and 250 frames: alone, in blocks
    got = machine.transform(sessions, top_k=5, min_posterior=0.01)
    assert estep._session_groups([len(s) for s in sessions], 64, 5) == [(0, 4), (4, 5), (5, 6)]
    coef = machine._coefficients()
    for s, x in zip(got, sessions):
        ll, n, px, pxx = gs.accumulate_selected_statistics(x, coef, 5, 0.01, 128)
        assert s.t == len(x)
        assert s.log_likelihood == pytest.approx(ll, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(s.n, n, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(s.sum_px, px + n[:, None] * coef.shift, rtol=1e-12, atol=1e-10)
        raw = pxx + 2 * coef.shift * px + n[:, None] * coef.shift**2
        np.testing.assert_allclose(s.sum_pxx, raw, rtol=1e-12, atol=1e-10)
    assert got[0].t == 0 and not got[0].n.any()
