"""ISV/JFA: the fast paths (blocks, threads, caches, single-probe scoring) give the same numbers."""

import numpy as np

import emkit._backend as backend
import pytest
from _parity import assert_parity
from factor_analysis_cases import load_case, make_stats, trained

from emkit.factor_analysis import _scoring as scoring
from emkit.factor_analysis import _training as base
from emkit.factor_analysis import _training as data_module


@pytest.fixture(scope="module")
def medium():
    return load_case("medium")


def _fit(kind, d, monkeypatch, threads, block_elements):
    monkeypatch.setattr(base, "SESSION_THREADS", threads)
    monkeypatch.setattr(data_module, "BLOCK_ELEMENTS", block_elements)
    m = trained(kind, d)
    return [m.U, m.D] + ([m.V] if kind == "jfa" else [])


@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_training_does_not_depend_on_threads_or_blocks(kind, medium, monkeypatch):
    C, D = medium["means"].shape
    # blocks of at most 5 sessions: per-class sums by dense slots (a block of one class) and by
    # the sparse product (blocks of several classes)
    monkeypatch.setattr(data_module, "BLOCK_ELEMENTS", 5 * C * D)
    blocks = data_module.prepare_training_set(make_stats(medium), medium["labels"], (C, D)).rows
    assert {b.few_classes for b in blocks} == {True, False}
    reference = _fit(kind, medium, monkeypatch, 1, 5 * C * D)
    for threads in (2, 3):  # the same blocks on threads: the very same numbers
        for a, b in zip(reference, _fit(kind, medium, monkeypatch, threads, 5 * C * D)):
            np.testing.assert_array_equal(a, b)
    for block_elements in (2 * C * D, 10**9):  # other blocks: the same up to rounding
        for a, b in zip(reference, _fit(kind, medium, monkeypatch, 2, block_elements)):
            assert_parity(a, b, tol=1e-11)


@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_one_probe_scores_match_the_batched_path(kind, medium):
    m = trained(kind, medium)
    probes = make_stats(medium, "probe_")
    model = m.enroll(make_stats(medium, "enroll_"))
    one_by_one = [m.score(model, [p]) for p in probes]
    assert all(isinstance(s, np.float64) for s in one_by_one)
    assert_parity(one_by_one, m.score(model, [[p] for p in probes]), tol=1e-12)


def test_cached_constants_follow_in_place_changes(medium):
    isv = trained("isv", medium)
    probes = make_stats(medium, "probe_")
    z = isv.enroll(make_stats(medium, "enroll_"))
    before = isv.score(z, [probes[0]])
    z *= 2.0  # the same array, new values: the model terms are recomputed
    fresh = trained("isv", medium)
    assert isv.score(z, [probes[0]]) == fresh.score(z.copy(), [probes[0]])
    assert isv.score(z, [probes[0]]) != before
    with pytest.raises(ValueError, match="read-only"):
        isv.ubm.means[0, 0] += 1.0  # fitted parameters change by assignment only
    for m in (isv, fresh):  # the UBM's means assigned: the derived constants are rebuilt
        means = m.ubm.means.copy()
        means[0, 0] += 1.0
        m.ubm.means = means
    assert isv.score(z, [probes[0]]) == fresh.score(z, [probes[0]])


@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_scores_never_return_nan(kind, medium):
    m = trained(kind, medium)
    probe = make_stats(medium, "probe_")[0]
    model = m.enroll(make_stats(medium, "enroll_"))
    bad, bad_t = probe.copy(), probe.copy()
    bad.sum_px[0, 0] = np.nan
    bad_t.t = np.nan
    for data in ([bad], [[bad], [probe]], [bad_t], [[probe], [bad_t]]):
        with pytest.raises(ValueError, match="data holds statistics with NaN or infinity"):
            m.score(model, data)
    nan_model = (
        np.full_like(model, np.nan)
        if kind == "isv"
        else (model[0], np.full_like(model[1], np.nan))
    )
    with pytest.raises(ValueError, match="the model .* holds NaN or infinity"):
        m.score(nan_model, [probe])


def test_a_forked_pool_is_replaced(medium, monkeypatch):
    """The persistent threads belong to one process: another pid gets its own pool."""
    monkeypatch.setattr(base, "SESSION_THREADS", 2)
    reference = trained("isv", medium).U
    monkeypatch.setitem(backend._pool._POOL, "pid", -1)  # as seen from a forked child
    np.testing.assert_array_equal(trained("isv", medium).U, reference)
    assert backend._pool._POOL["pid"] != -1


@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_probe_cache_never_serves_a_stale_channel_factor(kind, medium, monkeypatch):
    m = trained(kind, medium)
    probe = make_stats(medium, "probe_")[0]
    model = m.enroll(make_stats(medium, "enroll_"))
    first = m.score(model, [probe])
    assert m.score(model, [probe]) == first  # served from the cache: the same number
    probe.sum_px = probe.sum_px * 1.5  # the same object, other statistics
    changed = m.score(model, [probe])
    assert changed == trained(kind, medium).score(model, [probe.copy()])  # as an uncached machine
    assert changed != first
    probe.n[0] += 1.0  # modified in place
    assert m.score(model, [probe]) == trained(kind, medium).score(model, [probe.copy()])
    monkeypatch.setattr(scoring, "_PROBE_CACHE_SIZE", 2)  # eviction keeps the cache bounded
    for p in make_stats(medium, "probe_"):
        m.score(model, [p])
    assert len(m._constants().scratch["probes"]) <= 2
