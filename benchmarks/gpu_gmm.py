"""The GMM and k-means rows of ``benchmarks/gpu.py`` (issue 13): one EM iteration of
``GMMMachine.fit`` (ML: means, variances, weights) and one Lloyd iteration of
``KMeansMachine.fit``, numpy path against the device path, same data and start.

The device path is the estimators' (``emkit._device_fit``): frames resident on the device (or
streamed from host memory), parameters, E-step constants, accumulators and the float64 M-step
on the device, the log-likelihood read back once per iteration.  The CPU path is emkit's
threaded numpy E-step (``map_reduce`` over row pieces) and the numpy M-step.
"""

from __future__ import annotations

import numpy as np

from emkit._gmm_estep import total_stats
from emkit._gmm_mstep import EPSILON, ml_m_step
from emkit._kernels import _xp, gmm_xp, kmeans_xp
from emkit._kernels import gmm as kg
from emkit._kernels import kmeans as kk
from emkit._kmeans_stats import KMeansStats, kmeans_chunk_stats
from emkit._backend import map_reduce


def mixture_data(N, D, C, seed=0, scale=3.0):
    """Frames of C diagonal Gaussians of unit variance whose centres are spread by ``scale``,
    and a start near the centres.  k-means uses well-separated clusters (float32 rounding never
    moves a frame to another cluster), the GMM overlapping ones (normalised features)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=scale, size=(C, D))
    X = centres[rng.integers(0, C, N)] + rng.normal(size=(N, D))
    start = centres + rng.normal(scale=0.1, size=(C, D))
    return X, start


def _m_step(stats, means):
    """The numpy path's ML M-step (of ``GMMMachine.fit``: variance floor 0 here, as on the
    device below)."""
    shift, px, pxx = stats.centred_moments(second_order=True)
    new = ml_m_step({"means": means, "thresholds": np.asarray(0.0)}, np.asarray(stats.n),
                    stats.t, shift, px, pxx, np, update_means=True, update_variances=True,
                    update_weights=True, threshold=EPSILON)
    return new["means"], new["variances"], new["weights"]


def gmm_cpu(X, params, dtype="float64"):
    means, variances, weights = params
    coef = kg.DiagGMMCoefficients.from_parameters(means, variances, np.log(weights),
                                                  np.dtype(dtype))
    return _m_step(total_stats(X, coef, True), means)


_ON_DEVICE: dict = {}  # the starting parameters on the device, once per (params, device)


def _device_params(params, like, xp):
    key = (id(params), str(_xp.device_of(like)), _xp.library(xp))
    if key not in _ON_DEVICE:
        means, variances, weights = (_xp.asarray_like(a, like, xp, dtype=xp.float64)
                                     for a in params)
        _ON_DEVICE[key] = dict(means=means, variances=variances, weights=weights,
                               thresholds=_xp.asarray_like(0.0, like, xp, dtype=xp.float64))
    return _ON_DEVICE[key]


def gmm_blocks_iteration(blocks, like, params, dtype, n_frames):
    """One ML iteration from row blocks of the device, as ``GMMMachine.fit`` on a device
    (``emkit._device_fit.DeviceGMM``): parameters resident there, E-step constants, statistics
    and the float64 M-step (:mod:`emkit._gmm_mstep`) there, the log-likelihood read back."""
    xp = _xp.namespace(like)
    p = _device_params(params, like, xp)
    shift, coef = gmm_xp.coefficients(p["means"], p["variances"], xp.log(p["weights"]),
                                      getattr(xp, dtype))
    total, acc = gmm_xp.accumulate_blocks(blocks, xp.astype(shift, coef.dtype), coef, True, xp)
    n, px, pxx = gmm_xp.split_statistics(acc, shift.shape[0], True)
    new = ml_m_step(p, n, n_frames, shift, px, pxx, xp, update_means=True,
                    update_variances=True, update_weights=True, threshold=EPSILON)
    float(total)  # the one read-back of an iteration (the convergence test)
    return new["means"], new["variances"], new["weights"]


def gmm_device(X, p):
    params = p
    dtype = "float32" if X.dtype == _xp.namespace(X).float32 else "float64"
    rows = gmm_xp.device_block_rows(params[0].shape[0], 4 if dtype == "float32" else 8)
    N = X.shape[0]
    blocks = (X[i:min(i + rows, N), ...] for i in range(0, N, rows))
    return gmm_blocks_iteration(blocks, X, params, dtype, N)


def gmm_rows(bench, target, args):
    sizes = [(5000, 32, 8), (6000, 32, 16)] if args.cpu_smoke else [(200_000, 60, 256),
                                                                   (1_000_000, 60, 1024)]
    for k, (N, D, C) in enumerate(sizes):
        X, start = mixture_data(N, D, C, seed=k, scale=1.0)
        params = (start, np.ones((C, D)), np.full(C, 1.0 / C))
        bench.compare(f"GMM ML iteration, N={N}, D={D}, C={C}", lambda X, p: gmm_cpu(X, p),
                      gmm_device, {"X": X, "p": params}, target, args.repeat,
                      " (frames resident on the device)")
    gmm_streamed_row(bench, target, args, X, params)


def gmm_streamed_row(bench, target, args, X, params):
    """The last GMM row with the frames streamed from host memory (pinned buffers, copies on a
    side stream) against resident: the share of the iteration the transfers add."""
    from emkit._backend._device import CPU, STREAM_STATS, current_device, stream_blocks

    dev = CPU if args.cpu_smoke else current_device()
    if args.cpu_smoke and args.library == "torch":  # the staging code on PyTorch CPU tensors
        import torch
        from array_api_compat import torch as xp_torch

        from emkit._backend._device import Device

        dev = Device("torch", xp_torch, torch.device("cpu"), "cpu (smoke)")
    N, D = X.shape
    C = params[0].shape[0]
    t_cpu, ref = bench.timed(lambda: gmm_cpu(X, params), lambda: None, bench.CPU_REPEAT,
                             warm_up=False)
    row = {"workload": "GMM ML iteration, resident vs streamed", "cpu_s": t_cpu}
    bench.log(f"\nGMM ML iteration (N={N}, C={C}): frames resident on the device vs streamed "
              f"from host memory\n  numpy (CPU) {t_cpu * 1e3:10.1f} ms")
    for dt in ("float64", "float32"):
        host = X.astype(dt)
        resident = host if dev.is_cpu else target.put(host, dt)
        like = resident
        rows = gmm_xp.device_block_rows(C, np.dtype(dt).itemsize)
        t_res, _ = bench.timed(lambda: gmm_device(resident, params), target.sync, args.repeat)
        before = dict(STREAM_STATS)
        t_str, out = bench.timed(lambda: gmm_blocks_iteration(
            stream_blocks(host, dev, rows, dt), like, params, dt, N), target.sync, args.repeat)
        calls = args.repeat + 1  # the warm-up call streams too
        staged = {k: (STREAM_STATS[k] - before.get(k, 0)) / calls for k in ("fill_s", "wait_s")}
        diff = max(bench.rel_diff(r, target.get(o)) for r, o in zip(ref, out))
        share = max(t_str - t_res, 0.0) / t_str
        ok = diff <= bench.TOL[dt]
        row[dt] = {"resident_s": t_res, "streamed_s": t_str, "transfer_share": share,
                   "host_staging_s": staged["fill_s"], "copy_wait_s": staged["wait_s"],
                   "bytes": host.nbytes, "rel_diff": diff, "ok": ok}
        bench.log(f"  {dt:7s} resident {t_res * 1e3:9.2f} ms  streamed {t_str * 1e3:9.2f} ms  "
                  f"(transfers not hidden: {share:.0%} of the streamed iteration; per iteration "
                  f"{host.nbytes / 2**20:.0f} MB staged, host reads into the staging buffers "
                  f"{staged['fill_s'] * 1e3:.1f} ms, waits for copies "
                  f"{staged['wait_s'] * 1e3:.1f} ms)  max rel diff "
                  f"{diff:.1e} ({'ok' if ok else 'ABOVE ' + str(bench.TOL[dt])})")
    bench.RESULTS["rows"].append(row)


def kmeans_cpu(X, centroids):
    coef = kk.CentroidCoefficients.from_centroids(centroids)
    stats = map_reduce(kmeans_chunk_stats, X, coef, kk.DEFAULT_BLOCK_ROWS, False)
    return stats.centroids(), np.array([stats.sum_min_dist / stats.n_samples])


def kmeans_device(X, centroids):
    from emkit._backend._device import to_numpy

    xp = _xp.namespace(X)
    dtype = np.float32 if X.dtype == xp.float32 else np.float64
    coef = kk.CentroidCoefficients.from_centroids(centroids, dtype=dtype)
    arrays = kmeans_xp.CentroidArrays.from_coefficients(
        coef, lambda a: _xp.asarray_like(a, X, xp))
    K, N = coef.n_clusters, X.shape[0]
    rows = gmm_xp.device_block_rows(K, np.dtype(dtype).itemsize)
    acc = kmeans_xp.LloydAccumulator(arrays, n_far=K)
    for i in range(0, N, rows):
        acc.add(X[i:min(i + rows, N), ...])
    stats = KMeansStats(np.rint(to_numpy(acc.counts)).astype(np.int64), to_numpy(acc.sums),
                        float(acc.sum_min_dist), N, None, to_numpy(acc.far_points),
                        to_numpy(acc.far_dists), coef)
    return stats.centroids(), np.array([stats.sum_min_dist / N])


def kmeans_row(bench, target, args):
    N, D, K = (4000, 4, 16) if args.cpu_smoke else (1_000_000, 60, 1024)
    X, start = mixture_data(N, D, K, seed=7)
    bench.compare(f"k-means Lloyd iteration, N={N}, D={D}, k={K}", kmeans_cpu,
                  lambda X, centroids: kmeans_device(X, _np(centroids)),
                  {"X": X, "centroids": start}, target, args.repeat,
                  " (frames resident on the device)")


def _np(a):
    from emkit._backend._device import to_numpy

    return to_numpy(a)
