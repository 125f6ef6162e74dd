"""Timing, memory and reference-subprocess helpers shared by the benchmarks."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np


def best_time(fn, repeat: int = 3) -> float:
    """Best wall-clock time of ``repeat`` calls (seconds)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved(fns, repeat):
    """``[(best time, last result)]`` of each function, run in turn ``repeat`` times: a machine
    whose speed drifts (other jobs) moves all of them together."""
    best, out = [np.inf] * len(fns), [None] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            gc.collect()
            start = time.perf_counter()
            out[i] = fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return list(zip(best, out))


def peak_memory(fn) -> int:
    """Peak bytes allocated through Python/numpy while ``fn`` runs (tracemalloc), above the start."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - base


def mb(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.1f} MB"


def run_reference(reference_python: str | None, script: str, arrays: dict, params: dict | None = None):
    """Run ``script`` (Python source) with the reference interpreter; return its JSON output.

    The script finds the input arrays in the .npz file named by ``sys.argv[1]`` and the parameters
    (JSON) in ``sys.argv[2]``, and prints one JSON object on its last line.  Returns None (with a
    message) when no reference interpreter was given or it does not exist.
    """
    if not reference_python:
        print("  reference: skipped (pass --reference-python PATH to the interpreter of a side "
              "environment with bob.learn.em 3.3.1)")
        return None
    if not os.path.exists(reference_python):
        print(f"  reference: skipped ({reference_python} does not exist)")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "inputs.npz")
        np.savez(data, **arrays)
        code = os.path.join(tmp, "bench_reference.py")
        with open(code, "w") as f:
            f.write(script)
        out = subprocess.run([reference_python, code, data, json.dumps(params or {})],
                             capture_output=True, text=True)
    if out.returncode != 0:
        print("  reference: FAILED\n" + out.stderr[-3000:])
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def header(title: str) -> None:
    import numpy, scipy, sklearn

    print(f"== {title}")
    print(f"   python {sys.version.split()[0]}, numpy {numpy.__version__}, scipy {scipy.__version__}, "
          f"scikit-learn {sklearn.__version__}, {os.cpu_count()} CPUs")
