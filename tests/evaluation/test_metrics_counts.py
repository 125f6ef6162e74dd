"""The threshold measures (DET points, ROCCH, EER, minDCF, min Cllr) computed from the distinct
scores and their counts (emkit.evaluation._counts): the same floats as the scikit-learn route
they replaced (det_curve on ranks, IsotonicRegression on ranks), kept here as the reference,
and a memory bound of a few copies of the scores."""

from __future__ import annotations

import inspect
import sys
import tracemalloc

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import det_curve as sk_det_curve

from emkit.evaluation import calibration_io, metrics

#: scikit-learn < 1.7 (no drop_intermediate) dropped the DET points of an unchanged false-alarm
#: rate, which emkit keeps: no reference for the whole curve there
SKLEARN_KEEPS_EVERY_DET_POINT = "drop_intermediate" in inspect.signature(sk_det_curve).parameters


def reference_det(tar, non):
    y = np.r_[np.ones(tar.size, dtype=np.int8), np.zeros(non.size, dtype=np.int8)]
    values, ranks = np.unique(np.r_[tar, non], return_inverse=True)
    p_fa, p_miss, at = (np.asarray(a, dtype=np.float64)
                        for a in sk_det_curve(y, ranks.astype(np.float64)))
    thr = np.full(at.shape, np.inf)
    thr[np.isfinite(at)] = values[at[np.isfinite(at)].astype(np.int64)]
    if p_fa[-1] > 0:
        p_fa, p_miss, thr = np.append(p_fa, 0.0), np.append(p_miss, 1.0), np.append(thr, np.inf)
    return p_miss, p_fa, thr


def reference_pav(tar, non):
    values, inverse = np.unique(np.r_[tar, non], return_inverse=True)
    n_tar = np.bincount(inverse[:tar.size], minlength=values.size)
    n_non = np.bincount(inverse[tar.size:], minlength=values.size)
    weight = (n_tar + n_non).astype(np.float64)
    posterior = IsotonicRegression().fit_transform(np.arange(values.size, dtype=np.float64),
                                                   n_tar / weight, sample_weight=weight)
    return values, n_tar, n_non, posterior


def reference_rocch(tar, non):
    values, n_tar, n_non, posterior = reference_pav(tar, non)
    starts = np.flatnonzero(np.r_[True, posterior[1:] != posterior[:-1]])
    p_miss = np.append(np.r_[0, np.cumsum(n_tar)][starts] / tar.size, 1.0)
    p_fa = np.append((non.size - np.r_[0, np.cumsum(n_non)][starts]) / non.size, 0.0)
    return p_miss, p_fa, np.append(values[starts], np.inf)


def reference_eer(tar, non):
    p_miss, p_fa, _ = reference_rocch(tar, non)
    k = int(np.argmax(p_miss >= p_fa))
    d1, d2 = p_fa[k - 1] - p_miss[k - 1], p_miss[k] - p_fa[k]
    return float((p_miss[k - 1] * d2 + p_miss[k] * d1) / (d1 + d2))


def reference_min_dcf(tar, non, p):
    p_miss, p_fa, thr = reference_det(tar, non)
    dcf = (p * p_miss + (1 - p) * p_fa) / min(p, 1 - p)
    best = int(np.argmin(dcf))
    return float(min(dcf[best], 1.0)), float(thr[best])


def reference_min_cllr(tar, non):
    _, n_tar, n_non, p = reference_pav(tar, non)
    odds = tar.size / non.size
    t, n = n_tar > 0, n_non > 0
    tar_bits = n_tar[t] @ np.log2(1.0 + (1.0 - p[t]) / p[t] * odds)
    non_bits = n_non[n] @ np.log2(1.0 + p[n] / (1.0 - p[n]) / odds)
    return float(min(0.5 * (tar_bits / tar.size + non_bits / non.size), 1.0))


def _cases(count=120):
    rng = np.random.default_rng(7)
    for i in range(count):
        n_tar, n_non = int(rng.integers(1, 30)), int(rng.integers(1, 50))
        step = [0.5, 0.1, 1e-3, 1e9][i % 4]  # coarse steps: many ties within and across classes
        tar = np.round(rng.normal(1.0, 1.0, n_tar) / step) * step
        non = np.round(rng.normal(0.0, 1.0, n_non) / step) * step
        if i % 9 == 0:
            tar = rng.normal(size=n_tar) * 1e300
        if i % 11 == 0:
            non = -tar[:1].repeat(n_non) if i % 2 else np.r_[non, tar][:n_non]
        yield tar, non


