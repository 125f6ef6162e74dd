""":class:`IVectorMachine` on a device (``emkit.set_config(device="cuda")``, docs/gpu.md).

``fit``: the statistics are stacked and centred once on the host into one (S, C + C*D) array
(``n | F - n m``) and the centred second-order sums (C, D) (compensated, as on the CPU path);
that array is copied to the device once when it fits (:func:`emkit._backend._staging.copy_once`,
logged) or streamed in batches every iteration.  T, sigma, their constants and the accumulators
stay on the device between iterations; T and sigma come back (numpy float64) at the end of
``fit`` and before each checkpoint.  ``transform``/``project``: the projection constants are cached on the device with
the machine's other derived constants; batches of statistics are stacked on the host, copied,
projected and brought back.  The kernels are :mod:`emkit._kernels.ivector_xp`.
"""

from __future__ import annotations

import functools

import numpy as np

from .._backend import _device, _staging
from .._fitted import clear_derived, derived, set_fitted
from .._kernels import ivector as kiv
from .._kernels import packed as pk
from .._kernels import ivector_xp as kx
from .._progress import Progress
from ..stats import GMMStats
from ._batching import check_projection_parameters

#: Most utterances per device batch (the (S, R, R) stacks: about 4 R*R*8 bytes per utterance).
MAX_DEVICE_BATCH = 1024


def stage(X, means, batch_size: int):
    """``(Z (S, C + C*D), snorm (C, D))``: the list ``X`` of GMMStats stacked and centred on the
    host, ``Z[s] = [n_s | F_s - n_s m]``, and the centred second-order statistics summed over all
    utterances (errors name ``X[i]``)."""
    C, D = means.shape
    Z = np.empty((len(X), C + C * D))
    snorm = np.zeros((C, D))
    for start in range(0, len(X), batch_size):
        b = GMMStats.stack(X[start:start + batch_size], name="X", shape=(C, D), second_order=True,
                           offset=start)
        centred = kiv.centre_batch(b.n, b.sum_px, b.sum_pxx, means)
        rows = slice(start, start + len(b.n))
        Z[rows, :C] = centred.n
        Z[rows, C:] = centred.fnorm.reshape(len(b.n), C * D)
        snorm += centred.snorm
    return Z, snorm


def _split(block, C: int, D: int, xp):
    return block[:, :C], xp.reshape(block[:, C:], (block.shape[0], C, D))


class DeviceTraining:
    """The E-step and M-step of ``IVectorMachine.fit`` on ``dev`` (for
    :func:`emkit._checkpoint.resumable_em`)."""

    def __init__(self, machine, X, means: np.ndarray, batch_size: int, dev):
        C, D = means.shape
        self.machine, self.dev, self.shape = machine, dev, (C, D)
        self.batch_size = batch_size
        self.Z, snorm = stage(X, means, batch_size)
        what = f"IVectorMachine.fit: statistics of {len(X)} utterances"
        self.resident = (_device.to_device(self.Z, dev)
                         if _staging.copy_once(self.Z.nbytes, dev, what) else None)
        self.means = _device.to_device(means, dev)
        self.snorm = _device.to_device(snorm, dev)
        self._params = None  # (host T, host sigma, device T, device sigma)
        self.dirty = False  # the device's T and sigma are newer than the machine's

    def _parameters(self):
        """T and sigma on the device: the M-step's own, or the machine's (initial or restored
        from a checkpoint) copied there."""
        m = self.machine
        p = self._params
        if not self.dirty and (p is None or p[0] is not m.T or p[1] is not m.sigma):
            p = self._params = (m.T, m.sigma, _device.to_device(m.T, self.dev),
                                _device.to_device(m.sigma, self.dev))
        return p[2], p[3]

    def _batches(self):
        if self.resident is not None:
            for i in range(0, self.Z.shape[0], self.batch_size):
                yield self.resident[i:min(i + self.batch_size, self.Z.shape[0]), :]
        else:
            yield from _staging.blocks(self.Z, self.dev, self.batch_size)

    def e_step(self):
        """The accumulators (on the device) and the total log-likelihood of the statistics; the
        ``emkit`` logger says how far it is (utterances whose batch was sent of all), as the CPU
        E-step does."""
        T, sigma = self._parameters()
        pre = kx.constants(self.means, T, sigma)
        acc = kx.Accumulators.zeros(pre)
        xp = self.dev.xp
        progress = Progress("IVector E-step", self.Z.shape[0], "utterance")
        for block in self._batches():
            acc.add(*_split(block, *self.shape, xp), pre)
            progress.advance(block.shape[0])
        return acc, kx.finish_log_likelihood(acc, self.snorm, pre)

    def m_step(self, stats) -> float:
        """New T and sigma, kept on the device (:meth:`sync` stores them on the machine);
        returns the average log-likelihood per utterance of the E-step."""
        acc, log_likelihood = stats
        m = self.machine
        _, sigma = self._parameters()
        T, sigma = kx.m_step(acc.nij_sigma_wij2, acc.fnorm_sigma_wij, self.snorm, acc.nij, sigma,
                             m.update_sigma, m.variance_floor)
        self._params, self.dirty = (None, None, T, sigma), True
        return log_likelihood / acc.n_sessions

    def sync(self) -> None:
        """The device's T and sigma stored on the machine (numpy float64), if newer: at the end
        of ``fit`` and before each checkpoint, not after every M-step."""
        if self.dirty:
            m, (_, _, T, sigma) = self.machine, self._params
            set_fitted(m, "T", _staging.to_host(T, self.dev), copy=False)
            set_fitted(m, "sigma", _staging.to_host(sigma, self.dev), copy=False)
            self._params, self.dirty = (m.T, m.sigma, T, sigma), False

    def state(self) -> dict:
        """The training state for checkpoints, synchronised first."""
        self.sync()
        return {"T": self.machine.T, "sigma": self.machine.sigma}


