"""The fitted transforms of an i-vector back-end rebuilt from the arrays of its file
(:mod:`emkit.io.systems` reads and checks them), through the classes' own constructors; the
reader's fresh arrays are kept, not copied."""

from __future__ import annotations


def _whitening_from_arrays(weights, input_subtract, input_divide):
    """A fitted :class:`~emkit.whitening.Whitening`: ``weights`` (R, R), ``input_subtract``
    (R,) or a float, ``input_divide`` a non-zero float."""
    from ..whitening import Whitening

    return Whitening._from_fitted(weights, input_subtract, input_divide, copy=False)


def _wccn_from_arrays(weights, input_subtract, input_divide):
    """A fitted :class:`~emkit.wccn.WCCN` (arrays as :func:`_whitening_from_arrays`)."""
    from ..wccn import WCCN

    return WCCN._from_fitted(weights, input_subtract, input_divide, copy=False)


def _lda_from_arrays(weights, input_subtract, eigenvalues):
    """A fitted :class:`~emkit.lda.LDA`: ``weights`` (R, K), ``input_subtract`` (R,),
    ``eigenvalues`` (K,)."""
    from ..lda import LDA

    return LDA._from_fitted(weights, input_subtract, eigenvalues, copy=False)
