"""GMM inference and MAP enrolment on the configured device (``emkit.set_config(device=...)``).

Small dispatches called by :mod:`emkit._gmm_estep`, :class:`~emkit.GMMMachine` and GMM-MAP
enrolment when the process they run in has a device configured (:func:`device`: one dict look-up
on the default ``device="cpu"``, which keeps the numpy path):

- :func:`chunk_stats`: the statistics of one piece of frames (a dask chunk on a worker, one
  session of ``transform``), with the generic kernels of :mod:`emkit._kernels.gmm_xp`; the
  result is a numpy float64 :class:`~emkit.GMMStats`, so dask's tree sum is unchanged.  The
  configuration read is the one of the process where the chunk runs: dask workers use their own
  (``client.run(emkit.set_config, device="cuda")``).
- :func:`log_likelihood`, :func:`log_weighted_likelihood`: per-frame values, block by block.
- :func:`map_adapt`: MAP means of a batch of utterances in one call
  (:func:`emkit._kernels.scoring_xp.map_adapt_means`).

:data:`COUNTS` counts the calls of each kernel on a device in this process (logged at DEBUG).
"""

from __future__ import annotations

import collections
import logging
import threading

import numpy as np

from . import _config
from ._backend import _device, _staging
from ._config import get_config
from ._kernels import gmm_xp, scoring_xp
from .stats import GMMStats

logger = logging.getLogger("emkit")

#: kernel name -> calls on a device in this process
COUNTS: collections.Counter = collections.Counter()
_LOCK = threading.Lock()
_COEF_CACHE: dict = {}


def device():
    """The device configured in this process, or None (the CPU: numpy kernels)."""
    if _config._CONFIG["device"] == "cpu":
        return None
    return _staging.configured_device()


def _count(name: str, dev, rows: int) -> None:
    with _LOCK:
        COUNTS[name] += 1
    logger.debug("%s of %d rows on %s (%s)", name, rows, dev.name, dev.library)


def _coefficients(coef, dev):
    """``(shift, coef, exact columns or None)`` of numpy coefficients on ``dev``; the last ones
    are kept (a machine's coefficients serve many sessions or chunks)."""
    key = (dev.name, dev.library)
    with _LOCK:
        cached = _COEF_CACHE.get(key)
    if cached is not None and cached[0] is coef:
        return cached[1]
    from ._device_fit import put

    arrays = (put(coef.shift, dev, coef.coef.dtype), put(coef.coef, dev),
              gmm_xp.DeviceExactColumns.from_host(coef.exact, coef.n_gaussians,
                                                  lambda a: put(a, dev)))
    with _LOCK:
        _COEF_CACHE[key] = (coef, arrays)
    return arrays


def _rows(coef) -> int:
    return get_config()["block_rows"] or gmm_xp.device_block_rows(coef.n_gaussians,
                                                                   coef.coef.dtype.itemsize)


def _blocks(X, coef, dev, rows):
    """Row blocks of host frames ``X`` on ``dev`` in the compute dtype (cast block by block
    while streaming to a CUDA device)."""
    return _device.stream_blocks(X, dev, rows, dtype=coef.coef.dtype)


def chunk_stats(X, coef, second_order: bool, shifted: bool, dev) -> GMMStats:
    """:func:`emkit._gmm_estep.stats_chunk` of non-empty host frames ``X`` (N, D) on ``dev``."""
    shift, matrix, exact = _coefficients(coef, dev)
    rows = _rows(coef)
    total, acc = gmm_xp.accumulate_blocks(_blocks(X, coef, dev, rows), shift, matrix,
                                          second_order, dev.xp, exact)
    _count("gmm statistics", dev, X.shape[0])
    n, px, pxx = gmm_xp.split_statistics(_staging.to_host(acc, dev), coef.n_features,
                                         second_order)
    return GMMStats._from_shifted(float(_device.to_numpy(total)), int(X.shape[0]), n.copy(),
                                  coef.shift, px.copy(), None if pxx is None else pxx.copy(),
                                  keep_shift=shifted)


