"""The GMM E-step around the kernels: statistics of row blocks (the backend's chunk function),
likelihood blocks of dask chunks, and the checks of their results.

:mod:`emkit._kernels.gmm` computes; this module turns its output into :class:`~emkit.GMMStats`
and refuses non-finite input or results with messages naming the argument.
"""

from __future__ import annotations

import numpy as np

from ._backend import is_dask_collection
from ._config import get_config
from ._kernels import gmm as kg
from ._validation import check_block
from .stats import GMMStats


def block_rows() -> int:
    """Rows per block of the E-step products (``emkit.config_context(block_rows=...)``)."""
    return get_config()["block_rows"] or kg.DEFAULT_BLOCK_ROWS


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
