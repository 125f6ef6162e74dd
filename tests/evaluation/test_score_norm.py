"""Score normalisation against naive loop implementations, cohort helpers and bad input."""

import re

import numpy as np
import pytest
from _parity import assert_parity

from emkit.score_norm import (adaptive_snorm, cohort_scores, same_value_mask, snorm, tnorm, znorm,
                              ztnorm)


# --- naive oracles: one score at a time, statistics with plain Python over lists ---------------


def _mean_std(values, ddof):
    values = list(values)
    mean = sum(values) / len(values)
    return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - ddof)) ** 0.5


def naive_znorm(s, z, ddof=1):
    out = np.empty_like(s)
    for m in range(s.shape[0]):
        mean, std = _mean_std(z[m], ddof)
        for p in range(s.shape[1]):
            out[m, p] = (s[m, p] - mean) / std
    return out


def naive_tnorm(s, t, ddof=1):
    out = np.empty_like(s)
    for p in range(s.shape[1]):
        mean, std = _mean_std(t[:, p], ddof)
        for m in range(s.shape[0]):
            out[m, p] = (s[m, p] - mean) / std
    return out


def naive_ztnorm(s, z, t, tz, mask=None, ddof=1):
    zs = naive_znorm(s, z, ddof)
    zt = np.empty_like(t)
    for i in range(t.shape[0]):
        keep = [tz[i, j] for j in range(tz.shape[1]) if mask is None or not mask[i, j]]
        mean, std = _mean_std(keep, ddof)
        for p in range(t.shape[1]):
            zt[i, p] = (t[i, p] - mean) / std
    return naive_tnorm(zs, zt, ddof)


def naive_asnorm(s, z, t, top_n, ddof=1):
    out = np.empty_like(s)
    for m in range(s.shape[0]):
        zm = sorted(z[m], reverse=True)[:top_n] if top_n else list(z[m])
        mean_m, std_m = _mean_std(zm, ddof)
        for p in range(s.shape[1]):
            tp = sorted(t[:, p], reverse=True)[:top_n] if top_n else list(t[:, p])
            mean_p, std_p = _mean_std(tp, ddof)
            out[m, p] = 0.5 * ((s[m, p] - mean_m) / std_m + (s[m, p] - mean_p) / std_p)
    return out


@pytest.fixture
def mats():
    rng = np.random.default_rng(0)
    M, P, Cz, Ct = 7, 9, 11, 13
    return dict(s=rng.normal(size=(M, P)) * 3 + 1, z=rng.normal(size=(M, Cz)) * 2 - 1,
                t=rng.normal(size=(Ct, P)) + 0.5, tz=rng.normal(size=(Ct, Cz)) * 1.5)


@pytest.mark.parametrize("ddof", [0, 1])
def test_znorm_tnorm_match_naive_loops(mats, ddof):
    s, z, t = mats["s"], mats["z"], mats["t"]
    assert_parity(znorm(s, z, ddof=ddof), naive_znorm(s, z, ddof), tol=1e-12)
    assert_parity(tnorm(s, t, ddof=ddof), naive_tnorm(s, t, ddof), tol=1e-12)


@pytest.mark.parametrize("with_mask", [False, True])
def test_ztnorm_matches_naive_loop(mats, with_mask):
    s, z, t, tz = mats["s"], mats["z"], mats["t"], mats["tz"]
    mask = None
    if with_mask:
        mask = same_value_mask(np.arange(13) % 5, np.arange(11) % 4)
        assert mask.shape == (13, 11) and 0 < mask.sum() < mask.size
    got = ztnorm(s, z, t, tz, mask)
    assert_parity(got, naive_ztnorm(s, z, t, tz, mask), tol=1e-12)
    if with_mask:  # the mask changes the result
        assert np.abs(got - ztnorm(s, z, t, tz)).max() > 1e-3


@pytest.mark.parametrize("top_n", [None, 2, 5, 100])
def test_snorm_and_adaptive_snorm_match_naive_loop(mats, top_n):
    s, z, t = mats["s"], mats["z"], mats["t"]
    got = adaptive_snorm(s, z, t, top_n=top_n)
    assert_parity(got, naive_asnorm(s, z, t, top_n), tol=1e-12)
    if top_n is None or top_n >= 13:
        assert_parity(snorm(s, z, t), got, tol=1e-14)


def test_inputs_unchanged_and_shapes(mats):
    copies = {k: v.copy() for k, v in mats.items()}
    out = ztnorm(mats["s"], mats["z"], mats["t"], mats["tz"], np.zeros((13, 11), bool))
    assert out.shape == (7, 9)
    adaptive_snorm(mats["s"], mats["z"], mats["t"], top_n=3)
    for k in mats:
        np.testing.assert_array_equal(mats[k], copies[k])


def test_cohort_scores_with_a_scoring_callable(mats):
    rng = np.random.default_rng(1)
    models, probes = rng.normal(size=(4, 3)), rng.normal(size=(6, 3))
    tcohort, zcohort = rng.normal(size=(8, 3)), rng.normal(size=(5, 3))

    def dot(a, b):
        return np.asarray(a) @ np.asarray(b).T

    c = cohort_scores(dot, models, probes, cohort_models=tcohort, cohort_probes=zcohort)
    assert {k: v.shape for k, v in c.items()} == {"scores": (4, 6), "model_cohort_scores": (4, 5),
                                                  "cohort_probe_scores": (8, 6), "cohort_cohort_scores": (8, 5)}
    assert_parity(ztnorm(**c), naive_ztnorm(dot(models, probes), dot(models, zcohort),
                                            dot(tcohort, probes), dot(tcohort, zcohort)), tol=1e-12)
    assert set(cohort_scores(dot, models, probes)) == {"scores"}


