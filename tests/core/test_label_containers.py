"""Labels given as a mapping or a set are refused by the estimators trained with labels: a dict
iterates over its keys (``{session: label}`` trained on the session numbers as labels) and a set
has no order (its labels would not line up with the sessions).  Estimators that ignore ``y``, as
scikit-learn's do, still ignore it."""

import re

import numpy as np
import pytest

from emkit import (PLDA, WCCN, GMMMachine, ISVMachine, IVectorMachine, JFAMachine,
                   KMeansMachine)
from emkit.lda import LDA


FITS = {
    "isv": (lambda X, ubm, stats, y: ISVMachine(1, ubm=ubm).fit(stats, y), "session", 10),
    "jfa": (lambda X, ubm, stats, y: JFAMachine(1, 1, ubm=ubm).fit(stats, y), "session", 10),
    "plda": (lambda X, ubm, stats, y: PLDA("simplified").fit(X, y), "sample", 120),
    "wccn": (lambda X, ubm, stats, y: WCCN().fit(X, y), "row of X", 120),
    "lda": (lambda X, ubm, stats, y: LDA(1).fit(X, y), "row of X", 120),
}


@pytest.mark.parametrize("estimator", list(FITS))
def test_a_dict_of_labels_is_refused(small, estimator):
    # ISV/JFA trained on the dict's keys 0..9 as labels (10 classes of one session each)
    fit, per, n = FITS[estimator]
    y = {i: i // 2 for i in range(n)}
    with pytest.raises(TypeError, match=re.escape(
            f"y must be a sequence of class labels, one per {per}; got a dict of {n} items (its "
            "keys would be taken as the labels; pass list(y.values()) if its values are the "
            "labels)")):
        fit(small[0], small[2], small[3], y)


@pytest.mark.parametrize("estimator", list(FITS))
@pytest.mark.parametrize("kind", [set, frozenset])
def test_a_set_of_labels_is_refused(small, estimator, kind):
    fit, per, n = FITS[estimator]
    with pytest.raises(TypeError, match=re.escape(
            f"y must be a sequence of class labels, one per {per}; got a {kind.__name__} of {n} "
            "labels, whose order is arbitrary")):
        fit(small[0], small[2], small[3], kind(range(n)))


def test_a_set_in_the_per_class_form_is_refused(small):
    ubm, stats = small[2], small[3]
    X = [list(stats[:2]), list(stats[2:3])]
    with pytest.raises(TypeError, match=re.escape(
            "y[1] must be a sequence of class labels, one per session of X[1]; got a set of 1 "
            "labels, whose order is arbitrary")):
        ISVMachine(1, ubm=ubm).fit(X, [[0, 0], {1}])


def test_the_values_of_a_dict_as_the_error_suggests(small):
    ubm, stats, labels = small[2], small[3], small[4]
    by_session = dict(enumerate(labels.tolist()))
    with pytest.raises(TypeError, match=re.escape("y must be a sequence of class labels, one per "
                                                  "session; got a dict_values of 10 items, which "
                                                  "cannot be indexed")):
        ISVMachine(1, ubm=ubm).fit(stats, by_session.values())  # was "not subscriptable"
    from_values = ISVMachine(1, ubm=ubm, random_state=0).fit(stats, list(by_session.values()))
    from_list = ISVMachine(1, ubm=ubm, random_state=0).fit(stats, labels)
    np.testing.assert_allclose(from_values.U, from_list.U, rtol=0, atol=1e-12)


@pytest.mark.parametrize("fit", [
    lambda X, ubm, stats: KMeansMachine(2, random_state=0).fit(X, {"ignored": 1}),
    lambda X, ubm, stats: GMMMachine(2, max_fitting_steps=2, random_state=0).fit(X, {1, 2}),
    lambda X, ubm, stats: IVectorMachine(ubm, dim_t=2, max_iterations=1).fit(stats, {0: 1}),
], ids=["kmeans", "gmm", "ivector"])
def test_unsupervised_estimators_still_ignore_y(small, fit):
    assert fit(small[0], small[2], small[3]) is not None
