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

from ._validation import check_positive_int

__all__ = ["LDA"]


class LDA:
    """LDA projection to ``n_components`` dimensions (at most ``n_classes - 1`` and ``D``).

    After :meth:`fit`: ``weights`` (D, k), ``input_subtract`` (D,) the training mean,
    ``eigenvalues_`` (k,) the between/within scatter ratios of the kept directions, descending.
    """

    def __init__(self, n_components: int):
        self.n_components = check_positive_int(n_components, "n_components")

    def fit(self, X, y) -> "LDA":
        """Fit on ``X`` (N, D) float samples with class labels ``y`` (N,)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"X must be a non-empty 2-D array (N, D); got shape {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinity")
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have one label per row of X ({X.shape[0]}); got shape "
                             f"{y.shape}")
        classes, codes = np.unique(y, return_inverse=True)
        n, d = X.shape
        k = self.n_components
        if k > min(d, len(classes) - 1):
            raise ValueError(f"n_components ({k}) must be at most min(D, n_classes - 1) = "
                             f"min({d}, {len(classes) - 1})")
        counts = np.bincount(codes).astype(np.float64)
        sums = np.zeros((len(classes), d))
        np.add.at(sums, codes, X)
        means = sums / counts[:, None]
        mean = X.mean(axis=0)
        within = X - means[codes]
        s_w = within.T @ within / n
        centred = (means - mean) * np.sqrt(counts / n)[:, None]
        s_b = centred.T @ centred
        try:  # S_w = L L^T; the symmetric problem L^-1 S_b L^-T v = lambda v, w = L^-T v
            chol = scipy.linalg.cholesky(s_w, lower=True)
            diag = np.abs(np.diag(chol))
            if diag.min() <= 1e-7 * diag.max():  # numerically rank-deficient
                raise np.linalg.LinAlgError
        except np.linalg.LinAlgError:
            raise ValueError(f"the within-class scatter of X is singular ({n} samples of {d} "
                             f"dimensions in {len(classes)} classes): more samples per class or "
                             "fewer dimensions are needed") from None
        half = scipy.linalg.solve_triangular(chol, s_b, lower=True)
        sym = scipy.linalg.solve_triangular(chol, half.T, lower=True)
        values, vectors = np.linalg.eigh((sym + sym.T) / 2)
        order = np.argsort(values)[::-1][:k]
        self.eigenvalues_ = values[order]
        self.weights = scipy.linalg.solve_triangular(chol.T, vectors[:, order], lower=False)
        self.input_subtract = mean
        self.n_features_in_ = d
        return self

    def transform(self, X) -> np.ndarray:
        """``(X - input_subtract) @ weights``: (N, D) -> (N, k)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.weights.shape[0]:
            raise ValueError(f"X must have shape (N, {self.weights.shape[0]}); got {X.shape}")
        return (X - self.input_subtract) @ self.weights

    def save(self, group) -> None:
        """Write ``weights``, ``input_subtract`` and ``eigenvalues`` into an h5py group."""
        group["weights"] = self.weights
        group["input_subtract"] = self.input_subtract
        group["eigenvalues"] = self.eigenvalues_

    @classmethod
    def from_hdf5(cls, group) -> "LDA":
        weights = np.asarray(group["weights"][...], dtype=np.float64)
        subtract = np.asarray(group["input_subtract"][...], dtype=np.float64)
        if weights.ndim != 2 or subtract.shape != (weights.shape[0],):
            raise ValueError(f"an LDA needs weights (D, k) and input_subtract (D,); got shapes "
                             f"{weights.shape} and {subtract.shape}")
        lda = cls(weights.shape[1])
        lda.weights, lda.input_subtract = weights, subtract
        lda.eigenvalues_ = np.asarray(group["eigenvalues"][...], dtype=np.float64)
        lda.n_features_in_ = weights.shape[0]
        return lda
