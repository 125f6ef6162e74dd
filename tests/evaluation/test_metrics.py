"""emkit.metrics: hand-computed cases and a brute-force threshold sweep."""

import io
import itertools
import math
import re

import numpy as np
import pytest

from emkit.metrics import (act_dcf, cllr, det_curve, eer, min_cllr, min_dcf, plot_det_curves,
                           rocch)

# --------------------------------------------------------------------------------------------
# brute force: count errors at every candidate threshold


def sweep(tar, non):
    """(thresholds, P_miss, P_fa) at every distinct score and +inf, by explicit counting."""
    thresholds = sorted(set(tar) | set(non)) + [math.inf]
    p_miss = [sum(1 for s in tar if s < t) / len(tar) for t in thresholds]
    p_fa = [sum(1 for s in non if s >= t) / len(non) for t in thresholds]
    return np.array(thresholds), np.array(p_miss), np.array(p_fa)


def brute_eer(tar, non):
    """max over w of min over thresholds of w P_miss + (1 - w) P_fa (the ROCCH-EER).

    The inner minimum is a concave piecewise-linear function of w whose breakpoints are where
    two of the lines cross, so its maximum is at one of those crossings or at w = 0 or 1.
    """
    _, pm, pf = sweep(tar, non)
    a, b = pm - pf, pf  # line i: a_i w + b_i
    i, j = np.triu_indices(len(a), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = (b[j] - b[i]) / (a[i] - a[j])
    w = np.concatenate([[0.0, 1.0], w[np.isfinite(w) & (w >= 0) & (w <= 1)]])
    return float(np.max(np.min(np.outer(w, a) + b, axis=1)))


def brute_min_dcf(tar, non, p, cm, cf):
    thr, pm, pf = sweep(tar, non)
    dcf = (cm * p * pm + cf * (1 - p) * pf) / min(cm * p, cf * (1 - p))
    k = int(np.argmin(dcf))
    return float(dcf[k]), float(thr[k])


def random_scores(seed, discrete):
    rng = np.random.default_rng(seed)
    n_tar, n_non = rng.integers(1, 40), rng.integers(1, 90)
    tar = rng.normal(rng.uniform(0, 3), 1.0, n_tar)
    non = rng.normal(0.0, rng.uniform(0.5, 2), n_non)
    if discrete:  # many ties, within and across classes
        tar, non = np.round(tar * 2) / 2, np.round(non * 2) / 2
    return tar, non


CASES = [(seed, discrete) for seed in range(12) for discrete in (False, True)]


@pytest.mark.parametrize("seed, discrete", CASES)
def test_eer_matches_brute_force(seed, discrete):
    tar, non = random_scores(seed, discrete)
    assert eer(tar, non) == pytest.approx(brute_eer(tar.tolist(), non.tolist()), abs=1e-12)


@pytest.mark.parametrize("seed, discrete", CASES)
def test_min_dcf_matches_brute_force(seed, discrete):
    tar, non = random_scores(seed, discrete)
    for p, cm, cf in [(0.01, 1, 1), (0.001, 1, 1), (0.5, 1, 1), (0.2, 10, 1), (0.05, 1, 3)]:
        expected, threshold = brute_min_dcf(tar.tolist(), non.tolist(), p, cm, cf)
        got, got_threshold = min_dcf(tar, non, p, cm, cf, return_threshold=True)
        assert got == pytest.approx(expected, abs=1e-12)
        # The lowest threshold reaching the minimum, as in the sweep.
        assert got_threshold == threshold


@pytest.mark.parametrize("seed, discrete", CASES[:8])
def test_det_curve_points_are_the_counted_rates(seed, discrete):
    tar, non = random_scores(seed, discrete)
    thr_all, pm_all, pf_all = sweep(tar.tolist(), non.tolist())
    pm, pf, thr = det_curve(tar, non)
    assert pm[0] == 0 and pf[-1] == 0
    assert np.all(np.diff(thr) > 0) and np.all(np.diff(pm) >= 0) and np.all(np.diff(pf) <= 0)
    k = np.searchsorted(thr_all, thr)
    np.testing.assert_array_equal(thr_all[k], thr)
    np.testing.assert_array_equal(pm, pm_all[k])
    np.testing.assert_array_equal(pf, pf_all[k])
    # Only dominated points are left out: every counted point is at or above one of them.
    for a, b in zip(pm_all, pf_all):
        assert np.any((pm <= a) & (pf <= b))


@pytest.mark.parametrize("seed", range(6))
def test_rank_measures_are_invariant_to_monotone_maps(seed):
    tar, non = random_scores(seed, discrete=True)

    def f(s):
        return np.exp(s / 3.0) * 5.0 - 2.0

    assert eer(f(tar), f(non)) == pytest.approx(eer(tar, non), abs=1e-12)
    assert min_dcf(f(tar), f(non), 0.01) == pytest.approx(min_dcf(tar, non, 0.01), abs=1e-12)
    assert min_cllr(f(tar), f(non)) == pytest.approx(min_cllr(tar, non), abs=1e-12)
    # min Cllr is the best Cllr over monotone calibrations, affine ones included.
    best_affine = min(cllr(a * tar + b, a * non + b)
                      for a, b in itertools.product([0.1, 0.5, 1, 2, 4], [-2, -1, 0, 1, 2]))
    assert min_cllr(tar, non) <= best_affine + 1e-12
    assert 0 <= min_cllr(tar, non) <= 1


# --------------------------------------------------------------------------------------------
# hand-computed cases


def test_ties_across_classes():
    # Points (P_fa, P_miss): t=0 (1, 0), t=1 (0.5, 0), t=2 (0, 0.5), inf (0, 1); the hull
    # segment from (0.5, 0) to (0, 0.5) meets the diagonal at 0.25.
    tar, non = [1.0, 2.0], [0.0, 1.0]
    assert eer(tar, non) == 0.25
    pm, pf, thr = det_curve(tar, non)
    np.testing.assert_array_equal(pm, [0.0, 0.5])
    np.testing.assert_array_equal(pf, [0.5, 0.0])
    np.testing.assert_array_equal(thr, [1.0, 2.0])
    assert min_dcf(tar, non, 0.5) == 0.5  # (0 + 0.5) * 0.5 / 0.5
    assert min_dcf(tar, non, 0.01, return_threshold=True) == (0.5, 2.0)  # P_miss + 99 P_fa
    # PAV: 0 -> 0, the tie at 1 -> 1/2, 2 -> 1: one target and one non-target cost 1 bit each.
    assert min_cllr(tar, non) == pytest.approx(0.5, abs=1e-15)


def test_non_convex_roc_uses_the_hull():
    # Sorted: n1 t2 n3 n4 t5 t6.  The operating point at t=4 is (P_fa, P_miss) = (1/3, 1/3),
    # but the hull goes from (2/3, 0) to (0, 1/3) and crosses the diagonal at 2/9.
    tar, non = [2.0, 5.0, 6.0], [1.0, 3.0, 4.0]
    assert eer(tar, non) == pytest.approx(2 / 9, abs=1e-15)
    pm, pf, thr = rocch(tar, non)
    np.testing.assert_allclose(pf, [1, 2 / 3, 0, 0], atol=1e-15)
    np.testing.assert_allclose(pm, [0, 0, 1 / 3, 1], atol=1e-15)
    np.testing.assert_array_equal(thr, [1, 2, 5, np.inf])
    assert min_dcf(tar, non, 0.5) == pytest.approx(1 / 3, abs=1e-15)
    # PAV posteriors 0, 1/3, 1/3, 1/3, 1, 1: the target at 2 costs log2(3) bits, the
    # non-targets at 3 and 4 cost log2(1.5) bits each.
    expected = (math.log2(3) / 3 + 2 * math.log2(1.5) / 3) / 2
    assert min_cllr(tar, non) == pytest.approx(expected, abs=1e-14)


def test_all_equal_scores():
    tar, non = [0.7] * 3, [0.7] * 5
    assert eer(tar, non) == 0.5
    pm, pf, thr = det_curve(tar, non)
    np.testing.assert_array_equal(pm, [0.0, 1.0])
    np.testing.assert_array_equal(pf, [1.0, 0.0])
    np.testing.assert_array_equal(thr, [0.7, np.inf])
    for p in (0.5, 0.01, 0.001):
        assert min_dcf(tar, non, p) == 1.0
    assert min_cllr(tar, non) == pytest.approx(1.0, abs=1e-15)
    assert cllr([0.0] * 3, [0.0] * 5) == pytest.approx(1.0, abs=1e-15)


def test_perfectly_separated_scores():
    tar, non = [3.0, 4.0, 5.0], [-1.0, 0.0, 2.9]
    assert eer(tar, non) == 0.0
    assert min_dcf(tar, non, 0.01, return_threshold=True) == (0.0, 3.0)
    assert min_cllr(tar, non) == 0.0
    pm, pf, thr = det_curve(tar, non)
    assert (pm.tolist(), pf.tolist(), thr.tolist()) == ([0.0], [0.0], [3.0])


def test_reversed_scores_are_at_chance():
    tar, non = [-3.0, -2.0], [1.0, 2.0, 3.0]
    assert eer(tar, non) == 0.5
    assert min_dcf(tar, non, 0.01) == 1.0
    assert min_cllr(tar, non) == pytest.approx(1.0, abs=1e-15)
    pm, pf, thr = det_curve(tar, non)  # top score is a non-target: the reject-all point is there
    assert (pm[-1], pf[-1], thr[-1]) == (1.0, 0.0, np.inf)


def test_act_dcf_and_cllr_by_hand():
    tar, non = [-1.0, 2.0], [-3.0, 0.5]
    # P_target 0.5: threshold 0, one miss (-1) and one false alarm (0.5): (0.25 + 0.25) / 0.5.
    assert act_dcf(tar, non, 0.5) == 1.0
    # P_target 0.2: threshold log 4 = 1.386, one miss, no false alarm: 0.2 * 0.5 / 0.2.
    assert act_dcf(tar, non, 0.2) == 0.5
    # C_miss 10 at P_target 0.5: threshold log(0.1) = -2.30: no miss, one false alarm (0.5):
    # 0.5 * 0.5 / min(5, 0.5).
    assert act_dcf(tar, non, 0.5, c_miss=10) == 0.5
    # Threshold exactly at a score accepts it.
    assert act_dcf([0.0], [0.0], 0.5) == 1.0
    # llr +-log 3: every trial costs log2(1 + 1/3) bits.
    assert cllr([math.log(3)], [-math.log(3)]) == pytest.approx(math.log2(4 / 3), abs=1e-15)
    # Large scores stay finite: log2(1 + e^-800) = 0 and log2(1 + e^800) = 800 / ln 2.
    assert cllr([800.0], [-800.0]) == 0.0
    assert cllr([-800.0], [-800.0]) == pytest.approx(0.5 * 800 / math.log(2))


# --------------------------------------------------------------------------------------------
# input checks


@pytest.mark.parametrize("func", [eer, det_curve, rocch, cllr, min_cllr,
                                  lambda t, n: min_dcf(t, n, 0.01),
                                  lambda t, n: act_dcf(t, n, 0.01)])
def test_bad_scores_name_the_argument(func):
    good = [0.0, 1.0]
    cases = [([], "target_scores", ValueError, "at least one"),
             ([[0.0, 1.0]], "target_scores", ValueError, "1-D"),
             ([0.0, np.nan], "target_scores", ValueError, "finite"),
             (["a", "b"], "target_scores", TypeError, "real scores"),
             ([True, False], "target_scores", TypeError, "real scores")]
    for bad, name, err, what in cases:
        with pytest.raises(err, match=f"{name}.*{what}"):
            func(bad, good)
    with pytest.raises(ValueError, match="nontarget_scores.*finite.*index 1"):
        func(good, [0.0, np.inf])
    with pytest.raises(ValueError, match="nontarget_scores.*at least one"):
        func(good, np.array([]))


def test_bad_costs_name_the_argument():
    tar, non = [1.0, 2.0], [0.0]
    for fn in (min_dcf, act_dcf):
        for p in (0, 1, -0.1, 1.5, float("nan")):
            with pytest.raises(ValueError, match="p_target"):
                fn(tar, non, p)
        with pytest.raises(TypeError, match="p_target"):
            fn(tar, non, "0.01")
        with pytest.raises(ValueError, match="c_miss"):
            fn(tar, non, 0.01, c_miss=0)
        with pytest.raises(ValueError, match="c_fa"):
            fn(tar, non, 0.01, c_fa=-1)


def test_inputs_are_not_modified_and_any_real_dtype_works():
    tar = np.array([3, 1, 2], dtype=np.int32)
    non = np.array([0.5, 2.0], dtype=np.float32)
    tar0, non0 = tar.copy(), non.copy()
    assert eer(tar, non) == eer(tar.astype(float), non.astype(float))
    min_cllr(tar, non)
    det_curve(tar, non)
    np.testing.assert_array_equal(tar, tar0)
    np.testing.assert_array_equal(non, non0)


# --------------------------------------------------------------------------------------------
# plotting


def test_plot_det_curves_draws_one_curve_per_system():
    from matplotlib.figure import Figure

    rng = np.random.default_rng(0)
    systems = {"good": (rng.normal(2, 1, 300), rng.normal(0, 1, 3000)),
               "bad": (rng.normal(0.5, 1, 300), rng.normal(0, 1, 3000)),
               "perfect": ([5.0, 6.0], [0.0, 1.0])}
    fig = plot_det_curves(systems, title="test")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:3] == [f"good (EER {100 * eer(*systems['good']):.2f}%)",
                          f"bad (EER {100 * eer(*systems['bad']):.2f}%)",
                          "perfect (EER 0.00%)"]
    assert len(labels) == 4  # and the diagonal
    # Probit axes: the limits are normal deviates of the probability range (auto: 0.02% .. 50%).
    from scipy.special import ndtri
    np.testing.assert_allclose(ax.get_xlim(), ndtri([2e-4, 0.5]))
    np.testing.assert_allclose(ax.get_ylim(), ndtri([2e-4, 0.5]))
    assert [t.get_text() for t in ax.get_xticklabels()][-3:] == ["10", "20", "40"]
    assert all(np.isfinite(line.get_xydata()).all() for line in ax.get_lines())
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_det_curves_into_given_axes_and_bad_arguments():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    assert plot_det_curves({"a": ([1.0, 2.0], [0.0, 1.5])}, ax=ax, limits=(0.01, 0.6)) is fig
    np.testing.assert_allclose(ax.get_xlim(), [-2.3263478740408408, 0.2533471031357997])
    with pytest.raises(TypeError, match="systems"):
        plot_det_curves(([1.0], [0.0]))
    with pytest.raises(TypeError, match="systems\\['a'\\]"):
        plot_det_curves({"a": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="limits"):
        plot_det_curves({"a": ([1.0], [0.0])}, limits=(0.5, 0.1))


def test_per_model_metrics_equal_the_metrics_of_each_models_trials():
    from emkit import metrics

    rng = np.random.default_rng(0)
    models = np.array(["b", "a", "b", "a", "c", "b", "a", "b"] * 5)
    labels = rng.random(models.size) < 0.4
    labels[models == "c"] = False
    scores = rng.normal(size=models.size) + 2 * labels
    rows = metrics.per_model(models, scores, labels, (0.01, 0.1), 1.0, 2.0)
    assert [r["model"] for r in rows] == ["b", "a", "c"]
    for r in rows[:2]:
        own = models == r["model"]
        tar, non = scores[own & labels], scores[own & ~labels]
        assert (r["targets"], r["nontargets"]) == (tar.size, non.size)
        assert r["eer"] == metrics.eer(tar, non)
        assert r["min_dcf"] == {p: metrics.min_dcf(tar, non, p, 1.0, 2.0) for p in (0.01, 0.1)}
    assert rows[2] == {"model": "c", "targets": 0, "nontargets": 5, "eer": None, "min_dcf": None}


@pytest.mark.parametrize("models,scores,labels,error,message", [
    # before: strings all read as True, a length-1 array broadcast, 2 read as a target
    ("aaaa", [1.0, 2, 3, 4], ["target", "nontarget"] * 2, TypeError,
     "labels must hold booleans or 0/1 (1 = target trial); got dtype <U9"),
    ("aaaa", [1.0, 2, 3, 4], [True], ValueError,
     "labels must have shape (4,), one label per score of scores; got (1,)"),
    ("aaaa", [1.0, 2, 3, 4], [0, 1, 2, 1], ValueError,
     "labels must hold booleans or 0/1 (1 = target trial); got the values 0, 1, 2"),
    ("a" * 7, [1.0] * 7, [0, 1, 2, 3, 4, 5, 0.5], ValueError,  # at most 5 values, not an array
     "labels must hold booleans or 0/1 (1 = target trial); got the values 0.0, 0.5, 1.0, 2.0, "
     "3.0, ..."),
    ("aaaa", [1.0, 2, 3], [0, 1, 0, 1], ValueError,
     "models must have shape (3,), one model per score; got (4,)"),
    ("aaaa", [1.0, 2, np.nan, 4], [0, 1, 0, 1], ValueError,
     "scores must contain only finite scores"),
])
def test_per_model_checks_its_arguments(models, scores, labels, error, message):
    from emkit import metrics

    with pytest.raises(error, match="^" + re.escape(message)):
        metrics.per_model(list(models), scores, labels)


def test_per_model_takes_0_1_labels():
    from emkit import metrics

    as_bool = metrics.per_model(["a"] * 4, [1.0, 2, 3, 4], [False, True, False, True])
    assert metrics.per_model(["a"] * 4, [1.0, 2, 3, 4], [0, 1, 0, 1]) == as_bool
    assert as_bool[0]["targets"] == 2 and as_bool[0]["eer"] == 0.25


def test_cllr_of_huge_finite_scores_is_finite():
    # before: the mean's sum overflowed to inf (with a RuntimeWarning) above about 1e306
    assert cllr([0.0], [1e308, 1e308]) == pytest.approx(0.5 * (1 + 1e308 / math.log(2)),
                                                        rel=1e-15)
    assert cllr([-1e308, -1.2e308], [0.9e308]) == pytest.approx(1e308 / math.log(2), rel=1e-15)
    assert cllr([-1.7e308], [1.7e308]) == np.inf  # 2.45e308: beyond float64, no warning
    rng = np.random.default_rng(7)  # ordinary scores: the same bits as the plain formula
    tar, non = rng.normal(2, 3, 101), rng.normal(-2, 3, 999)
    plain = 0.5 * (np.mean(np.logaddexp(0, -tar)) + np.mean(np.logaddexp(0, non))) / np.log(2)
    assert cllr(tar, non) == plain


def test_det_curve_of_scores_spanning_more_than_float64_warns_nothing():
    # before: scikit-learn's differences of neighbouring scores overflowed (RuntimeWarning)
    curve = det_curve([1e308, 0.0], [-1e308, 1.0, 1e308])
    np.testing.assert_array_equal(curve.p_miss, [0.0, 0.5, 0.5, 1.0])
    np.testing.assert_array_equal(curve.p_fa, [2 / 3, 2 / 3, 1 / 3, 0.0])
    np.testing.assert_array_equal(curve.thresholds, [0.0, 1.0, 1e308, np.inf])
    assert min_dcf([1e308], [-1e308], 0.01) == 0.0
    assert eer([-1e308, 1e308], [-1e308, 1e308]) == 0.5


@pytest.mark.parametrize("seed", [0, 1])
def test_det_curve_is_the_same_as_scikit_learns_on_ordinary_scores(seed):
    from sklearn.metrics import det_curve as sk_det_curve

    tar, non = random_scores(seed, discrete=seed == 1)
    y = np.r_[np.ones(tar.size), np.zeros(non.size)]
    p_fa, p_miss, thr = sk_det_curve(y, np.r_[tar, non])
    curve = det_curve(tar, non)
    np.testing.assert_array_equal(curve.p_miss[:p_miss.size], p_miss)
    np.testing.assert_array_equal(curve.p_fa[:p_fa.size], p_fa)
    np.testing.assert_array_equal(curve.thresholds[:thr.size], thr)
