"""Numerical edges of PLDA beyond tests/evaluation/test_numerical_extremes_scoring.py: vectors
far out of the training data's scale at scoring time, data at the ends of the float64 range, ranks
dim_f/dim_g above what the data support.  Each test states the expected behaviour: the numbers of
an equivalent well-scaled problem, or an error naming the argument and the cause."""

import numpy as np
import pytest
from _parity import assert_parity

from emkit.plda import PLDA

MODELS = ("two-covariance", "simplified", "full")


def _labelled(per_class=3, n_classes=6, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), per_class)
    return rng.normal(size=(n_classes, dim))[y] * 3 + rng.normal(size=(len(y), dim)), y


def _trained(model, X, y, **kwargs):
    params = dict(dim_f=2, dim_g=2, max_iterations=3, convergence_threshold=None)
    params.update(kwargs)
    return PLDA(model=model, **params).fit(X, y)


@pytest.mark.parametrize("model", MODELS)
def test_a_score_that_overflows_float64_is_refused_naming_models_and_probes(model):
    """Before: -inf scores, silently (an overflow RuntimeWarning from numpy under -W error)."""
    X, y = _labelled()
    plda = _trained(model, X, y)
    models = plda.enroll(X[:6], y[:6])
    with pytest.raises(ValueError, match=r"^the log-likelihood ratio at index \(0, 0\) overflows "
                                         r"float64 \(models hold values up to 4\.14 in magnitude, "
                                         r"probes up to 5\.94e\+200\)"):
        plda.log_likelihood_ratio(models, X[6:8] * 1e200)
    with pytest.raises(ValueError, match=r"^the log-likelihood ratio at index \(0, 0\) overflows "
                                         r"float64 \(models hold values up to 4\.14e\+200"):
        plda.log_likelihood_ratio(plda.enroll(X[:6] * 1e200, y[:6]), X[6:8])


def test_a_score_that_overflows_a_float32_out_is_refused():
    X, y = _labelled()
    plda = _trained("two-covariance", X, y)
    models = plda.enroll(X[:6], y[:6])
    far = X[6:8] * 1e20  # scores about -2e41: finite in float64, not in float32
    assert np.isfinite(plda.log_likelihood_ratio(models, far)).all()
    out = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=r"^the log-likelihood ratio at index \(0, 0\) overflows float32"):
        plda.log_likelihood_ratio(models, far, out=out)


@pytest.mark.parametrize("model", MODELS)
def test_far_but_representable_scores_are_kept(model):
    """(guard) probes 1e100 away give scores near -5e201: finite, returned as computed."""
    X, y = _labelled()
    plda = _trained(model, X, y)
    scores = plda.log_likelihood_ratio(plda.enroll(X[:6], y[:6]), X[6:8] * 1e100)
    assert np.isfinite(scores).all() and (scores < -1e201).all()


@pytest.mark.parametrize("model", MODELS)
def test_scores_do_not_depend_on_the_unit_of_the_data(model):
    """(guard) data multiplied by 1e150 give the same LLRs: the model is invariant to the unit."""
    X, y = _labelled()
    expected = _trained(model, X, y).log_likelihood_ratio(X[:6], X[6:])
    plda = _trained(model, X * 1e150, y)
    assert_parity(plda.log_likelihood_ratio(X[:6] * 1e150, X[6:] * 1e150), expected, tol=1e-10)


@pytest.mark.parametrize("model", ["two-covariance", "simplified"])
def test_dim_f_above_the_number_of_classes_trains_and_scores_finite(model):
    """(guard) dim_f = 5 with 6 classes of 3 samples: F has more columns than the between-class
    scatter supports; training stays finite, and the simplified model with dim_f = D is the
    two-covariance model (same scores)."""
    X, y = _labelled()
    two_cov = _trained("two-covariance", X, y, dim_f=5).log_likelihood_ratio(X[:6], X[6:])
    scores = _trained(model, X, y, dim_f=5).log_likelihood_ratio(X[:6], X[6:])
    assert_parity(scores, two_cov, tol=1e-10)


@pytest.mark.parametrize("model", MODELS)
def test_log_likelihood_of_data_too_large_to_square_is_refused_naming_x(model):
    """Before: NaN, silently (numpy's overflow RuntimeWarning only); data 1e100 away still give
    their finite log-likelihood (about -5.5e201)."""
    X, y = _labelled()
    plda = _trained(model, X, y)
    assert -6e201 < plda.log_likelihood(X * 1e100, y) < -5e201
    with pytest.raises(ValueError, match=r"^the scatter of X overflows float64 \(X holds values too "
                                         r"large to square, above about 1e154 in magnitude\): rescale X$"):
        plda.log_likelihood(X * 1e200, y)


def test_fit_on_data_too_large_to_square_names_x_under_warnings_as_errors():
    """pytest turns warnings into errors: before, numpy's 'overflow encountered in matmul'
    RuntimeWarning came first (the named ValueError only with numpy's warnings silenced)."""
    X, y = _labelled()
    with pytest.raises(ValueError, match=r"^the scatter of X overflows float64"):
        PLDA(dim_f=2, dim_g=2).fit(X * 1e200, y)


def test_fit_on_data_too_large_to_square_names_x_when_rows_run_in_worker_threads(monkeypatch):
    """From 2 * 8192 rows the statistics pass runs in emkit's worker threads; before, they did not
    see class_statistics' np.errstate and numpy's overflow RuntimeWarning came first."""
    from emkit import _backend

    monkeypatch.setattr(_backend, "n_threads", lambda: 2)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(2 * 8192 + 1, 3)), np.arange(2 * 8192 + 1) % 4
    with pytest.raises(ValueError, match=r"^the scatter of X overflows float64"):
        PLDA(dim_f=1, dim_g=1).fit(X * 1e200, y)


@pytest.mark.parametrize("probe_counts", ["one count", "two counts"])
def test_an_overflowing_score_is_refused_at_its_block_with_its_offsets(probe_counts):
    """Each block of models is checked as it is written: the error names the score's index in the
    whole matrix, and the blocks after it are not computed (before, the whole matrix was computed
    and then read again: a second pass over a memory-mapped out)."""
    X, y = _labelled(per_class=3, n_classes=6)
    plda = _trained("two-covariance", X, y, block_size=2)
    models = X[:7].copy()
    models[5] *= 1e200  # in the third block of 2 models
    probes = [X[7:8], X[8:10], X[10:11]] if probe_counts == "two counts" else X[7:10]
    out = np.full((7, 3), 123.0)
    with pytest.raises(ValueError, match=r"^the log-likelihood ratio at index \(5, 0\) overflows "
                                         r"float64 \(models hold values up to \S+e\+200"):
        plda.log_likelihood_ratio(models, probes, out=out)
    # (column 0: probes of one count, scored block after block; the fourth block never was)
    assert out[6, 0] == 123.0 and np.isfinite(out[:4, 0]).all() and (out[:4, 0] != 123.0).all()