def _per_frame(X, coef, dev, kernel, what: str, width: tuple) -> np.ndarray:
    """``kernel(block, shift, matrix, rows, exact)`` of every block of host frames ``X``,
    concatenated as numpy float64 (an empty ``X``: zeros of shape ``(0,) + width``)."""
    shift, matrix, exact = _coefficients(coef, dev)
    rows = _rows(coef)
    parts = [_device.to_numpy(kernel(b, shift, matrix, rows, exact))
             for b in _blocks(X, coef, dev, rows)]
    _count(what, dev, X.shape[0])
    return np.concatenate(parts) if parts else np.zeros((0,) + width)


def log_likelihood(X, coef, dev) -> np.ndarray:
    """Per-frame mixture log-likelihoods (N,) of host frames ``X``, numpy float64."""
    return _per_frame(X, coef, dev, gmm_xp.log_likelihood, "gmm log-likelihood", ())


def log_weighted_likelihood(X, coef, dev) -> np.ndarray:
    """``log w_c + log N(x_t | mu_c, var_c)`` (N, C) of host frames ``X``, numpy float64."""
    return _per_frame(X, coef, dev, gmm_xp.log_weighted_likelihood, "gmm weighted log-likelihood",
                      (coef.n_gaussians,))


def map_adapt(ubm_means, n, sum_px, relevance_factor, alpha, threshold, dev) -> np.ndarray:
    """MAP means (S, C, D) of S utterances (``n`` (S, C), ``sum_px`` (S, C, D), numpy) from the
    prior ``ubm_means`` (C, D) in one call on ``dev``; numpy float64."""
    from ._device_fit import put

    if relevance_factor is None:
        alpha = np.array(np.broadcast_to(np.asarray(alpha, dtype=np.float64), (n.shape[1],)))
    means = scoring_xp.map_adapt_means(put(n, dev, np.float64), put(sum_px, dev, np.float64),
                                       put(ubm_means, dev, np.float64),
                                       relevance_factor=relevance_factor, alpha=alpha,
                                       threshold=threshold)
    _count("map adaptation", dev, n.shape[0])
    return _staging.to_host(means, dev)


def adapt_machine(machine, stats) -> bool:
    """``GMMMachine.adapt``'s MAP of the means on the configured device (the machine already
    holds the UBM's parameters): True when done, False (nothing changed) without a device or when
    the machine also updates variances or weights (the host M-step then runs)."""
    dev = device()
    if dev is None or not machine.update_means or machine.update_variances or machine.update_weights:
        return False
    n = np.asarray(stats.n, dtype=np.float64)[None]
    sum_px = np.asarray(stats.sum_px, dtype=np.float64)[None]
    means = map_adapt(machine.ubm.means, n, sum_px, machine.map_relevance_factor,
                      machine.map_alpha, machine.mean_var_update_threshold, dev)[0]
    machine._update_parameters({"means": means})  # as the host M-step assigns them
    return True


class _Chunk:
    """Host frames of one chunk as the ``frames`` of :func:`emkit._device_fit.kmeans_statistics`:
    streamed to ``dev`` block by block (no copy-once decision: a chunk is used once)."""

    def __init__(self, X, dev):
        self.X, self.dev, self.shape = X, dev, tuple(X.shape)

    def blocks(self, rows: int):
        return _staging.blocks(self.X, self.dev, rows)


def kmeans_chunk(X, coef, squares: bool, dev):
    """:func:`emkit._kmeans_stats.kmeans_chunk_stats` of non-empty host frames ``X`` on ``dev``:
    a numpy :class:`~emkit._kmeans_stats.KMeansStats` for the backend's tree sum."""
    from ._device_fit import kmeans_statistics

    stats = kmeans_statistics(_Chunk(np.asarray(X, dtype=np.float64), dev), coef, squares)
    _count("k-means statistics", dev, X.shape[0])
    return stats
