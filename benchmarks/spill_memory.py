"""Peak memory of dask workers training an i-vector machine (or ISV, JFA) on spilled statistics.

Synthetic per-utterance statistics are made on the workers of a LocalCluster (2 single-threaded
worker processes), ``fit`` runs with ``dask_cache="disk"`` (statistics spilled, the centred
batches derived from them spilled again, every pass reading those), and each worker's peak
resident memory during ``fit`` (Linux ``VmHWM``, reset before ``fit``) is printed above its
resident memory before ``fit``, in MB and as a multiple of the statistics that worker holds (a
spilled group).  The trained T and sigma are compared with the in-memory fit of the same
statistics.  ``--pairs``: ISV/JFA train on a bag of (label, GMMStats) pairs (``fit(X, None)``)
instead of a bag of statistics and their labels.

    python benchmarks/spill_memory.py [--utterances 1600 --C 256 --D 60 --partitions 16]
    python benchmarks/spill_memory.py --model isv --pairs
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np


def make_stats(seed: int, n: int, C: int, D: int) -> list:
    from emkit import GMMStats

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        occupancy = rng.gamma(2.0, 2.0, size=C)
        first = rng.normal(size=(C, D)) * occupancy[:, None]
        second = (rng.normal(size=(C, D)) ** 2 + 1.0) * occupancy[:, None]
        out.append(GMMStats.from_arrays(occupancy, first, second, t=int(occupancy.sum())))
    return out


def make_pairs(seed: int, n: int, C: int, D: int, labels: list) -> list:
    return list(zip(labels, make_stats(seed, n, C, D)))


def _warm_up() -> None:
    import h5py  # noqa: F401 (the modules a fit imports, loaded before the peak is reset)

    import emkit.factor_analysis  # noqa: F401
    import emkit.ivector  # noqa: F401


def _reset_peak() -> int:
    with open("/proc/self/clear_refs", "w") as f:  # "5": reset the peak resident size
        f.write("5")
    return _status("VmRSS")


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _peak() -> int:
    return _status("VmHWM")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=1600)
    parser.add_argument("--C", type=int, default=256)
    parser.add_argument("--D", type=int, default=60)
    parser.add_argument("--dim-t", type=int, default=10)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="utterances per E-step batch (default: the machine's own)")
    parser.add_argument("--model", choices=("ivector", "isv", "jfa"), default="ivector")
    parser.add_argument("--rank", type=int, default=10, help="r_U (and r_V) of ISV/JFA")
    parser.add_argument("--classes", type=int, default=40, help="speakers of ISV/JFA")
    parser.add_argument("--pairs", action="store_true",
                        help="ISV/JFA: a bag of (label, GMMStats) pairs, fit(X, None)")
    args = parser.parse_args()

    import distributed

    import emkit
    from emkit import GMMMachine, IVectorMachine
    from emkit.factor_analysis import ISVMachine, JFAMachine
    from emkit._backend import bag_from_parts
    from emkit._kernels.ivector import default_batch_size

    C, D, n_parts = args.C, args.D, args.partitions
    per_part = args.utterances // n_parts
    rng = np.random.default_rng(0)
    ubm = GMMMachine(C)
    ubm.means, ubm.variances = rng.normal(size=(C, D)), np.full((C, D), 1.5)
    ubm.weights = np.full(C, 1.0 / C)
    parts = [(i, per_part, C, D) for i in range(n_parts)]
    bytes_per_worker = args.utterances * (2 * C * D + C) * 8 / 2
    batch_size = args.batch_size or default_batch_size(C, D, args.dim_t)

    labels = [f"spk{i % args.classes}" for i in range(per_part * n_parts)]
    names = {"ivector": ("T", "sigma"), "isv": ("U", "D"), "jfa": ("U", "V", "D")}[args.model]

    if args.pairs and args.model == "ivector":
        parser.error("--pairs: ISV or JFA (--model isv or jfa)")

    def fit(X, y=labels):
        if args.model == "isv":
            return ISVMachine(args.rank, em_iterations=args.iterations, ubm=ubm).fit(X, y)
        if args.model == "jfa":
            return JFAMachine(args.rank, args.rank, em_iterations=args.iterations,
                              ubm=ubm).fit(X, y)
        return IVectorMachine(ubm, dim_t=args.dim_t, max_iterations=args.iterations,
                              random_state=0, batch_size=args.batch_size).fit(X)

    reference = fit([s for p in parts for s in make_stats(*p)])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="6GiB",
                                  dashboard_address=":0", silence_logs=40) as cluster, \
            distributed.Client(cluster) as client, tempfile.TemporaryDirectory() as spill:
        with emkit.config_context(dask_cache="disk", spill_directory=spill):
            client.run(_warm_up)
            before = client.run(_reset_peak)
            if args.pairs:
                labelled = [(*p, labels[i * per_part : (i + 1) * per_part])
                            for i, p in enumerate(parts)]
                got = fit(bag_from_parts(make_pairs, labelled), None)
            else:
                got = fit(bag_from_parts(make_stats, parts))
            peaks = client.run(_peak)
    what = (f"E-step batches of {batch_size} utterances" if args.model == "ivector" else
            f"{args.model}, rank {args.rank}, {args.classes} classes"
            + (", (label, GMMStats) pairs" if args.pairs else ""))
    print(f"{args.utterances} utterances, C={C}, D={D}, {n_parts} partitions, {what}: "
          f"{bytes_per_worker / 2**20:.0f} MB of statistics per worker")
    for worker in sorted(peaks):
        extra = peaks[worker] - before[worker]
        print(f"  {worker}: RSS {before[worker] / 2**20:.0f} MB before fit, peak "
              f"+{extra / 2**20:.0f} MB ({extra / bytes_per_worker:.2f}x its statistics)")
    for name in names:
        a, b = getattr(got, name), getattr(reference, name)
        print(f"  {name}: max relative difference to in memory "
              f"{np.max(np.abs(a - b)) / np.max(np.abs(b)):.1e}")


if __name__ == "__main__":
    main()
