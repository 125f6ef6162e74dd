"""Arguments of the wrong type or value: an error naming the argument, what was expected and what
was received (each case below was numpy's or Python's own error, or silently accepted)."""

import re
import warnings

import numpy as np
import pytest

from emkit import (PLDA, WCCN, GMMMachine, ISVMachine, IVectorMachine, JFAMachine, KMeansMachine,
                   Whitening, linear_scoring)


SEED = "random_state must be an integer seed in [0, 2**32 - 1]; got -3"


@pytest.mark.parametrize("fit", [
    # was numpy's "Seed must be between 0 and 2**32 - 1", naming no argument
    lambda X, y, ubm, stats, labels: ISVMachine(1, ubm=ubm, random_state=-3).fit(stats, labels),
    lambda X, y, ubm, stats, labels: JFAMachine(1, 1, ubm=ubm, random_state=-3).fit(stats, labels),
    lambda X, y, ubm, stats, labels: IVectorMachine(ubm, random_state=-3).fit(stats),
    lambda X, y, ubm, stats, labels: PLDA("simplified", init_method="random",
                                          random_state=-3).fit(X, y),
], ids=["isv", "jfa", "ivector", "plda"])
def test_a_negative_seed_is_named(small, fit):
    with pytest.raises(ValueError, match=re.escape(SEED)):
        fit(*small)


@pytest.mark.parametrize("kwargs, message", [
    # accepted: True as a threshold of 1, NaN never converged, inf stopped at the first test
    (dict(convergence_threshold=True), "convergence_threshold must be None or a finite number "
                                       ">= 0; got True"),
    (dict(convergence_threshold=float("nan")), "convergence_threshold must be None or a finite "
                                               "number >= 0; got nan"),
    (dict(convergence_threshold=float("inf")), "convergence_threshold must be None or a finite "
                                               "number >= 0; got inf"),
    # NaN and True were accepted, inf ended in a FloatingPointError about -inf likelihoods
    (dict(variance_floor=float("nan")), "variance_floor must be a finite number >= 0; got nan"),
    (dict(variance_floor=float("inf")), "variance_floor must be a finite number >= 0; got inf"),
    (dict(variance_floor=True), "variance_floor must be a finite number >= 0; got True"),
])
def test_ivector_thresholds_are_finite_numbers(small, kwargs, message):
    ubm, stats = small[2], small[3]
    with pytest.raises(ValueError, match=re.escape(message)):
        IVectorMachine(ubm, max_iterations=2, **kwargs).fit(stats)


@pytest.mark.parametrize("kwargs, message", [
    (dict(convergence_threshold=True), "convergence_threshold must be a finite number >= 0 or "
                                       "None; got True"),
    (dict(convergence_threshold=float("inf")), "convergence_threshold must be a finite number "
                                               ">= 0 or None; got inf"),
    (dict(variance_threshold=False), "variance_threshold must be a finite float >= 0; got False"),
])
def test_plda_thresholds_are_finite_numbers_not_bools(small, kwargs, message):
    X, y = small[0], small[1]
    with pytest.raises(ValueError, match=re.escape(message)):
        PLDA(max_iterations=2, **kwargs).fit(X, y)


@pytest.mark.parametrize("machine", ["isv", "jfa"])
@pytest.mark.parametrize("y, shown", [(3, "int 3"), (True, "bool True"),
                                      (np.array(2), "ndarray array(2)"), ("abcd", "str 'abcd'")])
def test_factor_analysis_labels_must_be_a_sequence(small, machine, y, shown):
    # was "object of type 'int' has no len()" (a str was taken as one label per character)
    ubm, stats = small[2], small[3]
    model = ISVMachine(1, ubm=ubm) if machine == "isv" else JFAMachine(1, 1, ubm=ubm)
    with pytest.raises(TypeError, match=re.escape("y must be a sequence of class labels, one per "
                                                  f"session; got {shown}")):
        model.fit(stats[:4], y)


@pytest.mark.parametrize("offsets, shown", [("abc", "str 'abc'"), (None, "NoneType None"),
                                            (["a", "b"], "list ['a', 'b']"),
                                            ([[1.0, 2.0], [3.0]], "list [[1.0, 2.0], [3.0]]"),
                                            (1 + 2j, "complex (1+2j)")])
def test_linear_scoring_offsets_must_be_numbers(small, offsets, shown):
    # was numpy's "could not convert string to float", and None was "contains NaN"
    ubm, stats = small[2], small[3]
    with pytest.raises(TypeError, match=re.escape(
            "test_channel_offsets must be a number or an array of numbers (a scalar, (C, D), "
            f"(P, C, D) or (P, C*D)); got {shown}")):
        linear_scoring(ubm.means[None], ubm, stats, test_channel_offsets=offsets)


