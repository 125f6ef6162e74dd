"""The cluster that dask's ``compute`` uses now: its ``distributed`` client, and the memory and
threads that :mod:`._cache` sizes its budget by."""

from __future__ import annotations

import os

__all__ = ["distributed_client", "machine_memory", "cluster_resources", "cache_budget"]


def distributed_client():
    """The ``distributed.Client`` that dask's ``compute`` uses now, or None."""
    try:
        import dask.base
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        return None
    return client if dask.base.get_scheduler() == client.get else None


def machine_memory() -> int:
    """This machine's physical memory (bytes)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 8 << 30


def cluster_resources(client) -> tuple:
    """``(memory bytes, threads)`` of the cluster: the workers' summed memory limits and threads;
    without a client, this machine's.

    A worker without a memory limit (``memory_limit=0`` or None) counts an equal share of this
    machine's memory among the workers on its host (the scheduler's ``host`` of each worker):
    they all draw on that memory, which counted whole for each of them made ``dask_cache="auto"``
    keep several times what the host holds.  (The scheduler does not know a host's memory: a
    worker on another host is counted as if its host had this machine's.)
    """
    from . import n_threads

    if client is None:
        return machine_memory(), n_threads()
    workers = list(client.scheduler_info(n_workers=-1)["workers"].values())
    per_host: dict = {}
    for w in workers:
        per_host[w.get("host")] = per_host.get(w.get("host"), 0) + 1
    memory = sum(int(w.get("memory_limit") or 0) or machine_memory() // per_host[w.get("host")]
                 for w in workers)
    return memory, max(1, sum(int(w.get("nthreads", 1)) for w in workers))


def cache_budget(client) -> float:
    """The bytes that :mod:`._cache` may keep on the workers: ``dask_cache_fraction`` of the
    cluster's memory (:func:`cluster_resources`)."""
    from .._config import get_config

    return get_config()["dask_cache_fraction"] * cluster_resources(client)[0]
