"""The GMM E-step kernels of :mod:`emkit._kernels.gmm`, written on the Python array API standard.

Same algebra as the numpy kernels (one design block ``[ (x-s)**2, x-s, 1 ]`` (B, 2D+1) times the
(2D+1, C) coefficient matrix, a max-shifted log-sum-exp, one more product for the statistics), on
arrays of any namespace (numpy, PyTorch, CuPy, ``array-api-strict``): no ``out=``, no in-place
writes, no scipy.  The estimators call these only on a device (``emkit.set_config(device=...)``)
or for non-numpy input; numpy input keeps the tuned kernels of :mod:`emkit._kernels.gmm`.

Results stay on the arrays' device: accumulators are float64 arrays there (whatever the compute
dtype), the log-likelihood sum a 0-d float64 array (no synchronisation per block).
"""

from __future__ import annotations

import math

import numpy as np

from . import _xp

#: numpy-backed namespaces (numpy, ``array-api-strict``) warn where squared distances overflow:
#: the kernels turn those rows into -inf (likelihoods) or a refused total (fit), as the numpy
#: kernels do, silently
def _quiet():
    return np.errstate(over="ignore", invalid="ignore")

LOG_2PI = math.log(2.0 * math.pi)

#: Rows per block on a device: the (B, C) responsibilities of a block take about
#: ``DEVICE_BLOCK_BYTES`` (large blocks keep the device busy; memory stays bounded).
DEVICE_BLOCK_BYTES = 1 << 29


