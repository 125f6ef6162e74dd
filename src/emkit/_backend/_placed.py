"""A bag's partitions computed once on a ``distributed`` cluster and joined into one run of
consecutive partitions per worker thread (:func:`emkit._backend._cache.computed_once`).

The bag is cut into one run of consecutive partitions per worker thread, and the client hands each
thread the partitions of its own run, in order, :data:`IN_FLIGHT` at a time; a thread whose run is
done takes the last partitions of the longest other run (so a worker slowed down by other
processes takes fewer, and the faster one is never left idle). Each run is then joined on the
worker that holds most of it (a placement, not a requirement: another worker takes over when that
one is gone), so that only the partitions taken from another run move between workers (when the
scheduler placed the partitions itself, about half of them moved: 2.6 s of transfers for the
i-vector statistics of 1000 utterances at C=512, D=60), and every pass runs one task per worker
thread where its data are. The runs and their order depend on the partitions and the thread count
only, never on timing: the numbers do not change from one fit to the next.
"""

from __future__ import annotations

from collections import deque

import numpy as np

__all__ = ["worker_slots", "runs", "assign", "next_partition", "cache_on_workers"]

#: Partitions handed to a worker thread ahead of their turn.  With two, the thread sat idle
#: between partitions while the client learnt that one was done and sent the next (a scheduler
#: round trip, about 15 ms every two partitions on the 2-core development machine).
IN_FLIGHT = 3


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


def assign(groups, holders, slots) -> list:
    """A worker of ``slots`` (one entry per worker thread) for each run: the one holding most of
    its partitions (``holders[i]``: the workers holding partition ``i``) among those with a
    thread left, the runs that are most in one place first."""
    free = {}
    for w in slots:
        free[w] = free.get(w, 0) + 1
    counts = []
    for g in groups:
        count = {}
        for i in range(g.start, g.stop):
            for w in holders[i]:
                count[w] = count.get(w, 0) + 1
        counts.append(count)
    order = sorted(range(len(groups)), key=lambda j: -max(counts[j].values(), default=0))
    chosen = [None] * len(groups)
    for j in order:
        w = max((w for w in slots if free[w]), key=lambda w: counts[j].get(w, 0))
        chosen[j] = w
        free[w] -= 1
    return chosen


def next_partition(queues, j):
    """The partition to hand to run ``j``'s thread (``queues``: the partitions of each run not
    handed out yet, in order; updated): the first of its own run, else the last of the longest
    other run; None when none is left."""
    if queues[j]:
        return queues[j].popleft()
    k = max(range(len(queues)), key=lambda k: len(queues[k]))
    return queues[k].pop() if queues[k] else None


def cache_on_workers(client, parts, probe, budget: float):
    """Compute the delayed partitions ``parts`` on the workers, joined into one partition per run.

    Returns ``(futures, lengths)``: the futures of the joined runs, in order, and the lengths of
    the input partitions of each run.  With ``probe`` (a function of a partition giving its
    size in bytes), the first two partitions of every run are computed first, and when the mean
    size of those done first times the number of partitions exceeds ``budget`` nothing more is
    computed: then ``(None, parts)`` is returned, the partitions computed as delayed futures
    (not recomputed).
    """
    import dask
    from distributed import as_completed, wait

    slots = worker_slots(client)
    groups = runs(len(parts), len(slots))
    futures = [None] * len(parts)
    queues = [deque(range(g.start, g.stop)) for g in groups]

    def launch(j):  # the next partition for run j's thread, or None when all are handed out
        i = next_partition(queues, j)
        if i is None:
            return None
        (future,) = client.compute([parts[i]], workers=[slots[j]], allow_other_workers=True)
        futures[i], thread_of[future.key] = future, j
        return future

    thread_of = {}
    started = [launch(j) for j in range(len(groups))]
    if probe is not None:
        sizes = [client.submit(probe, f, pure=False, priority=1) for f in started]
    for _ in range(IN_FLIGHT - 1):  # keeps the threads busy meanwhile
        started += [launch(j) for j in range(len(groups))]
    started = [f for f in started if f is not None]
    if probe is not None:
        # decided on the first sizes known (the other runs' first partitions still computing)
        done, _ = wait(sizes, return_when="FIRST_COMPLETED")
        sizes = client.gather([f for f in sizes if f in done])
        if float(np.mean(sizes)) * len(parts) > budget:
            return None, [p if f is None else dask.delayed(f) for p, f in zip(parts, futures)]
    pending = as_completed(started)
    for future in pending:  # each partition done: the next one for the same thread
        following = launch(thread_of[future.key])
        if following is not None:
            pending.add(following)
    who_has = client.who_has(futures)  # (all done)
    places = assign(groups, [who_has.get(f.key, ()) for f in futures], slots)
    joined, lengths = [], []
    for g, w in zip(groups, places):  # each run's lengths counted where it is joined
        joined.append(client.submit(_concat, *futures[g], workers=[w], allow_other_workers=True,
                                    pure=False))
        lengths.append(client.submit(_lengths, *futures[g], workers=[w], allow_other_workers=True,
                                     pure=False))
    return joined, client.gather(lengths)
