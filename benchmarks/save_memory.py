"""What ``save`` costs for a model with one large array: an i-vector machine whose T is C=1024
Gaussians x D=60 features x R=400 (197 MB of float64), saved to a file.

Prints the best of 3 save times (and of the writer alone, without the read-back), the traced peak
(tracemalloc: Python and numpy allocations made while ``save`` runs, above what the model already
holds) and, in a fresh process, its RSS holding the model and its peak while saving it (Linux:
/proc/self/clear_refs).

    python benchmarks/save_memory.py [--c 1024] [--d 60] [--r 400]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
from _common import best_time, header, mb, peak_memory


def make_machine(C: int, D: int, R: int):
    from emkit.gmm import GMMMachine
    from emkit.ivector import IVectorMachine

    rng = np.random.default_rng(0)
    ubm = GMMMachine(C)
    ubm.means = rng.normal(size=(C, D))
    ubm.variances = rng.uniform(0.5, 2.0, (C, D))
    ubm.weights = np.full(C, 1.0 / C)
    machine = IVectorMachine(ubm, R)
    machine.T = rng.normal(size=(C, D, R))
    machine.sigma = rng.uniform(0.5, 2.0, (C, D))
    return machine


def write_only(machine, path) -> None:
    """What ``save`` writes, without its read-back (and not atomically)."""
    import h5py

    from emkit.io._registry import layout_of

    with h5py.File(path, "w") as f:
        layout_of(type(machine)).write(machine, f)


_CHILD = """
import sys
sys.path.insert(0, {here!r})
from save_memory import make_machine

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

machine = make_machine({c}, {d}, {r})
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak RSS starts again from the current RSS
before = status("VmRSS")
machine.save({path!r})
print(before, status("VmHWM"))
"""


def rss_of_save(args, path):
    """RSS (bytes) of a fresh process once it built the machine, and its peak while saving it."""
    code = _CHILD.format(here=os.path.dirname(os.path.abspath(__file__)), c=args.c, d=args.d,
                         r=args.r, path=path)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, peak = (int(v) for v in out.stdout.split()[-2:])
    return before, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--c", type=int, default=1024)
    parser.add_argument("--d", type=int, default=60)
    parser.add_argument("--r", type=int, default=400)
    args = parser.parse_args()
    header(f"save of an IVectorMachine, C={args.c} D={args.d} R={args.r}")
    machine = make_machine(args.c, args.d, args.r)
    print(f"   T: {mb(machine.T.nbytes)} float64")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ivector.h5")
        save = best_time(lambda: machine.save(path), 3)
        write = best_time(lambda: write_only(machine, path), 3)
        print(f"   save time (best of 3): {save:.3f} s; the writer alone (no read-back): "
              f"{write:.3f} s")
        print(f"   traced peak of save:   {mb(peak_memory(lambda: machine.save(path)))}")
        before, peak = rss_of_save(args, path)
        print(f"   RSS of a fresh process: {mb(before)} holding the model, peak {mb(peak)} while "
              f"saving it (+{mb(peak - before)})")



if __name__ == "__main__":
    main()