def test_linear_scoring_offsets_of_numbers_still_score_as_arrays(small):
    ubm, stats = small[2], small[3]
    models = ubm.means[None] + 0.5
    as_array = linear_scoring(models, ubm, stats, test_channel_offsets=np.full((2, 3), 0.25))
    as_objects = linear_scoring(models, ubm, stats,
                                test_channel_offsets=np.full((2, 3), 0.25, dtype=object))
    np.testing.assert_array_equal(as_objects, as_array)
    assert not np.array_equal(as_array, linear_scoring(models, ubm, stats))


@pytest.mark.parametrize("fit", [lambda X: KMeansMachine(2).fit(X),
                                 lambda X: GMMMachine(2).fit(X),
                                 lambda X: WCCN().fit(X, [0, 1]), lambda X: Whitening().fit(X)],
                         ids=["kmeans", "gmm", "wccn", "whitening"])
@pytest.mark.parametrize("X, shown", [(None, "the scalar None"), (2.5, "the scalar 2.5"),
                                      (np.array(-1), "the scalar array(-1)"),
                                      ({"a": 1}, "a dict {'a': 1}")])
def test_a_scalar_for_training_frames_names_x(fit, X, shown):
    # was scikit-learn's "Expected 2D array, got scalar array instead: array=None"
    message = f"X must be an array of samples; got {shown}. Reshape your data to (n_samples, "
    with pytest.raises(ValueError, match=re.escape(message + "n_features).")):
        fit(X)


def _comparable(small, kind):
    X, ubm, stats = small[0], small[2], small[3]
    if kind == "kmeans":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (a short fit: a convergence warning)
            return KMeansMachine(2, max_iter=2).fit(X)
    return {"gmm": ubm, "stats": stats[0]}[kind]


@pytest.mark.parametrize("kind, other_name, expected, tolerances", [
    ("gmm", "other", "GMMMachine", ("rtol", "atol")),
    ("kmeans", "obj", "KMeansMachine", ("r_epsilon", "a_epsilon")),
    ("stats", "other", "GMMStats", ("rtol", "atol")),
])
def test_is_similar_to_names_what_it_compares_with(small, kind, other_name, expected, tolerances):
    # was "'str' object has no attribute 'means'" (GMMMachine, GMMStats: 'shape'), or for
    # KMeansMachine False with a warning to call fit; tolerances: numpy's "ufunc 'isfinite' not
    # supported for the input types", and a negative one was used
    machine = _comparable(small, kind)
    with pytest.raises(TypeError, match=re.escape(f"{other_name} must be a {expected} to compare "
                                                  "with; got str: 'x'")):
        machine.is_similar_to("x")
    with pytest.raises(TypeError, match=re.escape(f"{tolerances[0]} must be a real number; got "
                                                  "str: 'a'")):
        machine.is_similar_to(machine, **{tolerances[0]: "a"})
    with pytest.raises(ValueError, match=re.escape(f"{tolerances[1]} must be >= 0; got -1")):
        machine.is_similar_to(machine, **{tolerances[1]: -1})
    assert machine.is_similar_to(machine, 0, 0)


@pytest.mark.parametrize("shape, message", [
    ((-1, 2), (ValueError, "n_gaussians must be an integer >= 0; got -1")),
    ((2, 2.5), (TypeError, "n_features must be an integer >= 0; got float: 2.5")),
])
def test_gmm_stats_resize_names_a_bad_size_and_keeps_the_statistics(small, shape, message):
    # was numpy's "negative dimensions are not allowed" / "'float' object cannot be interpreted
    # as an integer", after the new shape was stored: shape said (-1, 2) of (2, 3) arrays
    stats = small[3][0].copy()
    before = stats.copy()
    with pytest.raises(message[0], match=re.escape(message[1])):
        stats.resize(*shape)
    assert stats.shape == before.shape and stats == before
    stats.resize(4, 1)
    assert stats.shape == (4, 1) and stats.sum_px.shape == (4, 1)


@pytest.mark.parametrize("model, kwargs, error, message", [
    ("two-covariance", dict(dim_f=-1), ValueError, "dim_f must be an integer >= 1; got -1"),
    ("two-covariance", dict(dim_g=1.5), TypeError, "dim_g must be an integer >= 1; got float: 1.5"),
    ("simplified", dict(dim_g=0), ValueError, "dim_g must be an integer >= 1; got 0"),
    ("simplified", dict(dim_g="3"), TypeError, "dim_g must be an integer >= 1; got str: '3'"),
])
def test_plda_sizes_its_model_ignores_are_still_checked(small, model, kwargs, error, message):
    # were accepted without a word (the model does not use them), so a typo went unseen
    X, y = small[0], small[1]
    with pytest.raises(error, match=re.escape(message)):
        PLDA(model, max_iterations=1, **kwargs).fit(X, y)
