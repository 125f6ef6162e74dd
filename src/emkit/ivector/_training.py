"""The E-step (batches of stacked statistics -> :class:`IVectorStats`, on threads or dask
partitions) and the M-step; module-level ``e_step``/``m_step`` as the reference's."""

from __future__ import annotations

import functools
import threading

import numpy as np
from sklearn.exceptions import NotFittedError

from .._backend import map_ordered, map_reduce, n_threads, small_products
from .._kernels import ivector as kiv
from .._progress import Progress
from ..stats import GMMStats
from ._batching import _batch_size, _check_stats_sequence, _shared_accumulator
from ._stats import IVectorStats


def _estep_chunk(items, pre: kiv.Precomputed, batch_size: int, name: str = "X",
                 threads: int = 1, recycle: IVectorStats | None = None,
                 scratch: dict | None = None, partition: int | None = None,
                 progress: Progress | None = None) -> IVectorStats:
    """E-step statistics of a list of GMMStats, or of :class:`~emkit._kernels.ivector.CentredBatch`
    (stacked once per ``fit``).  ``recycle``: the statistics of an earlier E-step, no longer
    needed, whose arrays are overwritten; ``scratch``: a dict that keeps the batches' scratch
    arrays for the next E-step (large fresh arrays cost their page faults); ``partition``: the
    number of the dask bag's partition ``items`` is, named by errors; ``progress``: counts the
    utterances of each batch done."""
    # (a partition read from spill files as it is iterated: its batches one at a time)
    pending = iter(items)
    batch = next(pending, None)
    items = [] if batch is None else [batch]
    C, D, R = pre.shape
    acc = recycle._recycled() if recycle is not None and recycle.shape == (C, D, R) else None
    if acc is None:
        acc = IVectorStats(C, D, R)
    parallel = None if threads <= 1 else (lambda fn, pieces: map_ordered(fn, pieces, threads))
    # scratch reused from batch to batch; the packed second-order sums go straight to ``acc``
    workspace = {} if scratch is None else scratch
    workspace.update(packed=acc._packed_second_order(), overwrite=acc is recycle)
    if isinstance(batch, kiv.CentredBatch):
        items = None
        while batch is not None:
            _count(acc, kiv.accumulate_centred(batch, pre, acc, parallel, threads, workspace),
                   progress)
            batch = None  # freed before the next one is read
            batch = next(pending, None)
    else:
        items.extend(pending)
        del batch
        for start in range(0, len(items), batch_size):
            b = GMMStats.stack(items[start : start + batch_size], name=name, shape=(C, D),
                               second_order=True, offset=start, partition=partition)
            _count(acc, kiv.accumulate(b.n, b.sum_px, b.sum_pxx, pre, acc, parallel, threads,
                                       workspace), progress)
    if workspace.pop("overwrite", False):  # still set: no batch overwrote the recycled arrays
        acc._clear()
    workspace.pop("packed", None)
    return acc


def _count(acc: IVectorStats, batch: tuple, progress: Progress | None) -> None:
    """The log-likelihood and utterances of a batch, ``(log_likelihood, n)``, added to ``acc``
    (and its utterances to ``progress``)."""
    acc._count(*batch)
    if progress is not None:
        progress.advance(batch[1])


def _accumulate(data, pre: kiv.Precomputed, batch_size: int, name: str,
                recycle: IVectorStats | None = None, scratch: dict | None = None) -> IVectorStats:
    """E-step statistics of a list (on threads) or a dask bag (one task per partition);
    ``recycle`` and ``scratch`` as for :func:`_estep_chunk` (used by the threads' shared
    accumulator).  The ``emkit`` logger says how far the E-step of a list is (INFO, at most
    every 30 s: utterances done of all; partitions done of a bag's), as an iteration at
    production size takes hours."""
    if not isinstance(data, list):  # a dask bag: one task per partition, on the workers
        progress = Progress("IVector E-step", data.npartitions, "partition")
        return map_reduce(_bag_chunk, data, pre, batch_size, name, numbered=True,
                          progress=progress)
    C, _, R = pre.shape
    progress = Progress("IVector E-step", _utterances(data), "utterance")
    if _shared_accumulator(C, R):
        return _estep_chunk(data, pre, batch_size, name, threads=n_threads(), recycle=recycle,
                            scratch=scratch, progress=progress)
    if data and isinstance(data[0], kiv.CentredBatch):  # in order
        # one accumulator per thread (contiguous runs of batches), summed pairwise in place
        groups = [data[sl] for sl in kiv._pieces(len(data), n_threads())]
        parts = map_ordered(lambda group: _estep_chunk(group, pre, batch_size,
                                                       progress=progress), groups)
        while len(parts) > 1:
            for i in range(0, len(parts) - 1, 2):
                parts[i] += parts[i + 1]
            parts = parts[::2]
        return parts[0]
    return map_reduce(functools.partial(_bag_chunk, progress=progress), data, pre, batch_size,
                      name)


