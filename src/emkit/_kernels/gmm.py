"""Diagonal-Gaussian mixture kernels written as matrix products.

For a row block X_b (B, D) the log of ``w_c N(x | mu_c, var_c)`` for every Gaussian is one
matrix product of the *design block* ``[ (x - s)**2, x - s, 1 ]`` (B, 2D+1) with a (2D+1, C)
coefficient matrix, where ``s`` is a shift (the mean of the Gaussians' means) that keeps the
expanded square well conditioned.  Responsibilities come from a max-shifted log-sum-exp, and the
statistics ``sum_c r_tc [ (x-s)**2, x-s, 1 ]`` are one more product with the same design block.
The (B, C) work array is reused from block to block, so the N x C responsibilities never exist.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np

LOG_2PI = np.log(2.0 * np.pi)

#: Default number of rows per block when the number of Gaussians is not known; with it,
#: :func:`default_block_rows` sizes the (B, C) work array for this machine's caches.
DEFAULT_BLOCK_ROWS = 2048


def _l2_bytes() -> int:
    """The per-core L2 cache size from Linux's sysfs, or 1 MiB where it cannot be read."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cache/index2/size") as f:
            text = f.read().strip().upper()
        scale = {"K": 1024, "M": 1024**2}.get(text[-1:], 1)
        return int(text.rstrip("KM")) * scale
    except (OSError, ValueError):
        return 1024**2


def default_block_rows(n_gaussians: int, itemsize: int = 8) -> int:
    """Rows per block for C Gaussians: the (B, C) work array about 4 L2 caches (4 MiB for the
    common 1 MiB L2), so that the two products (which run at full speed from B = 256 rows) and
    the passes between them work in the caches of the core, not in main memory, with one block
    per core.  Between 512 and 4096 rows: below 512 the per-block costs (adding the (2D+1, C)
    partial statistics, numpy calls) exceed 1-2% of a block's work."""
    rows = 4 * _l2_bytes() // max(1, n_gaussians * itemsize)
    return int(min(4096, max(512, rows)))


def g_norms(variances: np.ndarray) -> np.ndarray:
    """``D log(2 pi) + sum_d log var_cd`` for each Gaussian, shape (C,)."""
    return variances.shape[1] * LOG_2PI + np.sum(np.log(variances), axis=1)


#: The expanded square of Gaussian c is off by about ``eps * sum_d (mu_cd - s_d)**2 / var_cd`` nats
#: for the frames near its mean (whole nats for a Gaussian collapsed to the variance floor EPS);
#: above this bound its log-likelihoods are computed as ``sum_d (x_d - mu_cd)**2 / var_cd`` instead.
EXACT_ABOVE = 1e-9


def exact_indices(spread: np.ndarray) -> np.ndarray:
    """The Gaussians (indices) whose expanded square would lose more than :data:`EXACT_ABOVE`
    nats, from their spreads ``sum_d (mu_cd - s_d)**2 / var_cd`` (C,) (host and device rule)."""
    return np.flatnonzero(np.finfo(np.float64).eps * np.asarray(spread) > EXACT_ABOVE)


