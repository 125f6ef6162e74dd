"""Device path against the numpy path, in one run (issue 13 item 5).

For every workload of the issue, with the same data and parameters: the numpy path (this
machine's CPUs), the device path (``emkit.set_config(device=...)``'s namespace) in float64 and
float32, the largest difference to numpy relative to the result's largest magnitude (must be
<= 1e-10 in float64, <= 1e-5 in float32) and the speed-up.  Workloads whose kernels are not
namespace-generic yet are listed as "not ported yet".

  ISV iteration   C=512, D=60, r=100, 2,000 sessions of 200 classes: U step (session posteriors,
                  accumulators, per-Gaussian solves) and D step (class posteriors)
  JFA iteration   same sizes, r_U = r_V = 100: V step (class posteriors), U step, D step
  GMM ML iteration  N=200k, D=60, C=256 and N=1M, D=60, C=1024: E-step statistics on the
                  device (frames resident there, accumulators there), float64 M-step (means,
                  variances, weights) on the host, as GMMMachine.fit with set_config(device=...);
                  the CPU path is emkit's threaded numpy E-step
  GMM streamed    the N=1M iteration with the frames streamed from host memory every iteration
                  (stream_blocks): the share of the iteration that the transfers add
  k-means Lloyd   N=1M, D=60, k=1024: assignment, per-cluster sums and farthest points on the
                  device, new centroids on the host, as KMeansMachine.fit
  PLDA scoring    10,000 x 10,000 LLR matrix, D=200, rank 200 (scores come back as numpy)
  i-vector        T iteration (C=512, D=60, R=400, 2,000 utterances) and projection of 10,000
                  utterances, resident and streamed; ISV/JFA fit iterations through
                  set_config(device=...): see benchmarks/gpu_ivector.py
  transfer        host -> device copy of the session statistics (S, CD), as a share of the ISV
                  iteration (the cost of streaming them from host memory every iteration)
  streamed        the ISV U step with the statistics resident on the device, and streamed from
                  host memory in blocks (pinned buffers, copies overlapping compute): the share of
                  the streamed step that the transfers add

Everything is synthetic; the whole run takes under 5 minutes on one H200 + 16 cores.

    python benchmarks/gpu.py [--device cuda] [--library torch|cupy] [--out DIR]
    python benchmarks/gpu.py --cpu-smoke     # tiny sizes; "device" = array-api-strict (or numpy)
    python benchmarks/gpu.py --cpu-smoke --library torch   # tiny sizes, PyTorch CPU tensors

On a device machine, with a copy of the project's gpu_anchor.py in the git-ignored folder
``.gpu-anchor/`` (``mkdir .gpu-anchor && cp /work/shared/tools/gpu_anchor.py .gpu-anchor/``):

    python benchmarks/gpu.py --out $OUT && \
        PYTHONPATH=src python .gpu-anchor/gpu_anchor.py --part2 --out $OUT
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # gpu_gmm.py, gpu_ivector.py

from emkit._kernels import factor_analysis as kfa  # noqa: E402
from emkit._kernels import plda as kp  # noqa: E402
from gpu_gmm import gmm_rows, kmeans_row  # noqa: E402

NOT_PORTED: list = []  # (workload, kernel module) of workloads without a device path
TOL = {"float64": 1e-10, "float32": 1e-5}
#: The CPU path runs once per workload (seconds each at full size; BLAS is warmed up first).
CPU_REPEAT = 1
RESULTS = {"rows": []}


def log(*a):
    print(*a, flush=True)


class Target:
    """Where the device path runs: ``put`` numpy -> device, ``get`` device -> numpy float64."""

    def __init__(self, args):
        self.sync = lambda: None
        if args.cpu_smoke and args.library == "torch":  # PyTorch's namespace on CPU tensors
            import torch

            from emkit._backend._device import to_numpy

            self.name = f"torch {torch.__version__} on CPU (CPU smoke)"
            self.put = lambda a, dt: torch.from_numpy(np.array(a, dtype=dt))
            self.get = to_numpy
            return
        if args.cpu_smoke:
            try:
                import array_api_strict as xs

                self.name, self.put = "array-api-strict (CPU smoke)", lambda a, dt: xs.asarray(
                    np.asarray(a, dtype=dt))
            except ImportError:
                self.name, self.put = "numpy (CPU smoke)", lambda a, dt: np.asarray(a, dtype=dt)
            from emkit._backend._device import to_numpy

            self.get = to_numpy
            return
        import emkit
        from emkit._backend import _device

        emkit.set_config(device=args.device, array_library=args.library)
        dev = _device.current_device()
        self.name = f"{dev.library} {dev.name}"
        self.put = lambda a, dt: _device.to_device(np.asarray(a, dtype=dt), dev)
        self.get = _device.to_numpy
        self.sync = lambda: _device.synchronize(dev)


def timed(fn, sync, repeat, warm_up=True):
    if warm_up:  # first calls compile/allocate
        fn()
        sync()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        sync()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), out


def rel_diff(ref, got):
    ref, got = np.atleast_1d(ref), np.atleast_1d(got)
    return float(np.abs(ref - got).max() / max(np.abs(ref).max(), 1e-300))


def compare(name, cpu_fn, dev_fn, data, target, repeat, extra=""):
    """Time ``cpu_fn(**numpy data)`` and ``dev_fn(**device data)`` in float64 and float32."""
    t_cpu, ref = timed(lambda: cpu_fn(**data), lambda: None, CPU_REPEAT, warm_up=False)
    row = {"workload": name, "cpu_s": t_cpu}
    log(f"\n{name}{extra}\n  numpy (CPU) {t_cpu * 1e3:10.1f} ms")
    for dt in ("float64", "float32"):
        dev_data = {k: (target.put(v, dt) if isinstance(v, np.ndarray) and v.dtype.kind == "f"
                        else (target.put(v, v.dtype) if isinstance(v, np.ndarray) else v))
                    for k, v in data.items()}
        try:
            t_dev, out = timed(lambda: dev_fn(**dev_data), target.sync, repeat)
        except Exception as exc:  # report and go on: the other rows are still worth having
            log(f"  {dt}: FAILED {type(exc).__name__}: {exc}")
            row[dt] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        outs = out if isinstance(out, tuple) else (out,)
        refs = ref if isinstance(ref, tuple) else (ref,)
        diff = max(rel_diff(r, target.get(o)) for r, o in zip(refs, outs))
        ok = diff <= TOL[dt]
        row[dt] = {"s": t_dev, "speedup": t_cpu / t_dev, "rel_diff": diff, "ok": ok}
        log(f"  {target.name} {dt:7s} {t_dev * 1e3:10.2f} ms  {t_cpu / t_dev:7.1f}x   "
            f"max rel diff {diff:.1e} ({'ok' if ok else 'ABOVE ' + str(TOL[dt])})")
    RESULTS["rows"].append(row)
    return row


# ------------------------------------------------------------------------- ISV / JFA problems
def fa_problem(C, D, r, S, K, seed=0):
    rng = np.random.default_rng(seed)
    var = rng.uniform(0.5, 1.5, size=(C, D))
    n = rng.gamma(2.0, 200.0 / (2 * C) * 4, size=(S, C))  # occupancies of ~200-frame sessions
    centred = rng.normal(size=(S, C * D)) * np.sqrt(n).repeat(D, axis=1)
    codes = np.sort(rng.integers(0, K, S))
    U = rng.normal(scale=0.1, size=(C * D, r))
    V = rng.normal(scale=0.1, size=(C * D, r))
    d = rng.uniform(0.05, 0.2, C * D)
    return dict(n=n, centred=centred, codes=codes, U=U, V=V, d=d, var=var)


def _subspace_step(n, centred, W, var):
    """E-step of one subspace over rows of statistics and its M-step: the new W."""
    wprod = kfa.subspace_products(W, var)
    W_over_var = W / kfa._xp.namespace(W, var).reshape(var, (-1,))[:, None]
    mean, cov = kfa.latent_posterior(n, centred, W_over_var, wprod)
    A1, A2 = kfa.accumulate_subspace(n, centred, mean, cov)
    return kfa.update_subspace(A1, A2, W), mean


def _d_step(n, centred, codes, K, d, var):
    D = var.shape[1]
    xp = kfa._xp.namespace(n, centred)
    N_class = kfa.group_sum(codes, n, K)
    F_class = kfa.group_sum(codes, centred, K)
    N_sv = xp.reshape(xp.broadcast_to(N_class[:, :, None], N_class.shape + (D,)), (K, -1))
    z, _ = kfa.diagonal_posterior(N_sv, F_class, d, xp.reshape(var, (-1,)))
    return z


def isv_iteration(n, centred, codes, U, d, var, K):
    U_new, _ = _subspace_step(n, centred, U, var)
    return U_new, _d_step(n, centred, codes, K, d, var)


def jfa_iteration(n, centred, codes, U, V, d, var, K):
    N_class = kfa.group_sum(codes, n, K)
    F_class = kfa.group_sum(codes, centred, K)
    V_new, _ = _subspace_step(N_class, F_class, V, var)
    U_new, _ = _subspace_step(n, centred, U, var)
    return V_new, U_new, _d_step(n, centred, codes, K, d, var)


def u_step(n, centred, U, var):
    return _subspace_step(n, centred, U, var)[0]


def u_step_streamed(n, centred, U, var, dev, block_rows):
    """The U step with the session statistics left in host memory and streamed to ``dev`` in
    blocks (pinned buffers, copies on a side stream overlapping the compute); parameters and
    accumulators stay on the device."""
    from emkit._backend._device import stream_blocks

    xp = kfa._xp.namespace(U, var)
    wprod = kfa.subspace_products(U, var)
    W_over_var = U / xp.reshape(var, (-1,))[:, None]
    A1 = A2 = None
    for nb, cb in zip(stream_blocks(n, dev, block_rows, n.dtype),
                      stream_blocks(centred, dev, block_rows, centred.dtype)):
        mean, cov = kfa.latent_posterior(nb, cb, W_over_var, wprod)
        a1, a2 = kfa.accumulate_subspace(nb, cb, mean, cov)
        A1, A2 = (a1, a2) if A1 is None else (A1 + a1, A2 + a2)
    return kfa.update_subspace(A1, A2, U)


def streamed_row(fa, target, args, block_rows):
    """ISV U step: statistics resident on the device against streamed from host memory."""
    from emkit._backend._device import CPU, current_device

    dev = CPU if args.cpu_smoke else current_device()
    put = (lambda a, dt: np.asarray(a, dtype=dt)) if dev.is_cpu else target.put
    data = {k: fa[k] for k in ("n", "centred", "U", "var")}
    t_cpu, ref = timed(lambda: u_step(**data), lambda: None, CPU_REPEAT, warm_up=False)
    row = {"workload": "ISV U step, resident vs streamed", "cpu_s": t_cpu}
    log(f"\nISV U step: statistics resident on the device vs streamed from host memory "
        f"({block_rows} sessions per block)\n  numpy (CPU) {t_cpu * 1e3:10.1f} ms")
    for dt in ("float64", "float32"):
        host = {"n": fa["n"].astype(dt), "centred": fa["centred"].astype(dt)}
        params = {"U": put(fa["U"], dt), "var": put(fa["var"], dt)}
        resident = {k: put(v, dt) for k, v in host.items()}
        t_res, _ = timed(lambda: u_step(**resident, **params), target.sync, args.repeat)
        t_str, out = timed(lambda: u_step_streamed(**host, **params, dev=dev,
                                                   block_rows=block_rows), target.sync, args.repeat)
        diff = rel_diff(ref, target.get(out) if not dev.is_cpu else out)
        share = max(t_str - t_res, 0.0) / t_str
        ok = diff <= TOL[dt]
        row[dt] = {"resident_s": t_res, "streamed_s": t_str, "transfer_share": share,
                   "rel_diff": diff, "ok": ok}
        log(f"  {dt:7s} resident {t_res * 1e3:9.2f} ms  streamed {t_str * 1e3:9.2f} ms  "
            f"(transfers not hidden: {share:.0%} of the streamed step)  max rel diff "
            f"{diff:.1e} ({'ok' if ok else 'ABOVE ' + str(TOL[dt])})")
    RESULTS["rows"].append(row)


# ------------------------------------------------------------------------- PLDA
def plda_problem(M, P, D, seed=0):
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(D, D)) / np.sqrt(D)
    A = rng.normal(size=(D, 2 * D)) / np.sqrt(2 * D)
    W = A @ A.T + 0.1 * np.eye(D)
    proj, lam = kp.scoring_basis(F, W)
    return dict(uE=rng.normal(size=(M, D)) @ proj, nE=np.ones(M),
                uP=rng.normal(size=(P, D)) @ proj, nP=np.ones(P), lam=lam)


def plda_scores(uE, nE, uP, nP, lam):
    M, P = uE.shape[0], uP.shape[0]
    return kp.llr_matrix(uE, nE, uP, nP, lam, np.empty((M, P)), max(1, (1 << 24) // P))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--library", default=None, choices=[None, "torch", "cupy"])
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny sizes, no device needed")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=os.environ.get("OUT"))
    args = ap.parse_args(argv)
    if args.out:  # made (or refused) now, not after the minutes of measuring
        os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    target = Target(args)
    import threadpoolctl

    log(f"device path: {target.name}; numpy {np.__version__}, {os.cpu_count()} CPUs, BLAS "
        f"{[i.get('internal_api') for i in threadpoolctl.threadpool_info()]}")
    RESULTS["device"] = target.name
    a = np.ones((256, 256) if args.cpu_smoke else (2048, 2048))
    for _ in range(2):  # the first products of a process are slower: warm BLAS up
        a @ a
    del a
    if args.cpu_smoke:
        C, D, r, S, K, M, P, PD = 8, 4, 5, 60, 12, 50, 40, 10
    else:
        C, D, r, S, K, M, P, PD = 512, 60, 100, 2000, 200, 10_000, 10_000, 200
    fa = fa_problem(C, D, r, S, K)
    isv = {k: fa[k] for k in ("n", "centred", "codes", "U", "d", "var")}
    compare("ISV iteration", lambda **a: isv_iteration(K=K, **a),
            lambda **a: isv_iteration(K=K, **a), isv, target, args.repeat,
            f" (C={C}, D={D}, r={r}, {S} sessions, {K} classes)")
    compare("JFA iteration", lambda **a: jfa_iteration(K=K, **a),
            lambda **a: jfa_iteration(K=K, **a), fa, target, args.repeat,
            f" (C={C}, D={D}, r_U=r_V={r}, {S} sessions, {K} classes)")
    # streaming the session statistics from host memory, against the ISV iteration on device
    t_copy, _ = timed(lambda: target.put(fa["centred"], "float64"), target.sync, args.repeat)
    isv_dev = RESULTS["rows"][0].get("float64", {}).get("s")
    share = t_copy / (t_copy + isv_dev) if isv_dev else float("nan")
    log(f"\ntransfer of the session statistics ({fa['centred'].nbytes / 2**20:.0f} MB, plain "
        f"copy): {t_copy * 1e3:.1f} ms = {share:.0%} of an ISV iteration streamed from host")
    RESULTS["transfer"] = {"bytes": fa["centred"].nbytes, "s": t_copy, "share_of_isv": share}
    streamed_row(fa, target, args, block_rows=10 if args.cpu_smoke else 250)
    del fa, isv
    bench = SimpleNamespace(compare=compare, timed=timed, rel_diff=rel_diff, log=log,
                            RESULTS=RESULTS, TOL=TOL, CPU_REPEAT=CPU_REPEAT)
    gmm_rows(bench, target, args)
    kmeans_row(bench, target, args)
    compare("PLDA scoring", plda_scores, plda_scores, plda_problem(M, P, PD), target, args.repeat,
            f" ({M} x {P} LLR matrix, D={PD})")
    # -- i-vector and ISV/JFA-estimator rows (branch gpu-ivector): benchmarks/gpu_ivector.py
    import types

    import gpu_ivector

    helpers = types.SimpleNamespace(**globals())  # timed, log, rel_diff, TOL, RESULTS, ...
    gpu_ivector.ivector_rows(helpers, target, args)
    gpu_ivector.fa_estimator_rows(helpers, target, args)
    # -- end of the gpu-ivector rows
    if NOT_PORTED:
        log("\nnot ported yet (numpy only; device path to come):")
    for name, where in NOT_PORTED:
        log(f"  {name}: {where}")
    RESULTS["not_ported"] = [n for n, _ in NOT_PORTED]
    RESULTS["wall_s"] = time.perf_counter() - start
    log(f"\ntotal {RESULTS['wall_s']:.1f} s")
    if args.out:
        with open(os.path.join(args.out, "gpu_bench.json"), "w") as fh:
            json.dump(RESULTS, fh, indent=1, default=float)
    bad = [r["workload"] for r in RESULTS["rows"]
           for dt in TOL if not r.get(dt, {}).get("ok", False)]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