def _same(a, b):
    for x, y in zip(a, b, strict=True):
        assert x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def test_the_same_floats_as_the_scikit_learn_route():
    for tar, non in _cases():
        if SKLEARN_KEEPS_EVERY_DET_POINT:
            _same(metrics.det_curve(tar, non), reference_det(tar, non))
        _same(metrics.rocch(tar, non), reference_rocch(tar, non))
        assert metrics.eer(tar, non) == reference_eer(tar, non)
        assert metrics.min_cllr(tar, non) == reference_min_cllr(tar, non)
        for p in (0.001, 0.01, 0.5, 0.9):
            assert metrics.min_dcf(tar, non, p, return_threshold=True) == \
                reference_min_dcf(tar, non, p)


def test_score_metrics_shares_one_sort_with_the_same_results():
    for tar, non in _cases(40):
        m = calibration_io.score_metrics(tar, non, (0.01, 0.2))
        assert m["eer"] == reference_eer(tar, non)
        assert m["min_cllr"] == reference_min_cllr(tar, non)
        assert m["min_dcf"] == {p: reference_min_dcf(tar, non, p)[0] for p in (0.01, 0.2)}


def test_score_metrics_refuses_a_bad_prior_naming_it():
    with pytest.raises(ValueError, match="p_target"):
        calibration_io.score_metrics([1.0, 2.0], [0.0], (0.01, 1.5))


def test_inputs_are_not_modified():
    rng = np.random.default_rng(0)
    tar, non = rng.normal(size=50), rng.normal(size=80)
    kept = tar.copy(), non.copy()
    metrics.eer(tar, non)
    metrics.min_dcf(tar, non, 0.01)
    calibration_io.score_metrics(tar, non)
    _same((tar, non), kept)


@pytest.mark.parametrize("measure, copies", [("eer", 9), ("min_cllr", 9), ("det_curve", 6),
                                             ("min_dcf", 6)])