@dataclass(frozen=True)
class ExactColumns:
    """The Gaussians whose log-likelihoods are computed directly: their indices (k,), means
    (k, D), ``1 / (2 var)`` (k, D) and ``log w - g / 2`` (k,), float64."""

    index: np.ndarray
    means: np.ndarray
    half_precision: np.ndarray
    constant: np.ndarray

    def overwrite(self, X: np.ndarray, L: np.ndarray) -> None:
        """Write their exact log-likelihoods for the rows ``X`` (B, D) into columns of ``L`` (B, C)."""
        XT = np.ascontiguousarray(np.asarray(X, dtype=np.float64).T)  # (D, B): one feature a pass
        step = max(1, 2**18 // max(1, XT.shape[1]))  # (step, B) work arrays
        for a in range(0, len(self.index), step):
            means, half = self.means[a:a + step], self.half_precision[a:a + step]
            q = np.zeros((len(means), XT.shape[1]))
            tmp = np.empty_like(q)
            with np.errstate(over="ignore"):
                for d in range(XT.shape[0]):
                    np.subtract(XT[d], means[:, d, None], out=tmp)
                    np.multiply(tmp, tmp, out=tmp)
                    np.multiply(tmp, half[:, d, None], out=tmp)
                    q += tmp
            L[:, self.index[a:a + step]] = (self.constant[a:a + step, None] - q).T


@dataclass(frozen=True)
class DiagGMMCoefficients:
    """The per-iteration constants of the E-step, computed once from the parameters.

    ``coef`` is (2D+1, C): rows ``[-1/(2 var) ; (mu-s)/var ; log w - (g + sum (mu-s)**2/var)/2]``.
    ``exact``: the Gaussians (if any) whose expanded square would lose more than
    :data:`EXACT_ABOVE` nats; the kernels overwrite their columns with the direct formula.
    """

    shift: np.ndarray  # (D,) float64
    coef: np.ndarray  # (2D+1, C) in the compute dtype
    exact: ExactColumns | None = None

    @classmethod
    def from_parameters(cls, means, variances, log_weights, dtype=np.float64,
                        norms=None) -> "DiagGMMCoefficients":
        """``norms`` may pass the cached ``g_norms(variances)``."""
        means = np.asarray(means, dtype=np.float64)
        variances = np.asarray(variances, dtype=np.float64)
        C, D = means.shape
        shift = means.mean(axis=0)
        if np.dtype(dtype) == np.float32:
            shift = grid_shift(shift, means, variances)
        centred = means - shift
        precision = 1.0 / variances
        coef = np.empty((2 * D + 1, C), dtype=np.float64)
        coef[:D] = -0.5 * precision.T
        coef[D : 2 * D] = (centred * precision).T
        g = g_norms(variances) if norms is None else norms
        log_weights = np.asarray(log_weights, dtype=np.float64)
        spread = np.sum(centred * centred * precision, axis=1)
        coef[2 * D] = log_weights - 0.5 * (g + spread)
        sharp = exact_indices(spread)
        exact = None if not len(sharp) else ExactColumns(
            sharp, means[sharp], 0.5 * precision[sharp], log_weights[sharp] - 0.5 * g[sharp])
        return cls(shift=shift, coef=np.ascontiguousarray(coef, dtype=dtype), exact=exact)

    @property
    def n_gaussians(self) -> int:
        return self.coef.shape[1]

    @property
    def n_features(self) -> int:
        return self.shift.shape[0]


#: The shift of float32 coefficients is a multiple of a power of two between 2**-SHIFT_GRID_BITS
#: and 2**(1-SHIFT_GRID_BITS) times the Gaussians' scale ``max_c |mu_c| + 8 sd_c``, per feature.
SHIFT_GRID_BITS = 12


def grid_shift(shift, means, variances, xp=np):
    """``shift`` (D,) rounded to the grid of :data:`SHIFT_GRID_BITS` (it moves by at most 1/4096
    of the scale, which changes nothing of its conditioning); arrays of namespace ``xp``.

    The variances are computed about ``s``, which multiplies an error in the first moments by
    ``kappa = (mu - s)**2 / var``.  float32 frames within 4096 times the scale are multiples of
    a spacing no coarser than the grid, so ``x - s`` is exact in float32 wherever
    ``|x - s| <= |x|`` (elsewhere the bits dropped are ``x``'s own, which average out); from a
    shift off the grid, all the frames of a cluster would round the same way, an error that does
    not average out.
    """
    scale = xp.max(xp.abs(means) + 8.0 * xp.sqrt(variances), axis=0)
    grid = 2.0 ** (xp.floor(xp.log2(scale)) + (1 - SHIFT_GRID_BITS))
    usable = xp.isfinite(grid) & (grid > 0.0)  # (beyond float64's range: the shift as it is)
    grid = xp.where(usable, grid, 1.0)
    return xp.where(usable, xp.round(shift / grid) * grid, shift)


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
        with np.errstate(over="ignore", invalid="ignore"):
            d = fill_design(X[start:stop], coefficients.shift, design[: stop - start])
            out[start:stop] = d @ coefficients.coef
        if coefficients.exact is not None:
            coefficients.exact.overwrite(X[start:stop], out[start:stop])
        _overflowed_to_minus_inf(d, out[start:stop])
    return out


def _overflowed_to_minus_inf(design: np.ndarray, values: np.ndarray) -> None:
    """NaN in ``values`` (rows of a block) where the squares of ``design`` overflowed (frames about
    1e154 from the shift, 1e19 in float32) become -inf, the log-likelihood's rounding."""
    D = (design.shape[1] - 1) // 2
    if not np.isfinite(np.add.reduce(design[:, :D], axis=None)):
        np.copyto(values, -np.inf, where=np.isnan(values))


#: Bytes of the (rows, C) slice that the exp/log-sum-exp passes work on at a time: all of them run
#: on a slice while it sits in the core's L2 cache, so the (B, C) block crosses memory twice (the
#: product writing it, the statistics product reading it) instead of once per pass.
PASS_BYTES = 512 * 1024

#: Responsibilities ``exp(L - max)`` with arguments below these are set to zero.  float32: the
#: subnormal range (subnormal operands cost microcode assists in the statistics product on many
#: x86 cores).  float64: ``exp(-100) = 3.7e-44`` of a row's largest term; over at most 1e9 frames
#: they change a statistic by under 4e-35, which the M-step's occupancy floor (EPS) turns into
#: under 2e-19 relative: invisible in float64 results.  Their exponentials may be skipped.
RESPONSIBILITY_FLOOR = {8: -100.0, 4: float(np.log(np.finfo(np.float32).tiny))}

#: Slices with at most this fraction of arguments above the floor exponentiate only those, where
#: ``exp`` is slow (:func:`slow_exp`).
SPARSE_EXP = 0.5


@functools.lru_cache(maxsize=2)
def slow_exp(dtype: np.dtype) -> bool:
    """Whether numpy's ``exp`` in ``dtype`` costs more than 8 additions here (measured once).

    numpy vectorises float64 ``exp`` on AVX-512 CPUs only: elsewhere (AVX2: 7-11 ns an element,
    40 ns below -708) it takes as long as the E-step's two products, and float32 ``exp`` (about
    3 ns) nearly as long as its own; gathering the arguments above the floor first then pays.
    Only the speed depends on the answer, never the numbers."""
    x = np.linspace(-50.0, 0.0, 1 << 15, dtype=dtype)
    out = np.empty_like(x)

    def best(f):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            f(x, out=out)
            times.append(time.perf_counter() - start)
        return min(times)

    return best(np.exp) > 8 * best(lambda a, out: np.add(a, a, out=out))


def _exp_above_floor(S: np.ndarray, floor: float, below: np.ndarray) -> None:
    """In place: ``S <- exp(S)``, 0 where ``S < floor`` (``below``: a bool work array of S's
    shape); NaN (rows of overflowed frames, set to -inf later) stays NaN."""
    np.less(S, floor, out=below)
    if (S.flags.c_contiguous and np.count_nonzero(below) >= (1 - SPARSE_EXP) * S.size
            and slow_exp(S.dtype)):
        flat = S.reshape(-1)
        index = np.flatnonzero(np.logical_not(below, out=below))
        values = np.exp(flat[index])
        flat.fill(0.0)
        flat[index] = values
    else:  # multiplied by the mask: numpy's masked copy is several times slower (random masks)
        if S.itemsize == 8:
            np.maximum(S, floor, out=S)  # (exp's slow path for arguments far below the floor)
        np.exp(S, out=S)
        np.multiply(S, np.logical_not(below, out=below), out=S)


def _log_normalise_rows(L: np.ndarray, row_max: np.ndarray, row_sum: np.ndarray) -> None:
    """In place: ``L <- exp(L - max)``; fills the row maxima and the row sums of the exponentials.

    Exponentials of arguments below :data:`RESPONSIBILITY_FLOOR` are set to zero.  Works on slices
    of :data:`PASS_BYTES` so that the passes stay in cache.
    """
    n, C = L.shape
    step = max(1, PASS_BYTES // max(1, C * L.itemsize))
    floor = RESPONSIBILITY_FLOOR[L.itemsize]
    mask = np.empty((min(step, n), C), dtype=bool)
    for start in range(0, n, step):
        stop = min(start + step, n)
        S = L[start:stop]
        mx = row_max[start:stop]
        np.max(S, axis=1, out=mx)
        np.subtract(S, mx[:, None], out=S)
        _exp_above_floor(S, floor, mask[: stop - start])
        np.sum(S, axis=1, out=row_sum[start:stop])


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
        with np.errstate(over="ignore", invalid="ignore"):
            d = fill_design(X[start : start + n], coefficients.shift, design[:n])
            Lb = np.matmul(d, coefficients.coef, out=L[:n])
            if coefficients.exact is not None:
                coefficients.exact.overwrite(X[start : start + n], Lb)
            _log_normalise_rows(Lb, row_max[:n], row_sum[:n])
            out[start : start + n] = row_max[:n] + np.log(row_sum[:n])
        _overflowed_to_minus_inf(d, out[start : start + n])
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
                                  block_rows: int = DEFAULT_BLOCK_ROWS, second_order: bool = True,
                                  on_rows=None):
    """As :func:`accumulate_statistics`, with the moments about ``coefficients.shift`` s;
    ``on_rows(n)`` (optional) is called after each block of ``n`` rows (a progress count).

    Returns ``(log_likelihood_sum, n (C,), sum_t r (x-s) (C, D), sum_t r (x-s)**2 (C, D) or None)``:
    variances computed from these keep their precision far from the origin.  In float32 the
    statistics product is summed over at most :data:`FLOAT32_SUM_ROWS` rows before float64 takes
    over.
    """
    N, D = X.shape
    C = coefficients.n_gaussians
    dtype = coefficients.coef.dtype
    single = dtype == np.float32
    shift = coefficients.shift
    first = 0 if second_order else D  # the statistics use design columns [first:]
    # accumulated transposed, (columns, C): ``design.T @ L`` reads the (B, C) block row by row, a
    # faster product than ``L.T @ design`` for C in the thousands
    acc = np.zeros((2 * D + 1 - first, C), dtype=np.float64)
    total_ll = 0.0
    B = min(block_rows, max(N, 1))
    design = np.empty((B, 2 * D + 1), dtype=dtype)
    L = np.empty((B, C), dtype=dtype)
    row_max = np.empty(B, dtype=dtype)
    row_sum = np.empty(B, dtype=dtype)
    partial = np.empty(acc.shape, dtype=dtype)
    for start in range(0, N, block_rows):
        n = min(start + block_rows, N) - start
        Xb = X[start : start + n]
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: a non-finite total, refused
            if single:
                d = fill_float32_design(Xb, shift, design[:n])
            else:
                d = fill_design(Xb, shift, design[:n])
            Lb = np.matmul(d, coefficients.coef, out=L[:n])
            if coefficients.exact is not None:
                coefficients.exact.overwrite(Xb, Lb)
            _log_normalise_rows(Lb, row_max[:n], row_sum[:n])
            total_ll += float(np.sum(row_max[:n], dtype=np.float64) + np.sum(np.log(row_sum[:n]), dtype=np.float64))
            used = d[:, first:]
            # responsibilities are exp(L)/row_sum: scale the design rows, not the (B, C) block
            np.divide(used, row_sum[:n, None], out=used)
            # float32: sums of at most FLOAT32_SUM_ROWS rows, added in float64
            step = FLOAT32_SUM_ROWS if single else n
            for a in range(0, n, step):
                np.matmul(used[a : a + step].T, Lb[a : a + step], out=partial)
                acc += partial
        if on_rows is not None:
            on_rows(n)
    ones = 2 * D - first
    n_c = acc[ones].copy()
    px = acc[ones - D : ones].T.copy()
    pxx = acc[:D].T.copy() if second_order else None
    return total_ll, n_c, px, pxx


#: Rows of the float32 statistics product summed in float32 before the float64 accumulator.
FLOAT32_SUM_ROWS = 512


def fill_float32_design(X_block: np.ndarray, shift: np.ndarray, design: np.ndarray) -> np.ndarray:
    """:func:`fill_design` for a float32 ``design``: ``x - s`` and its square computed in float64
    and each rounded once (not the square of a rounded value).  With the shift of float32
    coefficients (:func:`grid_shift`), ``x - s`` of float32 frames is exact."""
    D = shift.shape[0]
    centred = np.subtract(X_block, shift, dtype=np.float64)
    np.multiply(centred, centred, out=design[:, :D], casting="unsafe")
    np.copyto(design[:, D : 2 * D], centred, casting="unsafe")
    design[:, 2 * D] = 1.0
    return design