def _constants(machine, dev) -> kx.Constants:
    """The projection constants on ``dev``, cached with the machine's derived constants (dropped
    when T or sigma is assigned, recomputed when the UBM's means change)."""
    T, sigma, means = machine.T, machine.sigma, np.asarray(machine.ubm.means, dtype=np.float64)
    check_projection_parameters(T, sigma, *np.shape(means))

    def compute():
        return means.copy(), kx.constants(*(_device.to_device(a, dev) for a in (means, T, sigma)))

    key = ("projection", dev.library, dev.name)
    host_means, pre = derived(machine, key, compute)
    if not np.array_equal(host_means, means):
        clear_derived(machine)
        host_means, pre = derived(machine, key, compute)
    return pre


def project(machine, X, name: str, indexed: bool, dev, partition: int | None = None) -> np.ndarray:
    """i-vectors (S, R) of the list ``X`` of GMMStats (partition ``partition`` of a dask bag, for
    errors), computed on ``dev``; the ``emkit`` logger says how far it is, as on the CPU."""
    pre = _constants(machine, dev)
    (C, D, R), S = pre.shape, len(X)
    means = np.asarray(machine.ubm.means, dtype=np.float64)
    size = max(1, min(S, MAX_DEVICE_BATCH))
    out = np.empty((S, R))
    done = Progress("i-vectors", S, "utterance")
    for start in range(0, S, size):
        b = GMMStats.stack(X[start:start + size], name=name, shape=(C, D), indexed=indexed,
                           offset=start, partition=partition)
        n = _device.to_device(b.n, dev)
        fnorm = _device.to_device(b.sum_px - b.n[:, :, None] * means, dev)
        out[start:start + len(b.n)] = _device.to_numpy(kx.project(n, fnorm, pre))
        done.advance(len(b.n))
    done.finish()
    return out


def chunk_statistics(items, pre: kiv.Precomputed, batch_size: int, name: str, dev,
                     partition: int | None = None, progress: Progress | None = None):
    """:func:`emkit.ivector._training._estep_chunk` on ``dev``: the E-step of a dask partition
    (GMMStats, or :class:`~emkit._kernels.ivector.CentredBatch` kept on the workers) on a worker
    whose configuration names a device.  The batches are centred on the host (compensated, as on
    the CPU path), copied and accumulated there with :mod:`emkit._kernels.ivector_xp`; the
    constants of ``pre`` go to the device once per ``pre`` (one EM iteration).  Returns numpy
    float64 :class:`~emkit.ivector.IVectorStats` (the symmetric accumulator packed, as the CPU
    chunks'), for dask's tree sum.  ``progress`` (a :class:`~emkit._progress.Progress`) counts
    the utterances of each batch sent."""
    from ._stats import IVectorStats

    items = items if isinstance(items, list) else list(items)
    C, D, R = pre.shape
    dpre = _chunk_constants(pre, dev)
    acc = kx.Accumulators.zeros(dpre)
    snorm, ll = np.zeros((C, D)), 0.0
    if items and isinstance(items[0], kiv.CentredBatch):
        batches = items
    else:
        batches = (kiv.centre_batch(b.n, b.sum_px, b.sum_pxx, pre.means) for b in (
            GMMStats.stack(items[i:i + batch_size], name=name, shape=(C, D), second_order=True,
                           offset=i, partition=partition) for i in range(0, len(items), batch_size)))
    for batch in batches:
        acc.add(_device.to_device(batch.n, dev), _device.to_device(batch.fnorm, dev), dpre)
        snorm += batch.snorm
        ll -= 0.5 * float(np.sum(batch.snorm * pre.inv_sigma))
        if progress is not None:
            progress.advance(len(batch.n))
    out = IVectorStats(C, D, R)
    if acc.n_sessions:
        lower = _device.to_device(pk.lower_index(R).astype(np.int64), dev)
        packed = dev.xp.take(dev.xp.reshape(acc.nij_sigma_wij2, (C, R * R)), lower, axis=1)
        out._packed[...] = _device.to_numpy(packed)
        out.fnorm_sigma_wij[...] = _device.to_numpy(acc.fnorm_sigma_wij)
        out.nij[...] = _device.to_numpy(acc.nij)
        out.snormij[...] = snorm
        out._count(float(acc.log_likelihood) + ll, acc.n_sessions)
    return out


_CHUNK_CONSTANTS: dict = {}


def _chunk_constants(pre: kiv.Precomputed, dev) -> kx.Constants:
    """The device :class:`~emkit._kernels.ivector_xp.Constants` of ``pre``; the last pair is
    kept per device (the chunks of one iteration share ``pre``)."""
    key = (dev.library, dev.name)
    cached = _CHUNK_CONSTANTS.get(key)
    if cached is not None and cached[0] is pre:
        return cached[1]
    C, D, R = pre.shape
    put = functools.partial(_device.to_device, dev=dev)
    full = put(pk.symmetric_index(R).astype(np.int64))
    tt = dev.xp.take(put(pre.tt_lower), full, axis=1)  # (C, R*R) from the packed triangles
    out = kx.Constants(means=put(pre.means), inv_sigma=put(pre.inv_sigma),
                       t_sigma_inv=put(pre.t_sigma_inv), tt=tt, log_norm=put(pre.log_norm))
    _CHUNK_CONSTANTS[key] = (pre, out)
    return out