def device_block_rows(n_gaussians: int, itemsize: int) -> int:
    """Rows per block for ``n_gaussians`` columns of ``itemsize`` bytes (at least 1024)."""
    return max(1024, DEVICE_BLOCK_BYTES // (max(n_gaussians, 1) * itemsize))


def coefficients(means, variances, log_weights, dtype=None):
    """``(shift (D,), coef (2D+1, C))`` from the parameters (arrays of one namespace), as
    :meth:`emkit._kernels.gmm.DiagGMMCoefficients.from_parameters`; computed in the parameters'
    dtype, ``coef`` cast to ``dtype`` (a dtype of the namespace; default: keep)."""
    xp = _xp.namespace(means, variances, log_weights)
    D = means.shape[1]
    shift = xp.mean(means, axis=0)
    centred = means - shift
    precision = 1.0 / variances
    g = D * LOG_2PI + xp.sum(xp.log(variances), axis=1)
    last = log_weights - 0.5 * (g + xp.sum(centred * centred * precision, axis=1))
    coef = xp.concat([-0.5 * xp.matrix_transpose(precision),
                      xp.matrix_transpose(centred * precision), last[None, :]], axis=0)
    return shift, (coef if dtype is None else xp.astype(coef, dtype))


def design(X_block, shift, xp):
    """``[ (x-s)**2, x-s, 1 ]`` (B, 2D+1) in ``X_block``'s dtype."""
    c = X_block - xp.astype(shift, X_block.dtype)
    ones = xp.ones((X_block.shape[0], 1), dtype=X_block.dtype, device=_xp.device_of(X_block))
    return xp.concat([c * c, c, ones], axis=1)


def row_blocks(X, rows: int):
    """``X[i:i + rows]`` for i = 0, rows, ... (stops clamped: the standard leaves out-of-bounds
    stops unspecified)."""
    n = X.shape[0]
    for i in range(0, n, rows):
        yield X[i:min(i + rows, n), ...]


def _check(X, coef, xp):
    if X.dtype != coef.dtype:  # numpy casts in the kernel; here the caller chooses the dtype
        X = xp.astype(X, coef.dtype)
    return X


def _overflowed_to_minus_inf(d, values, xp):
    """``values`` (rows of a block, (B,) or (B, C)) with NaN set to -inf in the rows whose
    squares in the design ``d`` overflowed (frames about 1e154 from the shift, 1e19 in float32):
    the log-likelihood's rounding, as the numpy kernels give (no synchronisation: a masked
    select, not a test)."""
    D = (d.shape[1] - 1) // 2
    overflowed = xp.logical_not(xp.all(xp.isfinite(d[:, :D]), axis=1))
    if values.ndim == 2:
        overflowed = overflowed[:, None]
    return xp.where(xp.logical_and(overflowed, xp.isnan(values)), -math.inf, values)


def log_weighted_likelihood(X, shift, coef, block_rows: int = 2048):
    """``log w_c + log N(x_t | mu_c, var_c)``, shape (N, C), in ``coef``'s dtype (-inf for
    frames whose squared distances overflow)."""
    xp = _xp.namespace(X, shift, coef)
    X = _check(X, coef, xp)
    parts = []
    for b in row_blocks(X, block_rows):
        with _quiet():
            d = design(b, shift, xp)
            parts.append(_overflowed_to_minus_inf(d, d @ coef, xp))
    if not parts:
        return xp.zeros((0, coef.shape[1]), dtype=coef.dtype, device=_xp.device_of(coef))
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


def _normalised(L, xp):
    """``(exp(L - max), row_max, row_sum)`` of a (B, C) block."""
    row_max = xp.max(L, axis=1)
    E = xp.exp(L - row_max[:, None])
    return E, row_max, xp.sum(E, axis=1)


def log_likelihood(X, shift, coef, block_rows: int = 2048):
    """Per-row mixture log-likelihood ``log sum_c w_c N(x_t | mu_c, var_c)``, shape (N,),
    float64."""
    xp = _xp.namespace(X, shift, coef)
    X = _check(X, coef, xp)
    out = []
    for b in row_blocks(X, block_rows):
        with _quiet():
            d = design(b, shift, xp)
            _, row_max, row_sum = _normalised(d @ coef, xp)
            values = xp.astype(row_max, xp.float64) + xp.astype(xp.log(row_sum), xp.float64)
            out.append(_overflowed_to_minus_inf(d, values, xp))
    if not out:
        return xp.zeros((0,), dtype=xp.float64, device=_xp.device_of(coef))
    return out[0] if len(out) == 1 else xp.concat(out)


def block_statistics(X_block, shift, coef, second_order: bool = True):
    """``(log-likelihood sum (0-d float64), acc (C, 2D+1 - first) float64)`` of one block:
    ``acc = sum_t r_tc [ (x-s)**2, x-s, 1 ][first:]`` with ``first = 0`` (``second_order``) or
    ``D``."""
    xp = _xp.namespace(X_block, shift, coef)
    X_block = _check(X_block, coef, xp)
    D = shift.shape[0]
    with _quiet():  # (overflow: a non-finite total, refused by the caller)
        d = design(X_block, shift, xp)
        E, row_max, row_sum = _normalised(d @ coef, xp)
        ll = xp.sum(xp.astype(row_max, xp.float64)) + xp.sum(xp.astype(xp.log(row_sum), xp.float64))
        used = d if second_order else d[:, D:]
        # responsibilities are E / row_sum: scale the (B, 2D+1) design rows, not the (B, C) block
        return ll, _sum_products(E, used / row_sum[:, None], xp)


#: float32 statistics are summed over at most this many rows before float64 takes over (the
#: numpy kernels' block size): one float32 product over 10^5 rows would lose digits.
SUM_ROWS = 2048


def _sum_products(E, U, xp):
    """``E^T U`` (C, F) as float64; float32 products over sub-blocks of :data:`SUM_ROWS` rows
    (one batched product), summed in float64."""
    if E.dtype == xp.float64:
        return E.T @ U
    B, C, F = E.shape[0], E.shape[1], U.shape[1]
    k = B // SUM_ROWS
    out = xp.zeros((C, F), dtype=xp.float64, device=_xp.device_of(E))
    if k:
        head_E = xp.reshape(E[:k * SUM_ROWS, ...], (k, SUM_ROWS, C))
        head_U = xp.reshape(U[:k * SUM_ROWS, ...], (k, SUM_ROWS, F))
        out = out + xp.sum(xp.astype(xp.matrix_transpose(head_E) @ head_U, xp.float64), axis=0)
    if k * SUM_ROWS < B:
        out = out + xp.astype(E[k * SUM_ROWS:, ...].T @ U[k * SUM_ROWS:, ...], xp.float64)
    return out


def split_statistics(acc, n_features: int, second_order: bool = True):
    """``(n (C,), px (C, D), pxx (C, D) or None)`` from an accumulator of
    :func:`block_statistics` (moments about the shift)."""
    D = n_features
    n = acc[:, -1]
    px = acc[:, acc.shape[1] - 1 - D:acc.shape[1] - 1]
    return n, px, (acc[:, :D] if second_order else None)


def accumulate_shifted_statistics(X, shift, coef, block_rows: int = 2048,
                                  second_order: bool = True):
    """As :func:`emkit._kernels.gmm.accumulate_shifted_statistics`, on ``X``'s namespace:
    ``(log_likelihood_sum, n (C,), sum_t r (x-s) (C, D), sum_t r (x-s)**2 or None)``, the
    arrays float64 on the device, the sum a 0-d float64 array."""
    xp = _xp.namespace(X, shift, coef)
    total, acc = accumulate_blocks(row_blocks(X, block_rows), shift, coef, second_order, xp)
    return (total,) + split_statistics(acc, shift.shape[0], second_order)


def accumulate_blocks(blocks, shift, coef, second_order, xp):
    """``(ll sum, acc)`` of :func:`block_statistics` summed over an iterable of row blocks (of
    the device: copied once and sliced, or streamed from host memory)."""
    D, C = shift.shape[0], coef.shape[1]
    dev = _xp.device_of(coef)
    acc = xp.zeros((C, (2 * D + 1) if second_order else (D + 1)), dtype=xp.float64, device=dev)
    total = xp.zeros((), dtype=xp.float64, device=dev)
    for block in blocks:
        if block.shape[0] == 0:
            continue
        ll, partial = block_statistics(block, shift, coef, second_order)
        total, acc = total + ll, acc + partial
    return total, acc
