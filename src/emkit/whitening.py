"""``Whitening``: Cholesky whitening of row vectors, as ``bob.learn.em.Whitening``.

``fit`` estimates the mean ``mu`` and the unbiased covariance ``Cov`` (divided by N - 1, as the
reference) and stores the lower-triangular ``weights = W`` with ``W W' = Cov^-1``;
``transform(X) = (X - mu) @ W``, whose sample covariance is the identity.

Without ``pinv``, W comes from one Cholesky factorisation of the covariance with its rows and
columns reversed (``J Cov J = L L'`` gives ``W = J L^-T J``), without forming ``Cov^-1``; this is
the same factor as the reference's ``cholesky(inv(Cov))``, computed more stably.  With
``pinv=True`` the pseudo-inverse is factorised, as in the reference.

A scikit-learn transformer: use it in a ``Pipeline``, e.g. before
``sklearn.preprocessing.Normalizer()`` (length normalisation), ``LinearDiscriminantAnalysis`` and
:class:`emkit.wccn.WCCN` (see :mod:`emkit.ivector` for an i-vector back-end).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._fitted import FittedArray, PicklesFitted, set_fitted
from ._feature_names import FeatureNamesMixin
from ._describe import describe
from ._object_arrays import objects_as_numbers
from ._validation import check_bool, check_frames, is_dask_collection
from .io._registry import register

__all__ = ["Whitening", "SingularError"]


class SingularError(np.linalg.LinAlgError, ValueError):
    """A covariance that is singular (or not positive definite) without ``pinv``.

    A ``numpy.linalg.LinAlgError``, as the reference raised, so that code catching that keeps
    working, and a ``ValueError`` (which numpy's is only from numpy 2 on).
    """


def _pinv_factor(M: np.ndarray):
    """The Cholesky factor of ``pinv(M)``, or None where it is not positive definite.  M is scaled
    by a power of four first (``pinv`` of a tiny M overflowed, of a huge one underflowed)."""
    top = float(np.max(np.abs(M))) if M.size else 0.0
    k = 0 if not (np.isfinite(top) and top > 0) else round(np.log2(top) / 2)
    try:
        W = np.ldexp(np.linalg.cholesky(scipy.linalg.pinv(np.ldexp(M, -2 * k))), -k)
    except np.linalg.LinAlgError:
        return None
    return W if np.isfinite(W).all() else None


def check_scatter(M: np.ndarray, what: str) -> None:
    """Refuse a covariance or scatter ``what`` that overflowed float64 (its data too large to square)."""
    if not np.isfinite(M).all():
        raise ValueError(f"the {what} overflows float64 (X holds values too large to square, above about "
                         "1e154 in magnitude): rescale X")


#: Smallest spread of the data whose covariance float64 holds to full precision: the squares of
#: smaller differences fall near or below 2**-1022, where float64 keeps fewer digits (a whitening
#: of data at 1e-160 was 2e-4 wrong, an LDA 6e-2) or none (the covariance 0: "singular").
_SMALLEST_SPREAD = 2.0**-500  # about 3e-151


def check_spread(X: np.ndarray, owner: str, scatter: np.ndarray, deviations=None) -> None:
    """Refuse samples ``X`` (N, D) that differ, but only by less than about 3e-151 (the largest
    range of a feature): their covariance underflows float64.  ``scatter`` (D, D) is a covariance
    or scatter of X (a sum or a mean of squared deviations): only when its diagonal is that small
    (below 2**-900, which a spread of 2**-500 cannot exceed for N < 2**100) is X read again.
    ``deviations`` (N, D), when the scatter is within-class: those of the samples from their
    class means, refused alike when they are that small (however far apart the classes are).
    Constant data are left to the caller, which names them."""
    if not np.max(np.diagonal(scatter), initial=0.0) < 2.0**-900:
        return
    for data, where in ((X, "within a feature"), (deviations, "within a class")):
        with np.errstate(over="ignore"):
            spread = float(np.max(np.ptp(data, axis=0))) if data is not None and data.size else 0.0
        if 0.0 < spread < _SMALLEST_SPREAD:
            raise ValueError(f"X varies by at most {spread:.3g} {where}: too little to square in "
                             f"float64 (below about 3e-151 the covariance underflows), so {owner} "
                             "cannot estimate it; rescale X")


def inverse_cholesky_factor(M: np.ndarray, pinv: bool, what: str) -> np.ndarray:
    """Lower-triangular ``W`` with ``W W' = M^-1`` (``M^+`` with ``pinv``), M symmetric (D, D)."""
    check_scatter(M, what)
    reduce = ("reduce the dimension of the data first, e.g. with PCA (a constant or collinear "
              "feature makes it rank-deficient)")
    if pinv:
        W = _pinv_factor(M)
        if W is None:
            raise SingularError(f"the pseudo-inverse of the {what} is not positive definite (the "
                                f"{what} is rank-deficient): {reduce}")
        return W

    def singular():  # pinv=True is suggested only where it would succeed
        advice = ("use pinv=True, or " if _pinv_factor(M) is not None else "") + reduce
        return SingularError(f"the {what} is singular or not positive definite: {advice}")

    try:
        L = np.linalg.cholesky(M[::-1, ::-1])
    except np.linalg.LinAlgError:
        raise singular() from None
    # a rank-deficient M can survive the factorisation by rounding: its pivot is then ~eps
    if np.min(np.diagonal(L)) ** 2 <= len(M) * np.finfo(float).eps * np.max(np.diagonal(M)):
        raise singular()
    # M = U U' with U = J L J upper triangular, so W = U^-T = J L^-T J
    L_inv = scipy.linalg.solve_triangular(L, np.eye(len(L)), lower=True)
    return np.ascontiguousarray(L_inv.T[::-1, ::-1])


def check_projection(weights, input_subtract, input_divide, *, square: bool):
    """``(weights, input_subtract, input_divide)`` of a linear transform ``((x - s) / d) @ W``,
    checked: ``weights`` (D, K) finite ((D, D) when ``square``), ``input_subtract`` a scalar or
    (D,), ``input_divide`` a finite non-zero number."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2 or weights.size == 0 or (square and weights.shape[0] != weights.shape[1]):
        want = "a square (D, D)" if square else "a (D, K)"
        raise ValueError(f"weights must be {want} matrix; got shape {weights.shape}")
    subtract = np.asarray(input_subtract, dtype=np.float64)
    if subtract.shape not in ((), (weights.shape[0],)):
        raise ValueError(f"input_subtract must be a number or of shape ({weights.shape[0]},); got "
                         f"shape {subtract.shape}")
    if not (np.isfinite(weights).all() and np.isfinite(subtract).all()):
        raise ValueError("weights and input_subtract must hold finite values; got NaN or infinity")
    try:
        divide = float(input_divide) if np.ndim(input_divide) == 0 else None
    except (TypeError, ValueError):
        divide = None
    if divide is None or not np.isfinite(divide) or divide == 0:
        raise ValueError(f"input_divide must be a finite non-zero number; got "
                         f"{type(input_divide).__name__} {np.shape(input_divide)}")
    return weights, subtract, divide


def _check_assigned_shapes(transform, D: int, divide) -> None:
    """Refuse ``weights``/``input_subtract``/``input_divide`` (assigned by the user) that do not
    fit D-feature frames: numpy's broadcasting or matmul error named none of them."""
    name = type(transform).__name__
    weights = transform.weights
    if np.ndim(weights) != 2 or np.shape(weights)[0] != D:
        raise ValueError(f"{name}.weights has shape {np.shape(weights)}; frames of D = {D} "
                         f"features need weights of shape ({D}, k)")
    for attribute, value in (("input_subtract", transform.input_subtract), ("input_divide", divide)):
        if np.shape(value) not in ((), (D,)):
            raise ValueError(f"{name}.{attribute} has shape {np.shape(value)}; frames of D = {D} "
                             f"features need a number or shape ({D},)")
        _check_assigned_values(f"{name}.{attribute}", value, nonzero=attribute == "input_divide")


def _check_assigned_values(label: str, value, nonzero: bool) -> None:
    """Refuse an assigned ``input_subtract``/``input_divide`` (``label``) of text, NaN or inf (or
    a 0 divisor): the result was numpy's ufunc error, NaN named as an overflow, or zeros."""
    values = np.asarray(value)
    need = "finite non-zero numbers" if nonzero else "finite numbers"
    if values.dtype.kind not in "biuf":
        raise TypeError(f"{label} must hold {need}; got {type(value).__name__}: {describe(value)}")
    bad = ~np.isfinite(values) | (nonzero & (values == 0))
    if bad.any():
        first = int(np.argmax(bad))
        where = "" if values.ndim == 0 else f" ({values.flat[first]} at index {first})"
        raise ValueError(f"{label} must hold {need}; got {describe(value)}{where}")


def apply_projection(X: np.ndarray, transform) -> np.ndarray:
    """``((X - input_subtract) / input_divide) @ weights`` of a fitted ``transform``; a result that
    overflows float64 (a model file's weights far out of scale, say) is refused, not returned."""
    divide = getattr(transform, "input_divide", 1.0)  # (LDA has none)
    _check_assigned_shapes(transform, X.shape[1], divide)
    with np.errstate(over="ignore", invalid="ignore"):
        out = ((X - transform.input_subtract) / divide) @ transform.weights
    if not np.isfinite(out).all():
        raise ValueError(f"{type(transform).__name__}.transform overflows float64 on X (|X| up to "
                         f"{float(np.max(np.abs(X))):.3g}, |weights| up to "
                         f"{float(np.max(np.abs(transform.weights))):.3g}, input_divide {float(divide):.3g})")
    return out


class Whitening(FeatureNamesMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, PicklesFitted,
                BaseEstimator):
    """Whitening transform ``x -> (x - mu) @ W`` with ``W W' = Cov^-1`` (W lower triangular).

    Parameters
    ----------
    pinv : bool
        Use the pseudo-inverse of the covariance (for nearly singular data).

    Attributes
    ----------
    weights : ndarray (D, D)
        Lower-triangular projection matrix W.
    input_subtract : ndarray (D,)
        The training mean, subtracted before projecting.
    input_divide : float
        1.0 (kept for compatibility with the reference).
    n_features_in_ : int
    """

    _FEATURE_AXES = {"weights": 0, "input_subtract": 0}
    weights = FittedArray("Lower-triangular projection matrix W, (D, D)")
    input_subtract = FittedArray("The training mean, subtracted before projecting, (D,)")

    def __init__(self, pinv: bool = False):
        self.pinv = pinv

    @classmethod
    def _from_fitted(cls, weights, input_subtract, input_divide=1.0, *, pinv=False,
                     copy: bool = True) -> "Whitening":
        """A fitted Whitening from plain arrays (e.g. a file's contents): ``weights`` (D, D),
        ``input_subtract`` (D,) or a scalar, ``input_divide`` a non-zero number (copied;
        ``copy=False`` keeps float64 arrays the caller owns: a file's reader's, which a copy
        would double in the memory of a load, and of save's read-back)."""
        white = cls(pinv=pinv)
        white._set_fitted(*check_projection(weights, input_subtract, input_divide, square=True),
                          copy=copy)
        return white

    def _set_fitted(self, weights, input_subtract, input_divide, copy: bool = True) -> None:
        set_fitted(self, "weights", weights, copy=copy)
        set_fitted(self, "input_subtract", input_subtract, copy=copy)
        self.input_divide = float(input_divide)
        self.n_features_in_ = int(np.shape(weights)[0])

    @property
    def _n_features_out(self) -> int:
        """The output's number of features (scikit-learn's ``get_feature_names_out``): the
        columns of ``weights``, as assigned."""
        return int(self.weights.shape[1])

    def fit(self, X, y=None) -> "Whitening":
        """Estimate the mean and the (N - 1) covariance of ``X``, and its whitening matrix.

        Parameters
        ----------
        X : array-like of shape (N, D)
            At least 2 finite samples.
        y : None
            Ignored.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Fewer than 2 samples; a ``SingularError`` (a ValueError) when the covariance is
            singular and ``pinv`` is False.
        """
        raw = X
        X = check_frames(X, "X", ensure_2d=True, owner=type(self).__name__, in_memory=True)
        if X.shape[0] < 2:
            raise ValueError("X must have at least 2 samples to estimate a covariance; got "
                             f"n_samples = {X.shape[0]}")
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused by name
            cov = np.atleast_2d(np.cov(X, rowvar=False))
        check_spread(X, type(self).__name__, cov)
        self._set_fitted(inverse_cholesky_factor(cov, check_bool(self.pinv, "pinv"), "covariance of X"),
                         X.mean(axis=0), 1.0)
        self._record_feature_names(raw)
        return self

    def transform(self, X) -> np.ndarray:
        """``((X - input_subtract) / input_divide) @ weights``.

        Parameters
        ----------
        X : array-like of shape (N, D) or (D,)
            Samples, or one sample (as the reference).

        Returns
        -------
        ndarray of shape (N, D) or (D,), float64
        """
        check_is_fitted(self, "weights")
        self._check_feature_names(X)
        if not is_dask_collection(X):
            X = np.asarray(objects_as_numbers(X, "X"))  # (None named, not NaN)
        one_sample = X.ndim == 1  # the reference returned (D,) for one 1-D sample
        X = check_frames(X, "X", n_features=self.n_features_in_, owner=type(self).__name__,
                         in_memory=True)
        out = apply_projection(X, self)
        return out[0] if one_sample else out


register(Whitening, "Whitening", write="emkit.io.transforms:write_whitening",
         read="emkit.io.transforms:read_whitening")
