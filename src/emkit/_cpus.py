"""The CPUs this process may use (standard library only: the command line imports it before
numpy)."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """The number of CPUs this process may run on: its affinity mask where the system has one
    (taskset, cgroup cpusets, Slurm), else ``os.cpu_count()``; at least 1.

    Returns
    -------
    int
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def worker_threads() -> int:
    """How many threads emkit's own pool runs in this process: :func:`usable_cpus`, capped by
    ``OMP_NUM_THREADS`` when that is set to a positive integer (its first level, as in ``"4,2"``).

    The processes that run work in parallel set that variable for their children so that each
    one takes its share of the CPUs: dask's nanny sets it to 1 in every worker process, joblib's
    loky backend to ``cpus // n_jobs``.  emkit follows it as OpenMP code and OpenBLAS do;
    without it, every such process started a pool of all the CPUs (W workers times C threads).
    Any other value (empty, ``"0"``, not a number) is ignored, as OpenMP ignores it.

    Returns
    -------
    int
    """
    cpus = usable_cpus()
    first_level = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if first_level.isdigit() and int(first_level) > 0:
        return min(cpus, int(first_level))
    return cpus
