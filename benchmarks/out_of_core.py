"""Out-of-core GMM training: a float32 HDF5 matrix of 4 GB on disk (N=16.7M, D=60), C=256.

Writes the file (once; reuse it with --path), then fits a GMM (k-means|| + 5 Lloyd iterations for
the initialisation, then 5 ML EM iterations) on a LocalCluster(n_workers=2, processes=True)
reading the file chunk by chunk, and reports the client's and each worker's peak RSS.  With
``--in-memory`` it also times the same fit on the frames loaded into this process (2 threads)
and prints the ratio and the largest relative difference of the parameters.  ``--cache`` sets
``emkit.set_config(dask_cache=...)`` (default "auto": the frames are kept on the workers when
they take at most a quarter of the workers' memory, 2 GiB each here, and read from the file at
every pass otherwise).

    python benchmarks/out_of_core.py [--path /tmp/emkit-ooc.h5] [--n 16700000] [--in-memory]
        [--cache auto|memory|disk|off]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import time

import h5py
import numpy as np
from _common import header

import emkit
from emkit import GMMMachine, KMeansMachine
from emkit.io.arrays import hdf5_frames


def write_file(path, n, d, seed=0, rows=1_000_000):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3, size=(256, d)).astype(np.float32)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("frames", shape=(n, d), dtype=np.float32, chunks=(65536, d))
        for start in range(0, n, rows):
            stop = min(n, start + rows)
            block = centres[rng.integers(0, 256, stop - start)] + rng.standard_normal((stop - start, d), np.float32)
            ds[start:stop] = block


def peak_rss_mb() -> float:
    """This process's own peak resident set size (VmHWM: not inherited from a parent process)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def main():
    from distributed import Client, LocalCluster

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", default="/tmp/emkit-ooc.h5")
    parser.add_argument("--n", type=int, default=16_700_000)
    parser.add_argument("--chunk-rows", type=int, default=262_144)
    parser.add_argument("--in-memory", action="store_true")
    parser.add_argument("--cache", default=None)
    args = parser.parse_args()
    if args.cache is not None:
        emkit.set_config(dask_cache=args.cache)
    D = 60
    header(f"out-of-core GMM, N={args.n} D={D} float32 ({args.n * D * 4 / 2**30:.2f} GiB), C=256")
    if not os.path.exists(args.path):
        # in a child process, so that writing the file does not count in this process's peak RSS
        import multiprocessing

        t = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(target=write_file, args=(args.path, args.n, D))
        child.start()
        child.join()
        print(f"   wrote {args.path} in {time.perf_counter() - t:.0f} s")
    print(f"   file size: {os.path.getsize(args.path) / 2**30:.2f} GiB")
    logging.basicConfig(format="   %(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("emkit").setLevel(logging.INFO)
    print(f"   client RSS before the fit: {peak_rss_mb():.0f} MB")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      memory_limit="2GiB", silence_logs=40) as cluster, Client(cluster) as client:
        X = hdf5_frames(args.path, "frames", chunk_rows=args.chunk_rows)
        t = time.perf_counter()
        gmm = make_gmm().fit(X)
        elapsed = time.perf_counter() - t
        workers = client.run(peak_rss_mb)
    print(f"   fit: {elapsed:.0f} s ({gmm.n_iter_} EM iterations), average log-likelihood history "
          f"finite: {np.all(np.isfinite(gmm.means))}")
    print(f"   client peak RSS: {peak_rss_mb():.0f} MB (target < 1024 MB)")
    for address, rss in workers.items():
        print(f"   worker {address} peak RSS: {rss:.0f} MB (target < 1536 MB)")
    if args.in_memory:
        with h5py.File(args.path, "r") as f:
            frames = f["frames"][...]
        t = time.perf_counter()
        ref = make_gmm().fit(frames)
        in_memory = time.perf_counter() - t
        diff = max(float(np.max(np.abs(getattr(gmm, k) - getattr(ref, k)) / np.max(np.abs(getattr(ref, k)))))
                   for k in ("means", "variances", "weights"))
        print(f"   in memory (this process): {in_memory:.1f} s; dask / in memory {elapsed / in_memory:.2f}; "
              f"max relative difference of the parameters {diff:.1e}")


def make_gmm():
    return GMMMachine(256, update_variances=True, update_weights=True, max_fitting_steps=5,
                      convergence_threshold=None,
                      k_means_trainer=KMeansMachine(256, max_iter=5, convergence_threshold=None))


if __name__ == "__main__":
    main()
