"""The GMM E-step around the kernels: statistics of row blocks (the backend's chunk function),
likelihood blocks of dask chunks, and the checks of their results.

:mod:`emkit._kernels.gmm` computes; this module turns its output into :class:`~emkit.GMMStats`
and refuses non-finite input or results with messages naming the argument.
"""

from __future__ import annotations

import numpy as np

from ._backend import is_dask_collection, map_ordered, map_reduce
from ._config import get_config
from ._kernels import gmm as kg
from ._validation import check_block, check_frames
from .stats import GMMStats


def block_rows(coef: kg.DiagGMMCoefficients | None = None) -> int:
    """Rows per block of the E-step products (``emkit.config_context(block_rows=...)``); by default
    sized from the number of Gaussians of ``coef`` and this machine's caches."""
    rows = get_config()["block_rows"]
    if rows:
        return rows
    if coef is None:
        return kg.DEFAULT_BLOCK_ROWS
    return kg.default_block_rows(coef.n_gaussians, coef.coef.itemsize)


def stats_chunk(X, coef: kg.DiagGMMCoefficients, block_rows: int, second_order: bool = True,
                shifted: bool = True, check: bool = False) -> GMMStats:
    """Statistics of the rows of ``X`` (N, D); without ``second_order``, ``sum_pxx`` is left at zero.

    ``shifted`` keeps the moments about the coefficients' shift in the result (for the M-step;
    per-session statistics leave them out, to keep their memory at the reference's).  ``check``
    refuses NaN/inf in ``X`` (a dask chunk: numpy input is checked up front).
    """
    X = np.atleast_2d(np.asarray(X))
    if check:
        check_block(X, "X")
    C, D = coef.n_gaussians, coef.n_features
    if X.shape[0] == 0:
        ll, n, px, pxx = 0.0, np.zeros(C), np.zeros((C, D)), np.zeros((C, D)) if second_order else None
    else:
        ll, n, px, pxx = kg.accumulate_shifted_statistics(X, coef, block_rows, second_order)
    return GMMStats._from_shifted(ll, int(X.shape[0]), n, coef.shift, px, pxx, keep_shift=shifted)


def computed(value):
    """Parameters assigned as dask arrays are computed (they are small)."""
    return np.asarray(value) if is_dask_collection(value) else value


def dask_block(block, kernel, coef, name, block_info=None):
    """``kernel`` on one dask chunk, refusing NaN/inf in the chunk as numpy input is refused."""
    block = np.asarray(block)
    check_block(block, name, block_info)
    return kernel(block, coef)


def check_stats_finite(stats: GMMStats, name: str = "X") -> GMMStats:
    """``stats``, or a ValueError naming ``name`` when its log-likelihood or occupancies are not finite."""
    if not np.isfinite(stats.log_likelihood) or not np.isfinite(stats.n).all():
        raise ValueError(
            f"{name} gave a non-finite log-likelihood: it contains NaN or infinity, or the model's "
            "variances are degenerate"
        )
    return stats


def check_frames_of(data, coef: kg.DiagGMMCoefficients, name: str = "data", allow_empty: bool = True):
    """``data`` checked as frames of the machine behind ``coef`` (n_features of its means)."""
    return check_frames(data, name, n_features=coef.n_features, allow_empty=allow_empty, owner="GMMMachine")


def weighted_log_likelihoods(data, coef: kg.DiagGMMCoefficients):
    """``log w_c + log N(x_t | mu_c, var_c)``, shape **(C, N)**, of checked ``data`` (numpy or dask)."""
    if is_dask_collection(data):
        return data.map_blocks(dask_block, kg.log_weighted_likelihood, coef, "data", dtype=float,
                               chunks=(data.chunks[0], (coef.n_gaussians,))).T
    return kg.log_weighted_likelihood(data, coef, block_rows(coef)).T


def log_likelihoods(data, coef: kg.DiagGMMCoefficients):
    """Per-sample ``log sum_c w_c N(x_t | mu_c, var_c)``, shape (N,), of checked ``data``."""
    if is_dask_collection(data):
        return data.map_blocks(dask_block, kg.log_likelihood, coef, "data", drop_axis=1, dtype=float)
    return kg.log_likelihood(data, coef, block_rows(coef))


def total_stats(X, coef: kg.DiagGMMCoefficients, second_order: bool = True) -> GMMStats:
    """The statistics of every row of checked ``X`` (N, D) summed (moments about the shift kept,
    for the M-step), by the backend's ``map_reduce``; non-finite results are refused."""
    stats = map_reduce(stats_chunk, X, coef, block_rows(coef), second_order, True, is_dask_collection(X))
    return check_stats_finite(stats)


def session_stats(X, coef: kg.DiagGMMCoefficients) -> list:
    """One :class:`GMMStats` per element of ``X``: per session for a list of (n_frames, D) arrays or
    a 3-D array, per row (frame) for a 2-D array; errors name ``X[i]``."""
    rows = block_rows(coef)
    if is_dask_collection(X) and getattr(X, "ndim", 0) == 2:
        X = np.asarray(check_frames_of(X, coef, "X"))  # the N results are in memory anyway
    if isinstance(X, np.ndarray) and X.ndim == 2:  # one session per row: check them all at once
        X = check_frames_of(X, coef, "X")
    sessions = [check_frames_of(x, coef, f"X[{i}]") for i, x in enumerate(X)]

    def one(i):
        return check_stats_finite(stats_chunk(sessions[i], coef, rows, True, False), f"X[{i}]")

    return map_ordered(one, range(len(sessions)))