def test_memory_is_a_few_copies_of_the_scores(measure, copies):
    # all-distinct scores (the worst case); the scikit-learn route peaked at 11-16 copies.  PAV
    # (eer, min_cllr) holds the 3 count arrays and its input, and scipy copies that (5 more)
    rng = np.random.default_rng(3)
    n = 200_000
    labels = rng.random(n) < 0.1
    scores = rng.normal(size=n) + 2 * labels
    tar, non = scores[labels], scores[~labels]
    args = (tar, non, 0.01) if measure == "min_dcf" else (tar, non)
    getattr(metrics, measure)(tar[:5], non[:5], *args[2:])  # (imports outside the count)
    tracemalloc.start()
    try:
        getattr(metrics, measure)(*args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < copies * scores.nbytes, peak / scores.nbytes


def test_per_model_groups_trials_in_one_pass_with_the_same_results():
    # each model's trials were picked by a mask over all trials (O(n_models * n_trials)); the
    # grouping by one sort must give each model the same trials in the same order
    rng = np.random.default_rng(11)
    n = 3000
    models = rng.choice(np.array([f"m{k}" for k in range(60)] + [7, 7.0]), n).tolist()
    labels = rng.random(n) < 0.2
    scores = np.round(rng.normal(size=n) + 2 * labels, 1)
    rows = metrics.per_model(models, scores, labels, (0.01, 0.5))
    array = np.array(models)
    assert [r["model"] for r in rows] == list(dict.fromkeys(models))
    for r in rows:
        own = array == r["model"]
        tar, non = scores[own & labels], scores[own & ~labels]
        assert (r["targets"], r["nontargets"]) == (tar.size, non.size)
        if tar.size and non.size:
            assert r["eer"] == metrics.eer(tar, non)
            assert r["min_dcf"] == {p: metrics.min_dcf(tar, non, p) for p in (0.01, 0.5)}
    assert metrics.per_model(np.array(models), scores, labels) == \
        metrics.per_model(models, scores, labels)


def test_per_model_looks_at_each_trial_a_bounded_number_of_times():
    # 1,000 models of 5 trials (object ids, compared in Python): a mask per model compared
    # 1,000 x 5,000 ids; grouping compares about one per trial
    class Counted(str):
        compared = 0

        def __eq__(self, other):
            Counted.compared += 1
            return str.__eq__(self, other)

        __hash__ = str.__hash__

    n = 5000
    models = np.empty(n, dtype=object)
    models[:] = [Counted(f"m{i // 5}") for i in range(n)]
    labels = np.zeros(n, dtype=bool)  # (one class per model: no EER to compute)
    scores = np.arange(n, dtype=np.float64)
    rows = metrics.per_model(models, scores, labels)
    assert len(rows) == n // 5 and rows[0]["nontargets"] == 5 and rows[0]["eer"] is None
    assert Counted.compared < 3 * n


@pytest.fixture(params=["scipy PAV", "scikit-learn PAV"])
def pav_route(request, monkeypatch):
    """Each route of _counts._isotonic_in_place: scipy's PAV (scipy >= 1.12) and, with it hidden
    (as before scipy 1.12), the one scikit-learn runs there."""
    if request.param == "scikit-learn PAV":
        monkeypatch.setitem(sys.modules, "scipy.optimize._pava_pybind", None)  # import fails
    return request.param


def test_both_pav_routes_give_the_same_floats(pav_route):
    for tar, non in _cases(40):
        _same(metrics.rocch(tar, non), reference_rocch(tar, non))
        assert metrics.min_cllr(tar, non) == reference_min_cllr(tar, non)


@pytest.mark.parametrize("measure, copies", [("score_metrics", 8), ("eer", 7), ("rocch", 7),
                                             ("min_cllr", 7.6)])
def test_pav_measures_hold_fewer_copies(measure, copies, pav_route):
    # (before scipy 1.12, scikit-learn's isotonic_regression on copies: 8.0x for all four)
    # all-distinct scores (the worst case).  score_metrics held the DET points through the PAV,
    # the PAV ran on scipy's copies of its input, _rocch cumulated every score's counts and
    # min Cllr made four masked arrays at once: 9.65x, 8.0x, 8.0x, 8.0x at 200,000 scores
    # (7.05x, 6.0x, 6.0x, 7.05x now)
    rng = np.random.default_rng(4)
    n = 200_000
    labels = rng.random(n) < 0.1
    scores = rng.normal(size=n) + 2 * labels
    tar, non = scores[labels], scores[~labels]
    fn = calibration_io.score_metrics if measure == "score_metrics" else getattr(metrics, measure)
    fn(tar[:5], non[:5])  # (imports outside the count)
    tracemalloc.start()
    try:
        fn(tar, non)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < copies * scores.nbytes, peak / scores.nbytes


def test_per_model_sorts_each_models_scores_once(monkeypatch):
    # eer and min_dcf (once per prior) each sorted a model's scores: 3 sorts per model here
    from emkit.evaluation import _counts

    calls = []

    def counted(tar, non):
        calls.append(tar.size + non.size)
        return _counts.score_counts(tar, non)

    rng = np.random.default_rng(12)
    n = 2000
    models = rng.choice([f"m{k}" for k in range(20)], n).tolist()
    labels = rng.random(n) < 0.3
    scores = np.round(rng.normal(size=n) + labels, 1)
    expected = metrics.per_model(models, scores, labels, (0.01, 0.2))
    monkeypatch.setattr(metrics, "score_counts", counted)
    assert metrics.per_model(models, scores, labels, (0.01, 0.2)) == expected
    assert sorted(calls) == sorted(r["targets"] + r["nontargets"] for r in expected)


def test_per_model_refuses_a_bad_prior_before_any_work():
    with pytest.raises(ValueError, match="p_target"):
        metrics.per_model(["a", "a"], [1.0, 2.0], [True, True], (0.01, 1.5))


def test_pav_without_scipys_pav_module_falls_back_to_the_same_floats(monkeypatch):
    # (scipy before 1.12 has no scipy.optimize._pava_pybind: scikit-learn's function is used)
    import sys

    from emkit.evaluation._counts import pav_posterior, score_counts

    for tar, non in _cases(30):
        counts = score_counts(tar, non)
        direct = pav_posterior(counts)
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, "scipy.optimize._pava_pybind", None)  # (import fails)
            np.testing.assert_array_equal(pav_posterior(counts), direct)
        np.testing.assert_array_equal(direct, reference_pav(tar, non)[3])


def test_pav_falls_back_when_scipys_private_pav_changes_its_arguments(monkeypatch):
    # scipy.optimize._pava_pybind.pava is private: a later scipy that keeps the module but takes
    # other arguments must not break EER and min Cllr (before: its TypeError reached the caller)
    import types

    from emkit.evaluation._counts import pav_posterior, score_counts

    counts = score_counts(*next(_cases(2)))
    direct = pav_posterior(counts)
    changed = types.ModuleType("scipy.optimize._pava_pybind")
    changed.pava = lambda x, w: (x, w)  # (one argument fewer)
    monkeypatch.setitem(__import__("sys").modules, "scipy.optimize._pava_pybind", changed)
    np.testing.assert_array_equal(pav_posterior(counts), direct)
