"""A bag's partitions computed once on a ``distributed`` cluster, each run of consecutive
partitions on the worker that keeps it (:func:`emkit._backend._cache.computed_once`).

The bag is cut into one run of consecutive partitions per worker thread (in order), and run ``g``
is computed on the ``g``-th thread's worker (a placement, not a requirement: another worker
takes over when that one is gone), so that joining a run into one partition moves no data
between workers, and every pass then runs one task per worker thread where its data are.  The
runs and their order depend on the partitions and the thread count only, never on timing: the
numbers do not change from one fit to the next.
"""

from __future__ import annotations

import numpy as np

__all__ = ["worker_slots", "runs", "cache_on_workers"]


def worker_slots(client) -> list:
    """One worker address per worker thread, in a fixed (sorted) order."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return [a for a in sorted(workers) for _ in range(max(1, int(workers[a].get("nthreads", 1))))]


def runs(n_parts: int, n_runs: int) -> list:
    """``min(n_parts, n_runs)`` slices of about equal lengths covering ``range(n_parts)``."""
    edges = np.linspace(0, n_parts, min(n_parts, n_runs) + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _concat(*parts) -> list:
    return [item for part in parts for item in part]


def _lengths(*parts) -> list:
    return [len(part if isinstance(part, list) else list(part)) for part in parts]


def cache_on_workers(client, parts, probe, budget: float):
    """Compute the delayed partitions ``parts`` on the workers, joined into one partition per run.

    Returns ``(futures, lengths)``: the futures of the joined runs, in order, and the lengths of
    the input partitions of each run.  With ``probe`` (a function of a partition giving its
    size in bytes), the first partition of every run is computed first, and when the mean size
    of those done first times the number of partitions exceeds ``budget`` nothing more is
    computed: then
    ``(None, parts)`` is returned, the probed partitions as delayed futures (not recomputed).
    """
    import dask

    slots = worker_slots(client)
    groups = runs(len(parts), len(slots))
    futures = [None] * len(parts)

    def compute(indices, worker):
        placed = client.compute([parts[i] for i in indices], workers=[worker],
                                allow_other_workers=True)
        for i, future in zip(indices, placed):
            futures[i] = future

    if probe is not None:
        for g, worker in zip(groups, slots):
            compute([g.start], worker)
        from distributed import wait

        # decided on the first sizes known (the other runs' first partitions still computing)
        sizes = [client.submit(probe, futures[g.start], pure=False) for g in groups]
        done, _ = wait(sizes, return_when="FIRST_COMPLETED")
        sizes = client.gather([f for f in sizes if f in done])
        if float(np.mean(sizes)) * len(parts) > budget:
            return None, [p if f is None else dask.delayed(f) for p, f in zip(parts, futures)]
    for g, worker in zip(groups, slots):
        compute([i for i in range(g.start, g.stop) if futures[i] is None], worker)
    joined = [client.submit(_concat, *futures[g], workers=[w], allow_other_workers=True, pure=False)
              for g, w in zip(groups, slots)]
    lengths = client.gather([client.submit(_lengths, *futures[g], workers=[w],
                                           allow_other_workers=True, pure=False)
                             for g, w in zip(groups, slots)])
    return joined, lengths
