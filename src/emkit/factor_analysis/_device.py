"""ISV/JFA session passes on a device (``emkit.set_config(device="cuda")``, docs/gpu.md).

:func:`session_pass` is the E-step of :func:`emkit._training.session_pass` over an in-memory
:class:`~._blocks.TrainingSet` on the configured device: the sessions' statistics (already
stacked and sorted by class on the host) are joined once into one (S, C + C*D) host array
``[n | F]``, copied to the device once when it fits (decision logged at INFO level, per training
set) or streamed in row blocks every pass; the session posteriors and the accumulators
(A1, A2F, G) are computed and summed on the device, with the namespace-generic kernels of
:mod:`emkit._kernels.factor_analysis`, and come back as numpy float64 once per pass (the M-step
and the class-level steps, small, stay on the CPU).
"""

from __future__ import annotations

import functools
import weakref

import numpy as np

from .._backend import _device, _staging
from .._kernels import _xp
from .._kernels import factor_analysis as kfa
from ._estep import SessionAccumulator, SessionParams

#: Sessions per device block (the (block, C, r) and (block, r, r) temporaries).
DEVICE_BLOCK = 512

#: The device copy (or the host array to stream) of each live training set, by id; dropped when
#: the training set is garbage collected.
_STAGED: dict = {}


class _Staged:
    """A training set on a device: class codes (S,) on the device, ``[n | F]`` (S, C + C*D) on
    the host and, when copied once, on the device."""

    def __init__(self, data, dev):
        rows = data.rows
        self.codes = _device.to_device(np.concatenate([b.codes for b in rows]), dev)
        self.host = np.concatenate([np.concatenate([b.n, b.F], axis=1) for b in rows])
        what = f"ISV/JFA fit: statistics of {self.host.shape[0]} sessions"
        cached = _staging.copy_once(self.host.nbytes, dev, what)
        self.resident = _device.to_device(self.host, dev) if cached else None
        self.dev = dev

    def blocks(self, rows: int):
        """``(start, block)``: row blocks of ``[n | F]`` on the device."""
        if self.resident is not None:
            for i in range(0, self.host.shape[0], rows):
                yield i, self.resident[i:min(i + rows, self.host.shape[0]), :]
            return
        for k, block in enumerate(_staging.blocks(self.host, self.dev, rows)):
            yield k * rows, block


def _staged(data, dev) -> _Staged:
    key = (id(data), dev.library, dev.name)
    staged = _STAGED.get(key)
    if staged is None:
        staged = _STAGED[key] = _Staged(data, dev)
        weakref.finalize(data, _STAGED.pop, key, None)
    return staged


def _scatter_add(G, index, values, xp):
    """``G[index[s]] += values[s]`` (repeated indices add up); returns G."""
    lib = _xp.library(xp)
    if lib == "torch":
        return G.index_add_(0, index, values)
    if lib == "cupy":
        import cupyx

        cupyx.scatter_add(G, index, values)
        return G
    return G + _xp.segment_sum(index, values, G.shape[0], xp)


def session_pass(data, p: SessionParams, dev, progress=None) -> SessionAccumulator:
    """The E-step over all sessions of the in-memory training set ``data`` on ``dev``: the
    :class:`~._estep.SessionAccumulator` of :func:`emkit.factor_analysis._training.session_pass`
    (numpy float64); ``progress`` as :func:`device_pass`'s."""
    put = functools.partial(_device.to_device, dev=dev)
    offset_proj = None if p.offset_proj is None else put(p.offset_proj)
    sums = device_pass(_staged(data, dev), put(p.U_over_var), put(p.uprod), put(p.W_mean),
                       offset_proj, p.n_classes, p.accumulate, dev.xp, progress)
    return SessionAccumulator(*(None if a is None else _staging.to_host(a, dev) for a in sums))