def _utterances(data: list) -> int:
    """How many utterances a list of GMMStats or of centred batches holds."""
    if data and isinstance(data[0], kiv.CentredBatch):
        return sum(len(batch.n) for batch in data)
    return len(data)


def _bag_chunk(items, pre: kiv.Precomputed, batch_size: int, name: str = "X",
               partition: int | None = None, progress: Progress | None = None) -> IVectorStats:
    """:func:`_estep_chunk` of a dask partition (or of a piece of a list, counted by
    ``progress``), on the device configured in the process where it runs (a worker's own
    configuration: ``client.run(emkit.set_config, device="cuda")``)."""
    from .._device_infer import device

    dev = device()
    if dev is None:
        return _estep_chunk(items, pre, batch_size, name, partition=partition, progress=progress)
    from ._device import chunk_statistics

    return chunk_statistics(items, pre, batch_size, name, dev, partition, progress)


class WorkerParameters:
    """The E-step's parameters as dask workers receive them: the UBM means, T and sigma.  The
    :class:`~emkit._kernels.ivector.Precomputed` constants (larger: (C, R(R+1)/2) and (C*D, R))
    are derived on each worker, once per pass (its tasks share the one scattered copy), instead
    of being computed here and sent."""

    def __init__(self, means, T, sigma):
        self.means, self.T, self.sigma = means, T, sigma
        self._pre, self._lock = None, threading.Lock()

    def __getstate__(self):
        return {"means": self.means, "T": self.T, "sigma": self.sigma}

    def __setstate__(self, state):
        self.__init__(state["means"], state["T"], state["sigma"])

    def precomputed(self) -> kiv.Precomputed:
        with self._lock:
            if self._pre is None:
                self._pre = kiv.Precomputed.from_parameters(self.means, self.T, self.sigma)
            return self._pre


def _estep_on_worker(items, params: WorkerParameters, batch_size: int, name: str,
                     partition: int | None = None) -> IVectorStats:
    return _bag_chunk(items, params.precomputed(), batch_size, name, partition)


def accumulate_dask(data, means, T, sigma, batch_size: int, name: str = "X") -> IVectorStats:
    """E-step statistics of a dask bag (one task per partition; see :class:`WorkerParameters`);
    the ``emkit`` logger says how far it is (INFO, at most every 30 s: partitions done of all)."""
    progress = Progress("IVector E-step", data.npartitions, "partition")
    return map_reduce(_estep_on_worker, data, WorkerParameters(means, T, sigma), batch_size, name,
                      numbered=True, progress=progress)


def _parallel_map(fn, items):
    return map_ordered(fn, items)


def e_step(machine: "IVectorMachine", data) -> IVectorStats:
    """E-step statistics of ``data`` under ``machine``.

    Parameters
    ----------
    machine : IVectorMachine
    data : list of GMMStats, or a dask bag of them

    Returns
    -------
    IVectorStats
    """
    data = _check_stats_sequence(data, "data")
    if machine.T is None or machine.sigma is None:
        raise NotFittedError("e_step needs a machine whose T and sigma are set (call fit first)")
    with small_products():
        pre = kiv.Precomputed.from_parameters(np.asarray(machine.ubm.means, dtype=np.float64),
                                              np.asarray(machine.T, dtype=np.float64),
                                              np.asarray(machine.sigma, dtype=np.float64),
                                              _parallel_map, n_threads())
        return _accumulate(data, pre, _batch_size(machine), "data")


def m_step(machine: "IVectorMachine", stats: IVectorStats) -> "IVectorMachine":
    """Update ``machine.T`` (and ``sigma`` if ``update_sigma``) from ``stats``, in place.

    Parameters
    ----------
    machine : IVectorMachine
    stats : IVectorStats
        What :func:`e_step` returned.

    Returns
    -------
    IVectorMachine
        ``machine``.
    """
    if not isinstance(stats, IVectorStats):
        raise TypeError(f"stats must be an IVectorStats; got {type(stats).__name__}")
    if machine.sigma is None:
        raise NotFittedError("m_step needs a machine whose sigma is set (call fit first)")
    expected = tuple(np.shape(machine.sigma)) + (machine.dim_t,)
    if tuple(stats.shape) != expected:  # (numpy's boolean-index error named neither)
        raise ValueError(f"stats has shape (C, D, dim_t) = {tuple(stats.shape)}; the machine needs "
                         f"{expected}")
    second = stats._packed_second_order()  # the M-step reads one triangle: no need to expand
    second = stats.nij_sigma_wij2 if second is None else second
    with small_products():
        machine._set_parameters(*kiv.m_step(
            second, stats.fnorm_sigma_wij, stats.snormij, stats.nij,
            np.asarray(machine.sigma, dtype=np.float64), machine.update_sigma,
            machine.variance_floor, parallel_map=_parallel_map,
            n_pieces=n_threads(),
        ))
    return machine
