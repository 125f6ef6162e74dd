"""The fitted transforms of an i-vector back-end rebuilt from the arrays of its file.

The one place where the experiment layer builds a Whitening, WCCN or LDA from stored arrays
(:mod:`emkit.io.systems` reads and checks them).  Until those classes have their own
constructors from fitted arrays, these functions fill in the public fitted attributes the way
``fit`` leaves them.
"""

from __future__ import annotations


def _projection(step, weights, input_subtract, input_divide):
    R = weights.shape[0]
    step.weights = weights
    step.input_subtract = input_subtract
    step.input_divide = input_divide
    step.n_features_in_ = step._n_features_out = R
    return step


def _whitening_from_arrays(weights, input_subtract, input_divide):
    """A fitted :class:`~emkit.whitening.Whitening`: ``weights`` (R, R), ``input_subtract``
    (R,) or a float, ``input_divide`` a non-zero float."""
    from ..whitening import Whitening

    return _projection(Whitening(), weights, input_subtract, input_divide)


def _wccn_from_arrays(weights, input_subtract, input_divide):
    """A fitted :class:`~emkit.wccn.WCCN` (arrays as :func:`_whitening_from_arrays`)."""
    from ..wccn import WCCN

    return _projection(WCCN(), weights, input_subtract, input_divide)


def _lda_from_arrays(weights, input_subtract, eigenvalues):
    """A fitted :class:`~emkit.lda.LDA`: ``weights`` (R, K), ``input_subtract`` (R,),
    ``eigenvalues`` (K,)."""
    from ..lda import LDA

    lda = LDA(weights.shape[1])
    lda.weights = weights
    lda.input_subtract = input_subtract
    lda.eigenvalues_ = eigenvalues
    lda.n_features_in_ = weights.shape[0]
    return lda
