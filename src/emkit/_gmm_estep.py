"""The GMM E-step around the kernels: statistics of row blocks (the backend's chunk function),
likelihood blocks of dask chunks, and the checks of their results.

:mod:`emkit._kernels.gmm` computes; this module turns its output into :class:`~emkit.GMMStats`
and refuses non-finite input or results with messages naming the argument.
"""

from __future__ import annotations

import functools

import numpy as np

from . import _device_infer
from ._backend import is_dask_collection, map_ordered, map_reduce_finite
from ._config import get_config
from ._progress import Progress
from ._kernels import gmm as kg
from ._kernels import gselect as kgs
from ._validation import check_block, check_frames
from .stats import GMMStats
from ._describe import describe


def block_rows(coef: kg.DiagGMMCoefficients | None = None) -> int:
    """Rows per block of the E-step products (``emkit.config_context(block_rows=...)``); by default
    sized from the number of Gaussians of ``coef`` and this machine's caches."""
    rows = get_config()["block_rows"]
    if rows:
        return rows
    if coef is None:
        return kg.DEFAULT_BLOCK_ROWS
    return kg.default_block_rows(coef.n_gaussians, coef.coef.itemsize)


def selection(top_k=None, min_posterior=None, n_gaussians: int | None = None):
    """The Gaussian selection in force, ``(top_k, min_posterior)``, or None for exact statistics.

    ``top_k``/``min_posterior`` given (not None) override ``emkit.config_context(gselect_top_k=...,
    gselect_min_posterior=...)``; errors name the argument that was used.
    """
    config = get_config()
    k_name = "top_k" if top_k is not None else "gselect_top_k"
    p_name = "min_posterior" if min_posterior is not None else "gselect_min_posterior"
    k = config["gselect_top_k"] if top_k is None else top_k
    p = config["gselect_min_posterior"] if min_posterior is None else min_posterior
    if k is None:
        if p:
            raise ValueError(f"{p_name}={describe(p)} needs a Gaussian selection: set top_k (or "
                             "gselect_top_k in emkit.config_context) too")
        return None
    return kgs.check_selection(k, p, n_gaussians, (k_name, p_name))


def stats_chunk(X, coef: kg.DiagGMMCoefficients, block_rows: int, second_order: bool = True,
                shifted: bool = True, selection=None, on_rows=None) -> GMMStats:
    """Statistics of the rows of ``X`` (N, D); without ``second_order``, ``sum_pxx`` is left at zero.

    ``shifted`` keeps the moments about the coefficients' shift in the result (for the M-step;
    per-session statistics leave them out, to keep their memory at the reference's).  NaN/inf
    are refused before (numpy input up front, a dask chunk by ``map_reduce_finite``).  ``selection``:
    ``(top_k, min_posterior[, SelectionCoefficients])`` for Gaussian selection
    (:mod:`emkit._kernels.gselect`, on the CPU), None: exact.  Exact statistics with a device
    configured in the process where it runs (a dask worker's own configuration) use the generic
    kernels there (:func:`emkit._device_infer.chunk_stats`).  ``on_rows(n)`` (optional) counts
    the rows done, block by block (a progress report).
    """
    X = np.atleast_2d(np.asarray(X))
    dev = _device_infer.device() if selection is None else None
    if dev is not None and X.shape[0]:
        stats = _device_infer.chunk_stats(X, coef, second_order, shifted, dev)
        if on_rows is not None:
            on_rows(X.shape[0])
        return stats
    C, D = coef.n_gaussians, coef.n_features
    if X.shape[0] == 0:
        ll, n, px, pxx = 0.0, np.zeros(C), np.zeros((C, D)), np.zeros((C, D)) if second_order else None
    elif selection is not None:
        ll, n, px, pxx = kgs.accumulate_selected_statistics(
            X, coef, *selection[:2], block_rows, second_order, *selection[2:], on_rows=on_rows)
    else:
        ll, n, px, pxx = kg.accumulate_shifted_statistics(X, coef, block_rows, second_order,
                                                          on_rows)
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
            f"{name} gave a non-finite log-likelihood: it contains NaN or infinity, or frames too far "
            "from the model for the arithmetic (|x - mean of the means| above about 1e154, 1e19 "
            "with compute_dtype='float32': squared distances overflow)"
        )
    return stats


def check_frames_of(data, coef: kg.DiagGMMCoefficients, name: str = "data", allow_empty: bool = True):
    """``data`` checked as frames of the machine behind ``coef`` (n_features of its means)."""
    return check_frames(data, name, n_features=coef.n_features, allow_empty=allow_empty, owner="GMMMachine")


def _weighted_block(X, coef, rows=None):
    """``rows``: the caller's ``block_rows``, taken when a dask graph is built (a worker process
    has its own settings); None: this process's."""
    dev = _device_infer.device()  # the configuration of the process where it runs
    if dev is None or X.shape[0] == 0:
        return kg.log_weighted_likelihood(X, coef, rows or block_rows(coef))
    return _device_infer.log_weighted_likelihood(X, coef, dev)


def _likelihood_block(X, coef, rows=None):
    dev = _device_infer.device()
    if dev is None or X.shape[0] == 0:
        return kg.log_likelihood(X, coef, rows or block_rows(coef))
    return _device_infer.log_likelihood(X, coef, dev)


def weighted_log_likelihoods(data, coef: kg.DiagGMMCoefficients):
    """``log w_c + log N(x_t | mu_c, var_c)``, shape **(C, N)**, of checked ``data`` (numpy or
    dask); on the device configured where the rows (or chunks) are computed."""
    if is_dask_collection(data):
        kernel = functools.partial(_weighted_block, rows=block_rows(coef))
        return data.map_blocks(dask_block, kernel, coef, "data", dtype=float,
                               chunks=(data.chunks[0], (coef.n_gaussians,))).T
    return _weighted_block(data, coef).T


