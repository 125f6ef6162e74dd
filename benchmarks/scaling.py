"""Scale-out on dask.distributed: time per GMM EM iteration with 1 and 2 worker processes.

N=2,000,000 x D=60, C=256, float64, 100 chunks, one ML EM iteration (means, variances, weights)
per measurement, on a LocalCluster of single-threaded worker processes.  Also the task overhead
per iteration for 100 chunks (the same iteration on 100 one-row chunks, where compute is nil)
and the in-process numpy time for comparison.

    python benchmarks/scaling.py [--n 2000000] [--chunks 100]
"""

from __future__ import annotations

import argparse
import time

import dask.array as da
import numpy as np
from _common import header

from emkit import GMMMachine


def _machine(means, variances, weights, steps=1):
    m = GMMMachine(len(weights), update_variances=True, update_weights=True, max_fitting_steps=steps,
                   convergence_threshold=None)
    m.means, m.variances, m.weights = means.copy(), variances.copy(), weights.copy()
    return m


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
    # the data are generated on the workers (never sent from the client)
    X = da.random.RandomState(0).normal(size=(args.n, D), chunks=(args.n // args.chunks, D))
    tiny = da.random.RandomState(0).normal(size=(args.chunks, D), chunks=(1, D))

    results = {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                          silence_logs=40) as cluster, Client(cluster):
            Xp = X.persist()  # time the EM iteration, not the data generation
            Xp.sum().compute()
            results[workers] = per_iteration(Xp, means, variances, weights)
            if workers == 2:
                overhead = per_iteration(tiny.persist(), means, variances, weights, repeat=5)
            del Xp
        print(f"   {workers} worker process(es): {results[workers]:.3f} s per iteration")
    numpy_time = per_iteration(X.compute(), means, variances, weights)
    print(f"   in-process numpy (2 threads): {numpy_time:.3f} s per iteration")
    print(f"   2 workers / 1 worker: {results[2] / results[1]:.2f} (target <= 0.65)")
    print(f"   task overhead per iteration, {args.chunks} chunks: {1e3 * overhead:.0f} ms "
          f"({1e3 * overhead / args.chunks:.2f} ms per chunk)")


if __name__ == "__main__":
    main()
