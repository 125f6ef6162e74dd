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
from dataclasses import dataclass

import numpy as np

from . import _xp
from .gmm import grid_shift

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
    if dtype == xp.float32:
        shift = grid_shift(shift, means, variances, xp)
    centred = means - shift
    precision = 1.0 / variances
    g = D * LOG_2PI + xp.sum(xp.log(variances), axis=1)
    last = log_weights - 0.5 * (g + xp.sum(centred * centred * precision, axis=1))
    coef = xp.concat([-0.5 * xp.matrix_transpose(precision),
                      xp.matrix_transpose(centred * precision), last[None, :]], axis=0)
    return shift, (coef if dtype is None else xp.astype(coef, dtype))


@dataclass(frozen=True)
class DeviceExactColumns:
    """:class:`emkit._kernels.gmm.ExactColumns` on a device: the Gaussians whose log-likelihoods
    are computed directly, ``constant - sum_d (x_d - mu_d)**2 / (2 var_d)`` in float64, because
    the expanded square would lose whole nats (collapsed Gaussians far from the shift).  Arrays of
    the device: ``means``, ``half_precision`` (k, D), ``constant`` (k,) float64, ``column_map``
    (C,) int64 (each column's position among the k, k for the others) and ``mask`` (C,) bool."""

    means: object
    half_precision: object
    constant: object
    column_map: object
    mask: object

    @classmethod
    def of(cls, index: np.ndarray, n_gaussians: int, means, half_precision, constant, put):
        """From the k Gaussians' ``index`` (numpy) and their arrays (of the device, or numpy
        copied with ``put``)."""
        column_map = np.full(n_gaussians, len(index), dtype=np.int64)
        column_map[index] = np.arange(len(index))
        return cls(put(means), put(half_precision), put(constant), put(column_map),
                   put(column_map < len(index)))

    @classmethod
    def from_host(cls, exact, n_gaussians: int, put):
        """From numpy :class:`~emkit._kernels.gmm.ExactColumns` (None: None); ``put(array)``
        copies a numpy array to the device."""
        if exact is None:
            return None
        return cls.of(exact.index, n_gaussians, exact.means, exact.half_precision,
                      exact.constant, put)

    def overwrite(self, X_block, L, xp):
        """``L`` (B, C) with the k columns replaced by their direct values for the rows
        ``X_block`` (B, D) (a new array: a gather and a masked select, no in-place write)."""
        X = xp.astype(X_block, xp.float64)
        B, k = X.shape[0], self.constant.shape[0]
        step = max(1, (1 << 24) // max(1, B))  # (B, step) float64 work arrays: 128 MiB at most
        parts = []
        for a in range(0, k, step):
            b = min(a + step, k)  # (the standard leaves out-of-bounds stops unspecified)
            means, half = self.means[a:b, ...], self.half_precision[a:b, ...]
            q = xp.zeros((B, b - a), dtype=xp.float64, device=_xp.device_of(X))
            for d in range(X.shape[1]):
                diff = X[:, d:d + 1] - means[None, :, d]
                q = q + diff * diff * half[None, :, d]
            parts.append(self.constant[None, a:b] - q)
        parts.append(xp.zeros((B, 1), dtype=xp.float64, device=_xp.device_of(X)))
        values = xp.take(xp.astype(xp.concat(parts, axis=1), L.dtype), self.column_map, axis=1)
        return xp.where(self.mask[None, :], values, L)


def spreads(means, variances):
    """``sum_d (mu_cd - s_d)**2 / var_cd`` (C,) on the parameters' device: the expanded square of
    Gaussian c is off by about ``eps`` times this many nats (see :func:`exact_columns`)."""
    xp = _xp.namespace(means, variances)
    centred = means - xp.mean(means, axis=0)
    return xp.sum(centred * centred / variances, axis=1)


def exact_columns(means, variances, log_weights, spread: np.ndarray | None = None):
    """:class:`DeviceExactColumns` of device parameters (the rule of
    :meth:`emkit._kernels.gmm.DiagGMMCoefficients.from_parameters`), or None where no Gaussian
    needs them.  ``spread``: the parameters' :func:`spreads` as numpy, else read back here (a
    synchronisation)."""
    from . import gmm as host_gmm

    xp = _xp.namespace(means, variances, log_weights)
    if spread is None:
        spread = _xp.to_host(spreads(means, variances))
    sharp = host_gmm.exact_indices(spread)
    if not len(sharp):
        return None
    g = means.shape[1] * LOG_2PI + xp.sum(xp.log(variances), axis=1)

    def pick(a):
        return _xp.take_index(a, sharp, 0, xp)

    def put(a):
        return a if not isinstance(a, np.ndarray) else _xp.asarray_like(a, means, xp)

    return DeviceExactColumns.of(sharp, means.shape[0], pick(means), pick(0.5 / variances),
                                 pick(log_weights - 0.5 * g), put)


def _likelihoods(b, shift, coef, exact, xp):
    """``(design, log w_c + log N)`` of a block (the exact columns overwritten)."""
    d = design(b, shift, xp)
    L = d @ coef
    return d, (L if exact is None else exact.overwrite(b, L, xp))


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


def log_weighted_likelihood(X, shift, coef, block_rows: int = 2048, exact=None):
    """``log w_c + log N(x_t | mu_c, var_c)``, shape (N, C), in ``coef``'s dtype (-inf for
    frames whose squared distances overflow); ``exact``: :class:`DeviceExactColumns` or None."""
    xp = _xp.namespace(X, shift, coef)
    X = _check(X, coef, xp)
    parts = []
    for b in row_blocks(X, block_rows):
        with _quiet():
            d, L = _likelihoods(b, shift, coef, exact, xp)
            parts.append(_overflowed_to_minus_inf(d, L, xp))
    if not parts:
        return xp.zeros((0, coef.shape[1]), dtype=coef.dtype, device=_xp.device_of(coef))
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


def _normalised(L, xp):
    """``(exp(L - max), row_max, row_sum)`` of a (B, C) block."""
    row_max = xp.max(L, axis=1)
    E = xp.exp(L - row_max[:, None])
    return E, row_max, xp.sum(E, axis=1)


def log_likelihood(X, shift, coef, block_rows: int = 2048, exact=None):
    """Per-row mixture log-likelihood ``log sum_c w_c N(x_t | mu_c, var_c)``, shape (N,),
    float64; ``exact``: :class:`DeviceExactColumns` or None."""
    xp = _xp.namespace(X, shift, coef)
    X = _check(X, coef, xp)
    out = []
    for b in row_blocks(X, block_rows):
        with _quiet():
            d, L = _likelihoods(b, shift, coef, exact, xp)
            _, row_max, row_sum = _normalised(L, xp)
            values = xp.astype(row_max, xp.float64) + xp.astype(xp.log(row_sum), xp.float64)
            out.append(_overflowed_to_minus_inf(d, values, xp))
    if not out:
        return xp.zeros((0,), dtype=xp.float64, device=_xp.device_of(coef))
    return out[0] if len(out) == 1 else xp.concat(out)


def block_statistics(X_block, shift, coef, second_order: bool = True, exact=None):
    """``(log-likelihood sum (0-d float64), acc (C, 2D+1 - first) float64)`` of one block:
    ``acc = sum_t r_tc [ (x-s)**2, x-s, 1 ][first:]`` with ``first = 0`` (``second_order``) or
    ``D``."""
    xp = _xp.namespace(X_block, shift, coef)
    X_block = _check(X_block, coef, xp)
    D = shift.shape[0]
    with _quiet():  # (overflow: a non-finite total, refused by the caller)
        d, L = _likelihoods(X_block, shift, coef, exact, xp)
        E, row_max, row_sum = _normalised(L, xp)
        ll = xp.sum(xp.astype(row_max, xp.float64)) + xp.sum(xp.astype(xp.log(row_sum), xp.float64))
        used = d if second_order else d[:, D:]
        # responsibilities are E / row_sum: scale the (B, 2D+1) design rows, not the (B, C) block
        # (float32: ``x - s`` of float32 frames is exact about the float32 coefficients' shift,
        # :func:`emkit._kernels.gmm.grid_shift`, and the squares are rounded once)
        return ll, _sum_products(E, used / row_sum[:, None], xp)


#: float32 statistics are summed over at most this many rows before float64 takes over (as the
#: numpy kernels' ``FLOAT32_SUM_ROWS``): the rounding of longer float32 sums showed in variances.
SUM_ROWS = 512

#: Sub-blocks multiplied in one batched product: (SUM_BATCH, C, F) float32 partial sums at a time.
SUM_BATCH = 16


def _sum_products(E, U, xp):
    """``E^T U`` (C, F) as float64; float32 products over sub-blocks of :data:`SUM_ROWS` rows
    (batched products of :data:`SUM_BATCH` sub-blocks), summed in float64."""
    if E.dtype == xp.float64:
        return E.T @ U
    B, C, F = E.shape[0], E.shape[1], U.shape[1]
    out = xp.zeros((C, F), dtype=xp.float64, device=_xp.device_of(E))
    for start in range(0, B, SUM_ROWS * SUM_BATCH):
        end = min(B, start + SUM_ROWS * SUM_BATCH)
        k = (end - start) // SUM_ROWS
        stop = start + k * SUM_ROWS
        if k:
            head_E = xp.reshape(E[start:stop, ...], (k, SUM_ROWS, C))
            head_U = xp.reshape(U[start:stop, ...], (k, SUM_ROWS, F))
            out = out + xp.sum(xp.astype(xp.matrix_transpose(head_E) @ head_U, xp.float64), axis=0)
        if stop < end:
            out = out + xp.astype(E[stop:end, ...].T @ U[stop:end, ...], xp.float64)
    return out


def split_statistics(acc, n_features: int, second_order: bool = True):
    """``(n (C,), px (C, D), pxx (C, D) or None)`` from an accumulator of
    :func:`block_statistics` (moments about the shift)."""
    D = n_features
    n = acc[:, -1]
    px = acc[:, acc.shape[1] - 1 - D:acc.shape[1] - 1]
    return n, px, (acc[:, :D] if second_order else None)


def accumulate_shifted_statistics(X, shift, coef, block_rows: int = 2048,
                                  second_order: bool = True, exact=None):
    """As :func:`emkit._kernels.gmm.accumulate_shifted_statistics`, on ``X``'s namespace:
    ``(log_likelihood_sum, n (C,), sum_t r (x-s) (C, D), sum_t r (x-s)**2 or None)``, the
    arrays float64 on the device, the sum a 0-d float64 array."""
    xp = _xp.namespace(X, shift, coef)
    total, acc = accumulate_blocks(row_blocks(X, block_rows), shift, coef, second_order, xp, exact)
    return (total,) + split_statistics(acc, shift.shape[0], second_order)


def accumulate_blocks(blocks, shift, coef, second_order, xp, exact=None):
    """``(ll sum, acc)`` of :func:`block_statistics` summed over an iterable of row blocks (of
    the device: copied once and sliced, or streamed from host memory)."""
    D, C = shift.shape[0], coef.shape[1]
    dev = _xp.device_of(coef)
    acc = xp.zeros((C, (2 * D + 1) if second_order else (D + 1)), dtype=xp.float64, device=dev)
    total = xp.zeros((), dtype=xp.float64, device=dev)
    for block in blocks:
        if block.shape[0] == 0:
            continue
        ll, partial = block_statistics(block, shift, coef, second_order, exact)
        total, acc = total + ll, acc + partial
    return total, acc
