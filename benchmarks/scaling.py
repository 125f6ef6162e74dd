"""Scale-out on dask.distributed: time per GMM EM iteration with 1 and 2 worker processes.

N=2,000,000 x D=60 (a mixture of 256 unit-variance Gaussians), C=256, float64, 100 chunks, one
ML EM iteration (means, variances, weights) per measurement, on a LocalCluster of
single-threaded worker processes.  Also the task overhead per iteration for 100 chunks (the
same iteration on 100 one-row chunks, where compute is nil) and the in-process numpy time for
comparison.

    python benchmarks/scaling.py [--n 2000000] [--chunks 100]
"""

from __future__ import annotations

import argparse
import logging
import time

import dask
import dask.array as da
import numpy as np
from _common import header

from emkit import GMMMachine


def _machine(means, variances, weights, steps=1):
    m = GMMMachine(len(weights), update_variances=True, update_weights=True, max_fitting_steps=steps,
                   convergence_threshold=None)
    m.means, m.variances, m.weights = means.copy(), variances.copy(), weights.copy()
    return m


def _mixture_rows(seed, rows, means):
    rng = np.random.default_rng(seed)
    return means[rng.integers(0, len(means), rows)] + rng.standard_normal((rows, means.shape[1]))


def mixture(means, n, chunks):
    """(n, D) frames of a unit-variance mixture around ``means``, ``chunks`` chunks made where
    they are computed."""
    shared = dask.delayed(means, pure=True)
    edges = np.linspace(0, n, chunks + 1).astype(int)
    return da.concatenate([
        da.from_delayed(dask.delayed(_mixture_rows, pure=True)(i, int(b - a), shared),
                        shape=(int(b - a), means.shape[1]), dtype=np.float64)
        for i, (a, b) in enumerate(zip(edges[:-1], edges[1:]))])


def per_iteration(X, means, variances, weights, repeat=3):
    """Time per iteration from fits of 1 and 3 iterations (removes per-fit costs)."""
    def timed(steps):
        best = np.inf
        for _ in range(repeat):
            t = time.perf_counter()
            _machine(means, variances, weights, steps).fit(X)
            best = min(best, time.perf_counter() - t)
        return best
    return (timed(3) - timed(1)) / 2


def main():
    from distributed import Client, LocalCluster

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2_000_000)
    parser.add_argument("--chunks", type=int, default=100)
    args = parser.parse_args()
    header(f"GMM EM iteration on dask.distributed, N={args.n} D=60 C=256, {args.chunks} chunks")
    rng = np.random.default_rng(0)
    C, D = 256, 60
    means = rng.normal(scale=3, size=(C, D))
    variances, weights = np.ones((C, D)), np.full(C, 1 / C)
    # a mixture around the model's means, generated on the workers (never sent from the client);
    # (one standard normal around means at scale 3 left most Gaussians with a frame or two:
    # collapsed, they take the slower exact columns, which is not what this measures)
    X = mixture(means, args.n, args.chunks)
    tiny = da.random.RandomState(0).normal(size=(args.chunks, D), chunks=(1, D))

    results = {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                          silence_logs=40) as cluster, Client(cluster):
            Xp = X.persist()  # time the EM iteration, not the data generation
            Xp.sum().compute()
            results[workers] = per_iteration(Xp, means, variances, weights)
            if workers == 2:
                quiet, level = logging.getLogger("emkit"), logging.getLogger("emkit").level
                quiet.setLevel(logging.ERROR)  # (100 frames collapse most Gaussians: no warnings)
                try:
                    overhead = per_iteration(tiny.persist(), means, variances, weights, repeat=5)
                finally:
                    quiet.setLevel(level)
            del Xp
        print(f"   {workers} worker process(es): {results[workers]:.3f} s per iteration")
    numpy_time = per_iteration(X.compute(), means, variances, weights)
    print(f"   in-process numpy (2 threads): {numpy_time:.3f} s per iteration")
    print(f"   2 workers / 1 worker: {results[2] / results[1]:.2f} (target <= 0.65)")
    print(f"   task overhead per iteration, {args.chunks} chunks: {1e3 * overhead:.0f} ms "
          f"({1e3 * overhead / args.chunks:.2f} ms per chunk)")


if __name__ == "__main__":
    main()
