"""ISV/JFA ``score_matrix`` on a device (``emkit.set_config(device="cuda")``, docs/gpu.md).

The products of :func:`emkit.factor_analysis._scoring.score_matrix` (``A F^T - a_m n^T -
W_a (n x)^T`` per block of probes, the probes' channel factors ``x`` by the namespace-generic
kernels of :mod:`emkit._kernels.factor_analysis`) with the models' terms and the machine's
constants on the device; the probes' statistics go there block by block and the (M, block)
scores come back as numpy float64 into the host result.
"""

from __future__ import annotations

import numpy as np

from .._backend import _device, _staging
from .._kernels import factor_analysis as kfa


def _constants(c, dev):
    """``(m, var, U_over_var, n_products)`` on ``dev``, kept in the constants' scoring caches
    (new constants, i.e. new parameters, start without them)."""
    key = ("device", dev.library, dev.name)
    cached = c.scratch.get(key)
    if cached is None:
        cached = c.scratch[key] = tuple(_device.to_device(np.asarray(a, dtype=np.float64), dev)
                                        for a in (c.m, c.var, c.U_over_var, c.n_products))
    return cached


def score_matrix(c, offsets, n, F, dev, probe_block: int) -> np.ndarray:
    """Unnormalised scores (M, P) of M models ``m + offsets`` (M, CD) against P probes with
    statistics ``n`` (P, C), ``F`` (P, CD) (numpy), computed on ``dev``."""
    xp = dev.xp
    (C, D) = c.shape
    m, var, U_over_var, n_products = _constants(c, dev)
    r = U_over_var.shape[1]
    A = ((_device.to_device(np.asarray(offsets, dtype=np.float64), dev) + m) - m) / var
    M = A.shape[0]
    a_m = xp.sum(xp.reshape(A * m, (M, C, D)), axis=2)  # (M, C)
    W_a = xp.matmul(xp.permute_dims(xp.reshape(A * var, (M, C, D)), (1, 0, 2)),
                    xp.reshape(U_over_var, (C, D, r)))  # (C, M, r)
    W_a = xp.reshape(xp.permute_dims(W_a, (1, 0, 2)), (M, C * r))
    P = n.shape[0]
    out = np.empty((M, P))
    for start in range(0, P, probe_block):
        rows = slice(start, min(start + probe_block, P))
        nb, Fb = (_device.to_device(np.ascontiguousarray(a[rows]), dev) for a in (n, F))
        precision, b = kfa.centred_projections(nb, Fb, U_over_var, n_products)
        x = kfa.spd_solve(precision, b[:, :, None])[:, :, 0]  # (B, r) channel factors
        nx = xp.reshape(nb[:, :, None] * x[:, None, :], (nb.shape[0], C * r))
        block = A @ xp.matrix_transpose(Fb) - a_m @ xp.matrix_transpose(nb)
        out[:, rows] = _staging.to_host(block - W_a @ xp.matrix_transpose(nx), dev)
    return out
