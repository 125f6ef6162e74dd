"""Linear discriminant analysis (LDA) for i-vector back-ends.

Not part of bob.learn.em 3.3.1.  The projection maximises between-class over within-class
scatter: with the class means ``mu_c``, the global mean ``mu`` and ``n_c`` samples per class,

    S_w = sum_i (x_i - mu_{y_i}) (x_i - mu_{y_i})^T            (D, D)
    S_b = sum_c n_c (mu_c - mu) (mu_c - mu)^T                   (D, D)

the columns of ``weights`` (D, k) are the generalised eigenvectors ``S_b w = lambda S_w w`` of the
``k`` largest eigenvalues (``eigenvalues_``, descending), scaled so that the projected within-class
covariance ``W^T (S_w / N) W`` is the identity.  ``transform(X) = (X - input_subtract) @ W``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin

from ._feature_names import FeatureNamesMixin
from ._fitted import FittedArray, PicklesFitted, set_fitted
from ._labels import check_label_sequence, encode_labels
from ._validation import check_frames, check_positive_int
from .io._registry import register

__all__ = ["LDA"]


class LDA(FeatureNamesMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, PicklesFitted,
          BaseEstimator):
    """LDA projection to ``n_components`` dimensions (at most ``n_classes - 1`` and ``D``).

    Parameters
    ----------
    n_components : int
        Dimensions kept, k; positive (a ``ValueError`` otherwise).  :meth:`fit` checks it against
        the data.

    Attributes
    ----------
    weights : ndarray of shape (D, k)
        The projection, after :meth:`fit`.
    input_subtract : ndarray of shape (D,)
        The training mean.
    eigenvalues_ : ndarray of shape (k,)
        The between/within scatter ratios of the kept directions, descending.
    """

    _FEATURE_AXES = {"weights": 0, "input_subtract": 0}
    weights = FittedArray("Projection, (D, k)")
    input_subtract = FittedArray("The training mean, subtracted before projecting, (D,)")
    eigenvalues_ = FittedArray("Between/within scatter ratios of the kept directions, (k,)")

    def __init__(self, n_components: int):
        self.n_components = check_positive_int(n_components, "n_components")

    @classmethod
    def _from_fitted(cls, weights, input_subtract, eigenvalues, copy: bool = True) -> "LDA":
        """A fitted LDA from plain arrays (e.g. a file's contents): ``weights`` (D, k),
        ``input_subtract`` (D,), ``eigenvalues`` (k,); ``n_components`` is k.  The arrays are
        copied; ``copy=False`` keeps float64 arrays the caller owns (a file's reader's, which a
        copy would double in the memory of a load, and of save's read-back)."""
        from .whitening import check_projection

        weights, subtract, _ = check_projection(weights, input_subtract, 1.0, square=False)
        eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
        if subtract.shape != (weights.shape[0],) or eigenvalues.shape != (weights.shape[1],):
            raise ValueError(f"an LDA needs weights (D, k), input_subtract (D,) and eigenvalues "
                             f"(k,); got shapes {weights.shape}, {subtract.shape} and "
                             f"{eigenvalues.shape}")
        lda = cls(weights.shape[1])
        lda._set_fitted(weights, subtract, eigenvalues, copy=copy)
        return lda

    def _set_fitted(self, weights, input_subtract, eigenvalues, copy: bool = True) -> None:
        set_fitted(self, "weights", weights, copy=copy)
        set_fitted(self, "input_subtract", input_subtract, copy=copy)
        set_fitted(self, "eigenvalues_", eigenvalues, copy=copy)
        self.n_features_in_ = int(np.shape(weights)[0])

    @property
    def _n_features_out(self) -> int:
        """The output's number of features (scikit-learn's ``get_feature_names_out``): the
        columns of ``weights``, as assigned."""
        return int(self.weights.shape[1])

    def fit(self, X, y) -> "LDA":
        """Fit on samples ``X`` with their class labels ``y``.

        Parameters
        ----------
        X : array-like of shape (N, D)
            Finite float samples.
        y : array-like of shape (N,)
            One class label per row of ``X`` (any hashable values).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            ``y`` not of shape (N,); ``n_components`` above ``min(D, n_classes - 1)``; a
            within-class scatter that is singular (too few samples per class for D, or a
            feature constant within the classes or collinear with others) raises
            ``emkit.whitening.SingularError``, a ValueError and a ``numpy.linalg.LinAlgError``,
            as WCCN and Whitening do.
        """
        from .whitening import SingularError, check_scatter, check_spread

        k = check_positive_int(self.n_components, "n_components")  # set_params is checked here
        raw = X
        X = check_frames(X, "X", ensure_2d=True, owner="LDA", in_memory=True)
        check_label_sequence(y, "y", "row of X")
        if np.shape(y) != (X.shape[0],):
            raise ValueError(f"y must have one label per row of X ({X.shape[0]}); got shape "
                             f"{np.shape(y)}")
        codes, classes = encode_labels(y, "y")
        n, d = X.shape
        if k > min(d, len(classes) - 1):
            raise ValueError(f"n_components ({k}) must be at most min(D, n_classes - 1) = "
                             f"min({d}, {len(classes) - 1})")
        counts = np.bincount(codes).astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused by name
            sums = np.zeros((len(classes), d))
            np.add.at(sums, codes, X)
            means = sums / counts[:, None]
            mean = X.mean(axis=0)
            within = X - means[codes]
            s_w = within.T @ within / n
            centred = (means - mean) * np.sqrt(counts / n)[:, None]
            s_b = centred.T @ centred
        check_spread(X, "LDA", s_w, deviations=within)
        check_scatter(s_w, "within-class scatter of X")
        check_scatter(s_b, "between-class scatter of X")
        try:  # S_w = L L^T; the symmetric problem L^-1 S_b L^-T v = lambda v, w = L^-T v
            chol = scipy.linalg.cholesky(s_w, lower=True)
            diag = np.abs(np.diag(chol))
            if diag.min() <= 1e-7 * diag.max():  # numerically rank-deficient
                raise np.linalg.LinAlgError
        except np.linalg.LinAlgError:
            raise _singular_scatter_error(n, len(classes), d) from None
        half = scipy.linalg.solve_triangular(chol, s_b, lower=True)
        sym = scipy.linalg.solve_triangular(chol, half.T, lower=True)
        if not np.isfinite(sym).all():  # (eigh would warn, or not converge)
            raise SingularError("X: the between-class scatter relative to the within-class "
                                "scatter overflows float64 (the within-class scatter is nearly "
                                "singular): reduce the dimension of the data first, e.g. with PCA")
        values, vectors = np.linalg.eigh((sym + sym.T) / 2)
        order = np.argsort(values)[::-1][:k]
        self._set_fitted(scipy.linalg.solve_triangular(chol.T, vectors[:, order], lower=False),
                         mean, values[order])
        self._record_feature_names(raw)
        return self

    def transform(self, X) -> np.ndarray:
        """Project: ``(X - input_subtract) @ weights``.

        Parameters
        ----------
        X : array-like of shape (N, D)
            Samples with the training data's D features (and names, if it had any).

        Returns
        -------
        ndarray of shape (N, k)
            Float64 projections.
        """
        from .whitening import apply_projection

        self._check_feature_names(X)
        X = check_frames(X, "X", n_features=self.weights.shape[0], allow_empty=True, ensure_2d=True,
                         owner="LDA", in_memory=True)
        return apply_projection(X, self)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True  # fit needs y
        return tags

    def save(self, hdf5) -> None:
        """Write the LDA in emkit's layout (see :mod:`emkit.io.transforms`).

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A path (written atomically) or an open, writable group (see :func:`emkit.io.save`).
        """
        from .io._registry import save

        save(self, hdf5)

    @classmethod
    def from_hdf5(cls, hdf5) -> "LDA":
        """Read an LDA written by :meth:`save`.

        Also reads the unstamped ``lda`` group of the i-vector system files of earlier emkit
        versions.

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A path or an open group.

        Returns
        -------
        LDA
            Its ``n_components``, and fitted when the file holds the arrays of a fitted LDA.

        Raises
        ------
        emkit.io.InvalidFileError
            A file that is not an LDA, or whose arrays are damaged or inconsistent.
        """
        from .io.transforms import read_lda

        return read_lda(hdf5, cls)


register(LDA, "LDA", write="emkit.io.transforms:write_lda", read="emkit.io.transforms:read_lda")


def _singular_scatter_error(n: int, n_classes: int, d: int):
    """The SingularError of a singular within-class scatter, blaming what makes it singular: too
    few samples per class (its rank is at most n - n_classes, named on y as WCCN does) or, with
    enough of them, features that are constant within classes or collinear."""
    from .whitening import SingularError

    if n - n_classes < d:
        return SingularError(f"y: {n} samples in {n_classes} classes give a singular "
                             f"within-class scatter (its rank is at most {n - n_classes} < "
                             f"n_features = {d}); LDA needs n_samples - n_classes >= n_features "
                             "(more samples per class, or fewer features)")
    return SingularError(f"X: the within-class scatter of its {n} samples of {d} features in "
                         f"{n_classes} classes of y is singular: a feature is constant within "
                         "the classes or collinear with others; reduce the dimension of the data "
                         "first, e.g. with PCA")
