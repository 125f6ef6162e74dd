"""Diagonal-Gaussian mixture kernels written as matrix products.

For a row block X_b (B, D) the log of ``w_c N(x | mu_c, var_c)`` for every Gaussian is one
matrix product of the *design block* ``[ (x - s)**2, x - s, 1 ]`` (B, 2D+1) with a (2D+1, C)
coefficient matrix, where ``s`` is a shift (the mean of the Gaussians' means) that keeps the
expanded square well conditioned.  Responsibilities come from a max-shifted log-sum-exp, and the
statistics ``sum_c r_tc [ (x-s)**2, x-s, 1 ]`` are one more product with the same design block.
The (B, C) work array is reused from block to block, so the N x C responsibilities never exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOG_2PI = np.log(2.0 * np.pi)

#: Default number of rows per block: the (B, C) work array stays cache-friendly for C in the
#: hundreds while the matrix products stay large enough for BLAS to run at full speed.
DEFAULT_BLOCK_ROWS = 2048


def g_norms(variances: np.ndarray) -> np.ndarray:
    """``D log(2 pi) + sum_d log var_cd`` for each Gaussian, shape (C,)."""
    return variances.shape[1] * LOG_2PI + np.sum(np.log(variances), axis=1)


@dataclass(frozen=True)
class DiagGMMCoefficients:
    """The per-iteration constants of the E-step, computed once from the parameters.

    ``coef`` is (2D+1, C): rows ``[-1/(2 var) ; (mu-s)/var ; log w - (g + sum (mu-s)**2/var)/2]``.
    """

    shift: np.ndarray  # (D,) float64
    coef: np.ndarray  # (2D+1, C) in the compute dtype

    @classmethod
    def from_parameters(cls, means, variances, log_weights, dtype=np.float64,
                        norms=None) -> "DiagGMMCoefficients":
        """``norms`` may pass the cached ``g_norms(variances)``."""
        means = np.asarray(means, dtype=np.float64)
        variances = np.asarray(variances, dtype=np.float64)
        C, D = means.shape
        shift = means.mean(axis=0)
        centred = means - shift
        precision = 1.0 / variances
        coef = np.empty((2 * D + 1, C), dtype=np.float64)
        coef[:D] = -0.5 * precision.T
        coef[D : 2 * D] = (centred * precision).T
        g = g_norms(variances) if norms is None else norms
        coef[2 * D] = np.asarray(log_weights, dtype=np.float64) - 0.5 * (
            g + np.sum(centred * centred * precision, axis=1)
        )
        return cls(shift=shift, coef=np.ascontiguousarray(coef, dtype=dtype))

    @property
    def n_gaussians(self) -> int:
        return self.coef.shape[1]

    @property
    def n_features(self) -> int:
        return self.shift.shape[0]


def fill_design(X_block: np.ndarray, shift: np.ndarray, design: np.ndarray) -> np.ndarray:
    """Write ``[ (x-s)**2, x-s, 1 ]`` for the rows of ``X_block`` into ``design`` (B, 2D+1)."""
    D = shift.shape[0]
    centred = design[:, D : 2 * D]
    np.subtract(X_block, shift, out=centred, casting="unsafe")
    np.multiply(centred, centred, out=design[:, :D])
    design[:, 2 * D] = 1.0
    return design


def log_weighted_likelihood(X: np.ndarray, coefficients: DiagGMMCoefficients, block_rows: int = DEFAULT_BLOCK_ROWS):
    """``log(w_c) + log N(x_t | mu_c, var_c)`` as an (N, C) array (the caller asked for it whole)."""
    N = X.shape[0]
    D2 = coefficients.coef.shape[0]
    out = np.empty((N, coefficients.n_gaussians), dtype=np.float64)
    design = np.empty((min(block_rows, max(N, 1)), D2), dtype=coefficients.coef.dtype)
    for start in range(0, N, block_rows):
        stop = min(start + block_rows, N)
        d = fill_design(X[start:stop], coefficients.shift, design[: stop - start])
        out[start:stop] = d @ coefficients.coef
    return out


def _log_normalise_rows(L: np.ndarray, row_max: np.ndarray, row_sum: np.ndarray) -> None:
    """In place: ``L <- exp(L - max)``; fills the row maxima and the row sums of the exponentials."""
    np.max(L, axis=1, out=row_max)
    np.subtract(L, row_max[:, None], out=L)
    np.exp(L, out=L)
    np.sum(L, axis=1, out=row_sum)


def log_likelihood(X: np.ndarray, coefficients: DiagGMMCoefficients, block_rows: int = DEFAULT_BLOCK_ROWS):
    """Per-row mixture log-likelihood ``log sum_c w_c N(x_t | mu_c, var_c)``, shape (N,)."""
    N = X.shape[0]
    C = coefficients.n_gaussians
    dtype = coefficients.coef.dtype
    out = np.empty(N, dtype=np.float64)
    B = min(block_rows, max(N, 1))
    design = np.empty((B, coefficients.coef.shape[0]), dtype=dtype)
    L = np.empty((B, C), dtype=dtype)
    row_max = np.empty(B, dtype=dtype)
    row_sum = np.empty(B, dtype=dtype)
    for start in range(0, N, block_rows):
        n = min(start + block_rows, N) - start
        d = fill_design(X[start : start + n], coefficients.shift, design[:n])
        Lb = np.matmul(d, coefficients.coef, out=L[:n])
        _log_normalise_rows(Lb, row_max[:n], row_sum[:n])
        out[start : start + n] = row_max[:n] + np.log(row_sum[:n])
    return out


def accumulate_statistics(X: np.ndarray, coefficients: DiagGMMCoefficients,
                          block_rows: int = DEFAULT_BLOCK_ROWS, second_order: bool = True):
    """Zeroth, first and second order statistics of the rows of ``X``.

    Returns ``(log_likelihood_sum, n (C,), sum_px (C, D), sum_pxx (C, D) or None)`` in float64,
    whatever the compute dtype.  ``second_order=False`` skips ``sum_pxx`` (a third less work in
    the statistics product, for M-steps that do not update variances).  Memory:
    O(block_rows * (C + 2D)), independent of N.
    """
    total_ll, n_c, px, pxx = accumulate_shifted_statistics(X, coefficients, block_rows, second_order)
    shift = coefficients.shift
    sum_px = px + n_c[:, None] * shift
    sum_pxx = None
    if second_order:
        sum_pxx = pxx + 2.0 * shift * px + n_c[:, None] * (shift * shift)
    return total_ll, n_c, sum_px, sum_pxx


def accumulate_shifted_statistics(X: np.ndarray, coefficients: DiagGMMCoefficients,
                                  block_rows: int = DEFAULT_BLOCK_ROWS, second_order: bool = True):
    """As :func:`accumulate_statistics`, with the moments about ``coefficients.shift`` s.

    Returns ``(log_likelihood_sum, n (C,), sum_t r (x-s) (C, D), sum_t r (x-s)**2 (C, D) or None)``:
    variances computed from these keep their precision far from the origin.
    """
    N, D = X.shape
    C = coefficients.n_gaussians
    dtype = coefficients.coef.dtype
    shift = coefficients.shift
    first = 0 if second_order else D  # the statistics use design columns [first:]
    acc = np.zeros((C, 2 * D + 1 - first), dtype=np.float64)
    total_ll = 0.0
    B = min(block_rows, max(N, 1))
    design = np.empty((B, 2 * D + 1), dtype=dtype)
    L = np.empty((B, C), dtype=dtype)
    row_max = np.empty(B, dtype=dtype)
    row_sum = np.empty(B, dtype=dtype)
    partial = np.empty(acc.shape, dtype=dtype)
    for start in range(0, N, block_rows):
        n = min(start + block_rows, N) - start
        d = fill_design(X[start : start + n], shift, design[:n])
        Lb = np.matmul(d, coefficients.coef, out=L[:n])
        _log_normalise_rows(Lb, row_max[:n], row_sum[:n])
        total_ll += float(np.sum(row_max[:n], dtype=np.float64) + np.sum(np.log(row_sum[:n]), dtype=np.float64))
        # responsibilities are exp(L)/row_sum: scale the (B, 2D+1) design rows instead of the (B, C) block
        used = d[:, first:]
        np.divide(used, row_sum[:n, None], out=used)
        np.matmul(Lb.T, used, out=partial)
        acc += partial
    n_c = acc[:, -1].copy()
    px = acc[:, -1 - D : -1].copy()
    pxx = acc[:, :D].copy() if second_order else None
    return total_ll, n_c, px, pxx
