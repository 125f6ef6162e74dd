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


def omp_num_threads(value: str | None) -> int | None:
    """The thread count that an ``OMP_NUM_THREADS`` value asks for: its first level (``"4,2"``
    gives 4) when that is a positive integer, else None (empty, ``"0"``, not a number: ignored,
    as OpenMP ignores it).

    Parameters
    ----------
    value : str or None
        The variable's value (None: not set).

    Returns
    -------
    int or None
    """
    first_level = (value or "").split(",")[0].strip()
    # (ASCII digits only: "²".isdigit() is True, but int("²") raises)
    if not (first_level.isascii() and first_level.isdigit()):
        return None
    return int(first_level) or None


#: ``OMP_NUM_THREADS`` as this process found it when emkit was imported (read once, as OpenMP and
#: OpenBLAS read it when they load: dask's nanny sets it in the *client's* environment too, for
#: the worker processes it starts, and never restores it)
_OMP_NUM_THREADS = omp_num_threads(os.environ.get("OMP_NUM_THREADS"))


def worker_threads() -> int:
    """How many threads emkit's own pool runs in this process: :func:`usable_cpus`, capped by
    ``OMP_NUM_THREADS`` as it was when emkit was imported, if set to a positive integer.

    The processes that run work in parallel set that variable for their children so that each
    one takes its share of the CPUs: dask's nanny sets it to 1 in every worker process, joblib's
    loky backend to ``cpus // n_jobs``.  emkit follows it as OpenMP code and OpenBLAS do;
    without it, every such process started a pool of all the CPUs (W workers times C threads).

    Returns
    -------
    int
    """
    cpus = usable_cpus()
    return cpus if _OMP_NUM_THREADS is None else min(cpus, _OMP_NUM_THREADS)