def device_pass(staged: _Staged, U_over_var, uprod, W_mean, offset_proj, n_classes: int,
                accumulate: bool, xp, progress=None):
    """``(A1 (C, r, r), A2F (CD, r), G (K, C, r))`` on the device (A1, A2F None without
    ``accumulate``) of one pass over the sessions of ``staged``, from the constants on the
    device: ``U_over_var`` (CD, r), ``uprod`` (C, r, r), ``W_mean`` (C, r) and the class
    offsets' projections ``offset_proj`` (K, C, r) or None.  ``progress`` (a
    :class:`~emkit._progress.Progress`, or None) counts the sessions of each block once its
    work is queued on the device (no synchronisation: the device may still be running it)."""
    C = uprod.shape[0]
    sums = _zeros(U_over_var, C, n_classes, accumulate, xp)
    for start, block in staged.blocks(DEVICE_BLOCK):
        codes = staged.codes[start:start + block.shape[0]]
        sums = _add_block(sums, block[:, :C], block[:, C:], codes,
                          (U_over_var, uprod, W_mean, offset_proj), xp)
        if progress is not None:
            progress.advance(block.shape[0])
    return sums


def _zeros(U_over_var, C: int, n_classes: int, accumulate: bool, xp):
    r = U_over_var.shape[1]
    kw = dict(dtype=U_over_var.dtype, device=_xp.device_of(U_over_var))
    return (xp.zeros((C, r, r), **kw) if accumulate else None,
            xp.zeros((U_over_var.shape[0], r), **kw) if accumulate else None,
            xp.zeros((n_classes, C, r), **kw))


def _add_block(sums, n, F, codes, constants, xp):
    """``sums`` (A1, A2F, G) plus the terms of the sessions ``n`` (B, C), ``F`` (B, CD) of the
    classes ``codes`` (B,), all on the device."""
    A1, A2F, G = sums
    U_over_var, uprod, W_mean, offset_proj = constants
    # U^T Sigma^-1 (F_h - N_h m - N_h o_k) without forming the centred statistics
    b = F @ U_over_var - n @ W_mean
    if offset_proj is not None:
        Q = xp.take(offset_proj, codes, axis=0)  # (B, C, r): Q[k(h)]
        b = b - (n[:, None, :] @ Q)[:, 0, :]
    if A1 is not None:
        cov = kfa.posterior_covariance(n, uprod)
        x = (cov @ b[:, :, None])[:, :, 0]
        A1 += kfa.second_moments(n, cov, x)
        A2F += F.T @ x
    else:
        x = kfa.spd_solve(kfa.posterior_precision(n, uprod), b[:, :, None])[:, :, 0]
    G = _scatter_add(G, codes, n[:, :, None] * x[:, None, :], xp)
    return A1, A2F, G


def chunk_pass(piece, p: SessionParams, dev) -> SessionAccumulator:
    """:func:`emkit.factor_analysis._estep.session_chunk` on ``dev``: the sessions of a dask
    partition (on a worker whose configuration names a device), block by block to the device,
    the sums there; numpy float64 :class:`~._estep.SessionAccumulator` back for the tree sum."""
    from ._blocks import add_totals, blocks

    put = functools.partial(_device.to_device, dev=dev)
    uprod = p.uprod
    if uprod is None:  # not sent to the workers: the packed upper triangles of n_products
        r = p.W_mean.shape[1]
        uprod = kfa.unpack_symmetric(p.n_products[:, r:], r)
    constants = (put(p.U_over_var), put(uprod), put(p.W_mean),
                 None if p.offset_proj is None else put(p.offset_proj))
    sums = _zeros(constants[0], p.shape[0], p.n_classes, p.accumulate, dev.xp)
    totals = None
    for block in blocks(piece, p.shape, p.n_classes, p.step):
        if p.totals:
            totals = add_totals(totals, block, p.n_classes)
        sums = _add_block(sums, put(block.n), put(block.F), put(block.codes.astype(np.int64)),
                          constants, dev.xp)
        del block  # (a spilled partition's: freed before the next one is read)
    # totals as the numpy chunk's: None without p.totals (or without sessions)
    return SessionAccumulator(*(None if a is None else _staging.to_host(a, dev) for a in sums),
                              totals=totals)