def test_cohort_scores_with_plda():
    from emkit.plda import PLDA

    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(60, 4)) + np.repeat(rng.normal(size=(12, 4)) * 2, 5, 0), np.repeat(np.arange(12), 5)
    plda = PLDA(max_iterations=3).fit(X, y)
    c = cohort_scores(plda.log_likelihood_ratio, X[:3], X[3:7], cohort_models=X[20:30], cohort_probes=X[30:45])
    np.testing.assert_allclose(c["cohort_cohort_scores"], plda.log_likelihood_ratio(X[20:30], X[30:45]))
    assert snorm(c["scores"], c["model_cohort_scores"], c["cohort_probe_scores"]).shape == (3, 4)


# --- bad input ------------------------------------------------------------------------------------


def test_empty_cohorts_are_rejected(mats):
    s = mats["s"]
    with pytest.raises(ValueError, match=re.escape("model_cohort_scores has an empty cohort (shape (7, 0))")):
        znorm(s, np.zeros((7, 0)))
    with pytest.raises(ValueError, match=re.escape("cohort_probe_scores has an empty cohort (shape (0, 9))")):
        tnorm(s, np.zeros((0, 9)))
    with pytest.raises(ValueError, match="cohort_probe_scores has an empty cohort"):
        adaptive_snorm(s, mats["z"], np.zeros((0, 9)))
    with pytest.raises(ValueError, match="model_cohort_scores row 0 has 1 usable cohort score"):
        znorm(s, np.ones((7, 1)))
    with pytest.raises(ValueError, match="cohort_cohort_scores row 0 has 0 usable cohort score"):
        ztnorm(s, mats["z"], mats["t"], mats["tz"], np.ones((13, 11), bool))


def test_nan_and_constant_cohorts_are_rejected(mats):
    s, z = mats["s"], mats["z"].copy()
    z[2, 4] = np.nan
    with pytest.raises(ValueError, match=re.escape("model_cohort_scores contains NaN or infinity (first at index (2, 4))")):
        znorm(s, z)
    bad = s.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="scores contains NaN or infinity"):
        tnorm(bad, mats["t"])
    t = mats["t"].copy()
    t[:, 3] = 2.0
    with pytest.raises(ValueError, match="cohort_probe_scores column 3 has a zero standard deviation"):
        tnorm(s, t)


def test_mismatched_shapes_are_rejected(mats):
    s, z, t, tz = mats["s"], mats["z"], mats["t"], mats["tz"]
    with pytest.raises(ValueError, match=re.escape("model_cohort_scores must have 7 rows (one per model); got shape (6, 11)")):
        znorm(s, z[:6])
    with pytest.raises(ValueError, match=re.escape("cohort_probe_scores must have 9 columns (one per probe)")):
        tnorm(s, t[:, :8])
    with pytest.raises(ValueError, match="cohort_cohort_scores must have 11 columns"):
        ztnorm(s, z, t, tz[:, :10])
    with pytest.raises(ValueError, match="same_speaker_mask must have the shape"):
        ztnorm(s, z, t, tz, np.zeros((11, 13), bool))
    with pytest.raises(TypeError, match="same_speaker_mask must be a boolean array"):
        ztnorm(s, z, t, tz, np.zeros((13, 11)))
    with pytest.raises(ValueError, match="scores must be a 2-D array"):
        znorm(s[0], z)
    with pytest.raises(ValueError, match="top_n must be None or an integer > ddof"):
        adaptive_snorm(s, z, t, top_n=1)
    with pytest.raises(ValueError, match="ddof must be an integer >= 0"):
        znorm(s, z, ddof=-1)


def test_normalise_by_name_says_which_matrix_is_missing():
    # before: a bare KeyError: 'cohort_cohort' for ZT-norm without the cohort-vs-cohort scores
    from emkit.evaluation import cohort

    rng = np.random.default_rng(0)
    s = rng.normal(size=(2, 5))
    arrays = {"model_cohort": rng.normal(size=(2, 4)), "cohort_probe": rng.normal(size=(3, 5))}
    with pytest.raises(ValueError, match=r"^arrays has no cohort_cohort or same_speaker, which "
                                         r"zt-norm needs \(all four from cohort_matrices\(\.\.\., "
                                         r"cohort_cohort=True\)\)$"):
        cohort.normalise(s, arrays, "zt")
    with pytest.raises(ValueError, match="^arrays has no model_cohort, which as-norm needs"):
        cohort.normalise(s, {"cohort_probe": arrays["cohort_probe"]}, "as")
    with pytest.raises(ValueError, match="^method must be one of z, t, zt, s, as; got 'q'$"):
        cohort.normalise(s, {}, "q")
    np.testing.assert_array_equal(cohort.normalise(s, {"model_cohort": arrays["model_cohort"]},
                                                   "z"), znorm(s, arrays["model_cohort"]))


def test_adaptive_snorm_says_when_only_the_top_n_are_equal():
    """(it said 'all its usable cohort scores are equal' of a cohort 3, 3, 1)"""
    with pytest.raises(ValueError, match=r"model_cohort_scores \(its top 2\) row 0 has a zero "
                                         "standard deviation"):
        adaptive_snorm([[1.0]], [[3.0, 3.0, 1.0]], [[1.0], [2.0], [0.0]], top_n=2)
