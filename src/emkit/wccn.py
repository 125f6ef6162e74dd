"""``WCCN``: within-class covariance normalisation (Hatch et al., 2006), as ``bob.learn.em.WCCN``.

``fit(X, y)`` computes the within-class scatter ``Sw = sum_k sum_{n in k} (x_n - m_k)(x_n - m_k)'``,
scales it by ``1 / K`` (K = number of classes, as the reference: its docstring said 1/N) and
stores the lower-triangular ``weights = W`` with ``W W' = (Sw / K)^-1``;
``transform(X) = X @ W``, after which the within-class scatter divided by K is the identity.

Differences from the reference: labels may be any hashable values (the reference indexed arrays
with them, so they had to be 0..K-1), and ``transform`` returns an (N, D) array instead of a list
of rows (an array iterates the same way).  Without ``pinv`` W comes from a Cholesky factorisation
of ``Sw / K`` (see :mod:`emkit.whitening`), never from an explicit inverse.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._fitted import FittedArray, PicklesFitted, set_fitted
from ._labels import check_label_sequence, encode_labels
from ._feature_names import FeatureNamesMixin
from ._validation import check_bool, check_frames
from .io._registry import register
from .whitening import (SingularError, apply_projection, check_projection, check_spread,
                        inverse_cholesky_factor)

__all__ = ["WCCN"]


def _encode_labels(y, n_samples: int):
    """``(classes, codes)`` with ``classes[codes] == y``, for labels of any hashable type."""
    if y is None:
        raise ValueError("WCCN requires y to be passed, but the target y is None: one class label "
                         "per row of X is needed")
    check_label_sequence(y, "y", "row of X")
    if not isinstance(y, (list, tuple)):
        y = np.asarray(y)
    sort = isinstance(y, np.ndarray) and y.dtype != object  # lists: first appearance
    codes, classes = encode_labels(y, first_appearance=not sort, per="row of X")
    if len(codes) != n_samples:
        raise ValueError(f"y must have one label per row of X ({n_samples}); got {len(codes)} "
                         "labels")
    return (classes if sort else list(classes)), codes


class WCCN(FeatureNamesMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, PicklesFitted,
           BaseEstimator):
    """Within-class covariance normalisation ``x -> x @ W`` with ``W W' = (Sw / K)^-1``.

    Parameters
    ----------
    pinv : bool
        Use the pseudo-inverse of ``Sw / K`` (for rank-deficient scatter).

    Attributes
    ----------
    weights : ndarray (D, D)
        Lower-triangular projection matrix W.
    input_subtract : float or ndarray (D,)
        0 (kept for compatibility with the reference), also for ``weights`` assigned by hand.
    input_divide : float
        1.0 (kept for compatibility with the reference), also for ``weights`` assigned by hand.
    classes_ : ndarray or list (K,)
        The distinct labels (sorted for numpy label arrays, else in order of first appearance).
    n_features_in_ : int
    """

    _FEATURE_AXES = {"weights": 0}
    weights = FittedArray("Lower-triangular projection matrix W, (D, D)")
    # what fit stores, so that weights assigned by hand (as the reference allows) make a usable
    # WCCN: fit never centres or scales, so these are no training results to be missing
    input_subtract = 0.0
    input_divide = 1.0

    def __init__(self, pinv: bool = False):
        self.pinv = pinv

    @classmethod
    def _from_fitted(cls, weights, input_subtract=0, input_divide=1.0, *, classes=None,
                     pinv=False, copy: bool = True) -> "WCCN":
        """A fitted WCCN from plain arrays (e.g. a file's contents): ``weights`` (D, D) (copied;
        ``copy=False`` keeps a float64 array the caller owns: a file's reader's, which a copy
        would double in the memory of a load, and of save's read-back), ``input_subtract`` a
        scalar or (D,),
        ``input_divide`` a non-zero number, ``classes`` the labels (``classes_`` is left unset
        when None)."""
        wccn = cls(pinv=pinv)
        weights, subtract, divide = check_projection(weights, input_subtract, input_divide,
                                                     square=True)
        wccn._set_fitted(weights, float(subtract) if subtract.ndim == 0 else subtract.copy(),
                         divide, classes, copy=copy)
        return wccn

    def _set_fitted(self, weights, input_subtract, input_divide, classes,
                    copy: bool = True) -> None:
        set_fitted(self, "weights", weights, copy=copy)
        self.input_subtract = input_subtract
        self.input_divide = input_divide
        if classes is not None:
            self.classes_ = classes
        self.n_features_in_ = int(np.shape(weights)[0])

    @property
    def _n_features_out(self) -> int:
        """The output's number of features (scikit-learn's ``get_feature_names_out``): the
        columns of ``weights``, as assigned."""
        return int(self.weights.shape[1])

    def fit(self, X, y) -> "WCCN":
        """Estimate ``W`` with ``W W' = (Sw / K)^-1`` (the reference's 1/K scaling).

        Parameters
        ----------
        X : array-like of shape (N, D)
            The samples, finite.
        y : array-like of shape (N,)
            Class labels, any hashable values (the reference needed 0..K-1).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Fewer than 2 samples, or one sample per class; a ``SingularError`` (a ValueError)
            when the within-class covariance is singular and ``pinv`` is False.
        """
        raw = X
        X = check_frames(X, "X", ensure_2d=True, owner=type(self).__name__, in_memory=True)
        if X.shape[0] < 2:
            raise ValueError(f"WCCN needs at least 2 samples; got n_samples = {X.shape[0]}")
        classes, codes = _encode_labels(y, X.shape[0])
        K = len(classes)
        if K == X.shape[0]:  # the within-class covariance is exactly zero: nothing to normalise
            raise ValueError(f"y: every one of the {K} classes has a single sample, so the within-class "
                             "covariance cannot be estimated; WCCN needs several samples per class")
        counts = np.bincount(codes, minlength=K)
        order = np.argsort(codes, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused by name
            class_means = np.add.reduceat(X[order], starts, axis=0) / counts[:, None]
            centred = X - class_means[codes]
            scatter = centred.T @ centred
        check_spread(X, "WCCN", scatter, deviations=centred)
        try:
            weights = inverse_cholesky_factor((1.0 / K) * scatter, check_bool(self.pinv, "pinv"),
                                              "within-class covariance")
        except SingularError as exc:
            if X.shape[0] - K >= X.shape[1]:
                raise
            # (not a feature's fault: the scatter's rank is at most n_samples - n_classes)
            raise SingularError(f"y: {X.shape[0]} samples in {K} classes give a within-class "
                                f"covariance of rank at most {X.shape[0] - K} < n_features = "
                                f"{X.shape[1]}; WCCN needs n_samples - n_classes >= n_features "
                                f"(more samples per class, or fewer features). {exc}") from None
        self._set_fitted(weights, 0, 1.0, classes)
        self._record_feature_names(raw)
        return self

    def transform(self, X) -> np.ndarray:
        """``((X - input_subtract) / input_divide) @ weights``.

        Parameters
        ----------
        X : array-like of shape (N, D)

        Returns
        -------
        ndarray of shape (N, D), float64
            An array where the reference returned a list of rows.
        """
        check_is_fitted(self, "weights")
        self._check_feature_names(X)
        X = check_frames(X, "X", n_features=self.n_features_in_, ensure_2d=True,
                         owner=type(self).__name__, in_memory=True)
        return apply_projection(X, self)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


register(WCCN, "WCCN", write="emkit.io.transforms:write_wccn", read="emkit.io.transforms:read_wccn")
