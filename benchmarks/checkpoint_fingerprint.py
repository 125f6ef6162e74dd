"""Cost of a checkpoint's fingerprint (every byte of X hashed) against one GMM ML EM iteration.

N=200,000 x D=60 x C=256 (as benchmarks/gmm_em.py), in one run: the time of the data fingerprint
(in memory and from a memmap of the same values), of a whole checkpoint set-up (data and
parameter fingerprints), and of one EM iteration (difference between fits of 1 and 3 iterations,
halved).  Target: fingerprint <= 3% of one iteration.

    python benchmarks/checkpoint_fingerprint.py [--n 200000] [--d 60] [--c 256]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
from _common import best_time, header, mb
from gmm_em import emkit_fit, make_problem

from emkit import GMMMachine
from emkit._checkpoint import Checkpoint
from emkit._fingerprint import data_fingerprint


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--d", type=int, default=60)
    parser.add_argument("--c", type=int, default=256)
    args = parser.parse_args()
    header(f"checkpoint fingerprint vs one GMM ML EM iteration, N={args.n} D={args.d} C={args.c}")
    X, means, variances, weights = make_problem(args.n, args.d, args.c)
    print(f"   data: {mb(X.nbytes)} float64")

    iteration = (best_time(lambda: emkit_fit(X, means, variances, weights, 3), 2)
                 - best_time(lambda: emkit_fit(X, means, variances, weights, 1), 2)) / 2
    t_hash = best_time(lambda: data_fingerprint(X), 5)
    machine = GMMMachine(args.c, max_fitting_steps=1)
    machine.means, machine.variances, machine.weights = means, variances, weights
    t_setup = best_time(lambda: Checkpoint(os.devnull, machine, X), 5)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "X.npy")
        np.save(path, X)
        mapped = np.load(path, mmap_mode="r")
        assert data_fingerprint(mapped) == data_fingerprint(X)
        t_mmap = best_time(lambda: data_fingerprint(mapped), 5)
        del mapped

    print(f"{'':40s}{'seconds':>10s}{'% of 1 iteration':>20s}")
    print(f"{'one EM iteration (ML, means/vars/weights)':40s}{iteration:10.4f}")
    for name, t in (("data fingerprint (ndarray)", t_hash), ("data fingerprint (memmap, cached)", t_mmap),
                    ("checkpoint set-up (data + parameters)", t_setup)):
        print(f"{name:40s}{t:10.4f}{100 * t / iteration:19.2f}%")
    print(f"   target: <= 3% -> {'met' if t_setup <= 0.03 * iteration else 'NOT met'}")


if __name__ == "__main__":
    main()