def log_likelihoods(data, coef: kg.DiagGMMCoefficients):
    """Per-sample ``log sum_c w_c N(x_t | mu_c, var_c)``, shape (N,), of checked ``data``."""
    if is_dask_collection(data):
        kernel = functools.partial(_likelihood_block, rows=block_rows(coef))
        return data.map_blocks(dask_block, kernel, coef, "data", drop_axis=1, dtype=float)
    return _likelihood_block(data, coef)


def _with_constants(selection, coef):
    """``selection`` with the model's selection constants, computed once for all chunks."""
    if selection is None:
        return None
    return (*selection[:2], kgs.SelectionCoefficients.from_coefficients(coef))


def total_stats(X, coef: kg.DiagGMMCoefficients, second_order: bool = True,
                selection=None, what: str = "GMM statistics") -> GMMStats:
    """The statistics of every row of checked ``X`` (N, D) summed (moments about the shift kept,
    for the M-step), by the backend's ``map_reduce``; non-finite results are refused.  With a
    device configured (and exact statistics), in-memory frames are copied once or streamed to it
    as in ``fit`` (:class:`emkit._device_fit.DeviceFrames`) and dask chunks use the workers'
    devices; Gaussian selection runs on the CPU.  The ``emkit`` logger says how far it is
    (``what``: frames done of all, INFO, at most every 30 s): numpy frames block by block, the
    chunks of a dask array as they finish (on a local scheduler or a ``distributed`` client)."""
    dev = None if is_dask_collection(X) or selection is not None else _device_infer.device()
    if dev is not None:
        from ._device_fit import DeviceFrames, gmm_statistics

        frames = DeviceFrames(X, dev, coef.coef.dtype, "GMM statistics")
        return gmm_statistics(frames, coef, second_order)
    n_rows = X.shape[0]
    progress = Progress(what, int(n_rows) if np.isfinite(n_rows) else None, "frame")
    params = (coef, block_rows(coef), second_order, True, _with_constants(selection, coef))
    if is_dask_collection(X):  # its chunks counted as they finish
        stats = map_reduce_finite(stats_chunk, X, *params, progress=progress)
    else:  # block by block, in the kernels
        stats = map_reduce_finite(functools.partial(stats_chunk, on_rows=progress.advance), X,
                                  *params)
    return check_stats_finite(stats)


#: Short sessions are batched for Gaussian selection: at most this many frames per batch, and at
#: most this many bytes of per-session statistics; a longer session goes alone, in bounded blocks.
GROUP_FRAMES, GROUP_BYTES = 8192, 8 * 2**20


def _session_groups(lengths, n_gaussians: int, n_features: int) -> list:
    """``(first, stop)`` index ranges of consecutive sessions batched together."""
    most = max(1, GROUP_BYTES // (8 * n_gaussians * (2 * n_features + 1)))
    groups, first, frames = [], 0, 0
    for i, n in enumerate(lengths):
        if i > first and (frames + n > GROUP_FRAMES or i - first >= most):
            groups.append((first, i))
            first, frames = i, 0
        frames += n
    return groups + [(first, len(lengths))] if lengths else groups


def _selected_session_stats(sessions, coef, rows: int, selection) -> list:
    """:func:`session_stats` with Gaussian selection: short sessions batched into one kernel call
    (:func:`~emkit._kernels.gselect.accumulate_selected_session_statistics`)."""
    lengths = [int(np.atleast_2d(x).shape[0]) for x in sessions]

    def group(bounds):
        first, stop = bounds
        if stop - first == 1 and lengths[first] > GROUP_FRAMES:
            return [stats_chunk(sessions[first], coef, rows, True, False, selection)]
        X = np.concatenate([np.atleast_2d(x) for x in sessions[first:stop]])
        ll, n, px, pxx = kgs.accumulate_selected_session_statistics(
            X, lengths[first:stop], coef, *selection[:2], *selection[2:])
        return [GMMStats._from_shifted(float(ll[i]), lengths[first + i], n[i].copy(), coef.shift,
                                       px[i], pxx[i], keep_shift=False) for i in range(stop - first)]

    groups = map_ordered(group, _session_groups(lengths, coef.n_gaussians, coef.n_features))
    return [check_stats_finite(s, f"X[{i}]") for i, s in enumerate(x for g in groups for x in g)]


def session_stats(X, coef: kg.DiagGMMCoefficients, selection=None) -> list:
    """One :class:`GMMStats` per element of ``X``: per session for a list of (n_frames, D) arrays or
    a 3-D array, per row (frame) for a 2-D array; errors name ``X[i]``."""
    rows = block_rows(coef)
    if is_dask_collection(X) and getattr(X, "ndim", 0) == 2:
        X = np.asarray(check_frames_of(X, coef, "X"))  # the N results are in memory anyway
    if isinstance(X, np.ndarray) and X.ndim == 2:  # one session per row: check them all at once
        X = check_frames_of(X, coef, "X")
    sessions = [check_frames_of(x, coef, f"X[{i}]") for i, x in enumerate(X)]
    if selection is not None:
        return _selected_session_stats(sessions, coef, rows, _with_constants(selection, coef))
    dev = _device_infer.device()  # resolved once for all the sessions

    def one(i):
        x = sessions[i]
        if dev is not None and len(x):
            stats = _device_infer.chunk_stats(np.atleast_2d(np.asarray(x)), coef, True, False, dev)
        else:
            stats = stats_chunk(x, coef, rows, True, False)
        return check_stats_finite(stats, f"X[{i}]")

    return map_ordered(one, range(len(sessions)))
