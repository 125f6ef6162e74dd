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
