"""Training on dask.distributed from files against the same training in memory.

ISV, JFA and i-vector training from a directory of per-utterance ``.npy`` features (the bag of
:func:`emkit.io.arrays.directory_statistics`), and UBM EM iterations from an HDF5 file
(:func:`emkit.io.arrays.hdf5_frames`), on a LocalCluster of 2 single-threaded worker processes,
against the in-memory fit on 2 threads.  Prints the times, the ratios and the largest relative
difference of the trained parameters.

Two in-memory times are given: "fit" (the statistics already in a list) and "end to end" (the
files loaded and their statistics computed in the process, then fit): the dask fit computes the
statistics from the files, so it is compared with the second.

    python benchmarks/dask_training.py [--files 200 --frames 1000 --C 256 --D 40]
        [--cache auto|memory|disk|off] [--ubm-n 1000000] [--preset larger]

The default sizes are small (an in-memory ISV fit takes 0.35 s: dask's per-pass latency, about
10 ms per round trip on 2 cores, weighs most there); ``--preset larger`` trains on 1000
utterances of 500 frames with C=512, D=60, r_U=100, r_V=50, dim_t=200, 100 speakers, 5
iterations (its feature files take 240 MB of temporary disk).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import h5py
import numpy as np
from _common import header, interleaved

import emkit
from emkit import GMMMachine, IVectorMachine
from emkit.factor_analysis import ISVMachine, JFAMachine
from emkit.io.arrays import directory_statistics, hdf5_frames


def max_rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def make_ubm(C, D, rng):
    ubm = GMMMachine(C)
    ubm.means = rng.normal(scale=2, size=(C, D))
    ubm.variances = rng.uniform(0.5, 2.0, size=(C, D))
    ubm.weights = np.full(C, 1.0 / C)
    return ubm


def write_features(directory, n_files, n_frames, D, rng):
    centres = rng.normal(scale=2, size=(64, D))
    for i in range(n_files):
        x = centres[rng.integers(0, 64, n_frames)] + rng.normal(size=(n_frames, D))
        np.save(os.path.join(directory, f"utt{i:05d}.npy"), x)


def load_stats(ubm, directory, n_files):
    from emkit.io.numpy_files import read_npy

    feats = [read_npy(os.path.join(directory, f"utt{i:05d}.npy")) for i in range(n_files)]
    return ubm.transform(feats)


def params_of(m):
    if isinstance(m, IVectorMachine):
        return [m.T, m.sigma]
    if isinstance(m, JFAMachine):
        return [m.U, m.V, m.D]
    return [m.U, m.D]


def main():
    from distributed import Client, LocalCluster

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=200)
    p.add_argument("--frames", type=int, default=1000)
    p.add_argument("--C", type=int, default=256)
    p.add_argument("--D", type=int, default=40)
    p.add_argument("--speakers", type=int, default=20)
    p.add_argument("--r", type=int, default=50, help="r_U")
    p.add_argument("--r-v", type=int, default=10, help="r_V (JFA; below the number of speakers)")
    p.add_argument("--dim-t", type=int, default=100)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--ubm-n", type=int, default=1_000_000)
    p.add_argument("--ubm-C", type=int, default=128)
    p.add_argument("--ubm-iterations", type=int, default=5)
    p.add_argument("--chunk-rows", type=int, default=262_144)
    p.add_argument("--cache", default=None, help="emkit.set_config(dask_cache=...)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", default="isv,jfa,ivector,ubm")
    p.add_argument("--preset", choices=["larger"], default=None,
                   help="larger sizes (overrides the size options; see the module docstring)")
    args = p.parse_args()
    if args.preset == "larger":
        for name, value in dict(files=1000, frames=500, C=512, D=60, r=100, r_v=50, speakers=100,
                                dim_t=200, iterations=5).items():
            setattr(args, name, value)
    only = set(args.only.split(","))
    if args.cache is not None:
        emkit.set_config(dask_cache=args.cache)
    header(f"dask training from files: {args.files} files x {args.frames} frames, C={args.C} "
           f"D={args.D}, r_U={args.r} r_V={args.r_v}, dim_t={args.dim_t}, {args.iterations} iterations; UBM from "
           f"HDF5 N={args.ubm_n} D=60 float32 C={args.ubm_C}, {args.ubm_iterations} iterations")
    print(f"   load average {os.getloadavg()}, emkit config {emkit.get_config()}")
    rng = np.random.default_rng(0)
    ubm = make_ubm(args.C, args.D, rng)
    labels = [f"spk{i % args.speakers:03d}" for i in range(args.files)]
    estimators = {
        "isv": lambda: ISVMachine(args.r, em_iterations=args.iterations, ubm=ubm),
        "jfa": lambda: JFAMachine(args.r, args.r_v, em_iterations=args.iterations, ubm=ubm),
        "ivector": lambda: IVectorMachine(ubm, dim_t=args.dim_t, max_iterations=args.iterations,
                                          random_state=0),
    }
    with tempfile.TemporaryDirectory() as tmp:
        feats = os.path.join(tmp, "feats")
        os.mkdir(feats)
        write_features(feats, args.files, args.frames, args.D, rng)
        h5 = os.path.join(tmp, "frames.h5")
        if "ubm" in only:
            with h5py.File(h5, "w") as f:
                f.create_dataset("frames", data=rng.normal(size=(args.ubm_n, 60)).astype(np.float32)
                                 + rng.normal(scale=2, size=(1, 60)).astype(np.float32),
                                 chunks=(65536, 60))
        stats = load_stats(ubm, feats, args.files)
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                          silence_logs=40) as cluster, Client(cluster):
            # the three timings alternate (best of --repeat each): a machine whose speed drifts
            # (other jobs) moves them together
            for name in [n for n in estimators if n in only]:
                y = None if name == "ivector" else labels

                def fit_dask():
                    bag, _ = directory_statistics(ubm, feats, npartitions=16)
                    return estimators[name]().fit(bag, y)

                (t_stats, _), (t_mem, ref), (t, m) = interleaved(
                    [lambda: load_stats(ubm, feats, args.files),
                     lambda: estimators[name]().fit(stats, y), fit_dask], args.repeat)
                diff = max(max_rel(a, b) for a, b in zip(params_of(m), params_of(ref)))
                print(f"   {name:8s} in memory: statistics {t_stats:5.2f} s + fit {t_mem:5.2f} s = "
                      f"{t_mem + t_stats:5.2f} s; dask {t:6.2f} s: ratio {t / (t_mem + t_stats):5.2f}"
                      f" (end to end), {t / t_mem:5.2f} (fit); max rel diff {diff:.1e}")
            if "ubm" in only:
                frames = h5py.File(h5, "r")["frames"][...]
                ubm0 = make_ubm(args.ubm_C, 60, np.random.default_rng(1))
                # means on frames (random means far from these frames left Gaussians without
                # data, collapsed at the variance floor)
                ubm0.means = frames[np.random.default_rng(1).choice(len(frames), args.ubm_C,
                                                                    replace=False)]

                def gmm():
                    g = GMMMachine(args.ubm_C, update_variances=True, update_weights=True,
                                   max_fitting_steps=args.ubm_iterations, convergence_threshold=None)
                    g.means, g.variances, g.weights = ubm0.means, ubm0.variances, ubm0.weights
                    return g

                (t_mem, ref), (t, g) = interleaved(
                    [lambda: gmm().fit(frames),
                     lambda: gmm().fit(hdf5_frames(h5, "frames", chunk_rows=args.chunk_rows))],
                    args.repeat)
                diff = max(max_rel(getattr(g, k), getattr(ref, k)) for k in ("means", "variances", "weights"))
                print(f"   ubm      in memory fit {t_mem:6.2f} s; dask from HDF5 {t:6.2f} s: ratio "
                      f"{t / t_mem:5.2f}; max rel diff {diff:.1e}")


if __name__ == "__main__":
    main()
