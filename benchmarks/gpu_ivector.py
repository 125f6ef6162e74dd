"""The i-vector and ISV/JFA-estimator rows of benchmarks/gpu.py (branch gpu-ivector).

  i-vector T iteration   C=512, D=60, R=400, 2,000 utterances: E-step (posteriors, accumulators)
                         and M-step (T, sigma); the CPU path is the estimator's (numpy kernels on
                         this machine's threads, statistics centred once), the device path
                         ``_kernels/ivector_xp.py`` with the statistics resident on the device,
                         then streamed from host memory (share of the streamed iteration that the
                         transfers add)
  i-vector projection    10,000 utterances, C=512, D=60, R=400: resident, then streamed
  ISV / JFA fit          ``ISVMachine`` / ``JFAMachine`` through ``emkit.set_config(device=...)``
                         against the CPU estimator (C=512, D=60, r=100, 2,000 sessions of 200
                         classes): time of one more EM iteration (fit with 2 minus fit with 1),
                         U/V/D compared; float64 only (the estimators' dtype); not in CPU smoke

Called by benchmarks/gpu.py's ``main`` with the module itself (``compare``, ``timed``, ``log``,
``rel_diff``, ``TOL``, ``RESULTS``, ``CPU_REPEAT``).
"""

from __future__ import annotations

import time

import numpy as np

from emkit._kernels import ivector as kiv
from emkit._kernels import ivector_xp as kx


def ivector_problem(C, D, R, S, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(C, D))
    sigma = rng.uniform(0.5, 1.5, size=(C, D))
    T = rng.normal(scale=0.3, size=(C, D, R))
    n = rng.gamma(2.0, 200.0 / (2 * C) * 4, size=(S, C))  # occupancies of ~200-frame utterances
    fnorm = rng.normal(size=(S, C, D)) * np.sqrt(n)[:, :, None]
    snorm = n.sum(axis=0)[:, None] * sigma * rng.uniform(0.8, 1.2, size=(C, D))
    return dict(n=n, fnorm=fnorm, snorm=snorm, means=means, T=T, sigma=sigma)


def _cpu_iteration(batches, pre_args, snorm, sigma, batch):
    """The CPU estimator's iteration: constants, threaded E-step over the centred batches,
    M-step (kernels of ``_kernels/ivector.py`` through ``ivector/_training.py``)."""
    from emkit._backend import n_threads, small_products
    from emkit.ivector._training import _accumulate, _parallel_map

    with small_products():
        pre = kiv.Precomputed.from_parameters(*pre_args, _parallel_map, n_threads())
        acc = _accumulate(batches, pre, batch, "X")
        return kiv.m_step(acc.nij_sigma_wij2, acc.fnorm_sigma_wij, snorm, acc.nij, sigma, True,
                          1e-10, parallel_map=_parallel_map, n_pieces=n_threads())


def _device_iteration(blocks, means, T, sigma, snorm, C, D):
    pre = kx.constants(means, T, sigma)
    acc = kx.Accumulators.zeros(pre)
    xp = kx._xp.namespace(means)
    for block in blocks:
        acc.add(block[:, :C], xp.reshape(block[:, C:], (block.shape[0], C, D)), pre)
    return kx.m_step(acc.nij_sigma_wij2, acc.fnorm_sigma_wij, snorm, acc.nij, sigma, True, 1e-10)


def _resident_blocks(Z, batch):
    return [Z[i:min(i + batch, Z.shape[0]), :] for i in range(0, Z.shape[0], batch)]


def _streamed(bench, name, cpu_fn, dev_fn, host_Z, params, target, args, batch):
    """``dev_fn(blocks, **params)`` with ``Z`` resident on the device and streamed from host
    memory (``_staging.blocks``: pinned buffers and a side stream on CUDA), float64 and float32,
    against ``cpu_fn()``."""
    from emkit._backend import _staging
    from emkit._backend._device import CPU, current_device

    dev = CPU if args.cpu_smoke else current_device()
    t_cpu, ref = bench.timed(cpu_fn, lambda: None, bench.CPU_REPEAT, warm_up=args.cpu_smoke)
    row = {"workload": name, "cpu_s": t_cpu}
    bench.log(f"\n{name}\n  numpy (CPU) {t_cpu * 1e3:10.1f} ms")
    for dt in ("float64", "float32"):
        p = {k: target.put(v, dt) for k, v in params.items()}
        Zh = host_Z.astype(dt)
        Zd = target.put(Zh, dt)
        t_res, out = bench.timed(lambda: dev_fn(_resident_blocks(Zd, batch), **p), target.sync,
                                 args.repeat)
        if dev.is_cpu:  # CPU smoke: a plain copy of each host block into the target namespace
            def stream():
                return (target.put(Zh[i:i + batch], dt) for i in range(0, len(Zh), batch))
        else:
            def stream():
                return _staging.blocks(Zh, dev, batch)
        t_str, _ = bench.timed(lambda: dev_fn(stream(), **p), target.sync, args.repeat)
        outs = out if isinstance(out, tuple) else (out,)
        refs = ref if isinstance(ref, tuple) else (ref,)
        get = target.get
        diff = max(bench.rel_diff(r, get(o)) for r, o in zip(refs, outs))
        share = max(t_str - t_res, 0.0) / t_str
        ok = diff <= bench.TOL[dt]
        row[dt] = {"s": t_res, "speedup": t_cpu / t_res, "streamed_s": t_str,
                   "transfer_share": share, "rel_diff": diff, "ok": ok}
        bench.log(f"  {target.name} {dt:7s} resident {t_res * 1e3:9.2f} ms ({t_cpu / t_res:6.1f}x)"
                  f"  streamed {t_str * 1e3:9.2f} ms (transfers not hidden: {share:.0%})  max "
                  f"rel diff {diff:.1e} ({'ok' if ok else 'ABOVE ' + str(bench.TOL[dt])})")
    bench.RESULTS["rows"].append(row)
    return row


def ivector_rows(bench, target, args):
    """The i-vector T iteration and projection rows."""
    if args.cpu_smoke:
        C, D, R, S, P, batch = 8, 4, 6, 40, 50, 16
    else:
        C, D, R, S, P, batch = 512, 60, 400, 2000, 10_000, 500
    prob = ivector_problem(C, D, R, S)
    n, fnorm = prob["n"], prob["fnorm"]
    Z = np.concatenate([n, fnorm.reshape(S, C * D)], axis=1)
    cpu_batch = kiv.default_batch_size(C, D, R)
    batches = [kiv.CentredBatch(n[i:i + cpu_batch], fnorm[i:i + cpu_batch], prob["snorm"] * 0)
               for i in range(0, S, cpu_batch)]
    params = {k: prob[k] for k in ("means", "T", "sigma", "snorm")}
    _streamed(bench, f"i-vector T iteration (C={C}, D={D}, R={R}, {S} utterances; device "
              f"batches of {batch})",
              lambda: _cpu_iteration(batches, (prob["means"], prob["T"], prob["sigma"]),
                                     prob["snorm"], prob["sigma"], cpu_batch),
              lambda blocks, **p: _device_iteration(blocks, C=C, D=D, **p), Z, params, target,
              args, batch)
    del batches, Z, prob, n, fnorm
    proj = ivector_problem(C, D, R, P, seed=1)
    Z = np.concatenate([proj["n"], proj["fnorm"].reshape(P, C * D)], axis=1)
    pre = kiv.Precomputed.from_parameters(proj["means"], proj["T"], proj["sigma"])

    def cpu_project():
        from emkit._backend import map_ordered, small_products

        out = np.empty((P, R))
        size = max(32, -(-P // 64))

        def run(i):
            out[i:i + size] = kiv.project(proj["n"][i:i + size], proj["fnorm"][i:i + size], pre)

        with small_products():
            map_ordered(run, range(0, P, size))
        return out

    def dev_project(blocks, means, T, sigma):
        xpre = kx.constants(means, T, sigma)
        xp = kx._xp.namespace(means)
        outs = [kx.project(b[:, :C], xp.reshape(b[:, C:], (b.shape[0], C, D)), xpre)
                for b in blocks]
        return xp.concat(outs, axis=0)

    _streamed(bench, f"i-vector projection ({P} utterances, C={C}, D={D}, R={R}; device batches "
              f"of {4 * batch})", cpu_project, dev_project, Z,
              {k: proj[k] for k in ("means", "T", "sigma")}, target, args, 4 * batch)


def _fa_stats(C, D, S, K, seed=2):
    from emkit import GMMMachine, GMMStats

    rng = np.random.default_rng(seed)
    ubm = GMMMachine(C)
    ubm.means, ubm.variances = rng.normal(size=(C, D)), rng.uniform(0.5, 1.5, size=(C, D))
    ubm.weights = np.full(C, 1.0 / C)
    labels = np.sort(rng.integers(0, K, S))
    offsets = rng.normal(scale=0.3, size=(K, C, D))
    stats = []
    for s in range(S):
        n = rng.gamma(2.0, 200.0 / (2 * C) * 4, size=C)
        st = GMMStats(C, D)
        F = n[:, None] * (ubm.means + offsets[labels[s]] + rng.normal(scale=0.3, size=(C, D)))
        st.init_fields(0.0, int(n.sum()), n, F, np.zeros((C, D)))
        stats.append(st)
    return ubm, stats, labels


def fa_estimator_rows(bench, target, args):
    """ISV and JFA ``fit`` through the configured device against the CPU estimator."""
    if args.cpu_smoke:
        bench.log("\nISV/JFA estimators on the device: skipped in CPU smoke (needs a device)")
        return
    import emkit
    from emkit.factor_analysis import ISVMachine, JFAMachine

    C, D, r, S, K = 512, 60, 100, 2000, 200
    ubm, stats, labels = _fa_stats(C, D, S, K)
    for kind, make in (("ISV", lambda it: ISVMachine(r, ubm=ubm, em_iterations=it,
                                                     random_state=0)),
                       ("JFA", lambda it: JFAMachine(r, r, ubm=ubm, em_iterations=it,
                                                     random_state=0))):
        def fit_time(iterations):
            t = time.perf_counter()
            m = make(iterations).fit(stats, labels)
            target.sync()
            return time.perf_counter() - t, m

        cpu_config = {"device": "cpu"}
        dev_config = {"device": args.device, "array_library": args.library}
        times = {}
        for label, config in (("cpu", cpu_config), ("device", dev_config)):
            with emkit.config_context(**config):
                one, _ = fit_time(1)
                two, m = fit_time(2)
            times[label] = (max(two - one, 1e-9), m)
        (t_cpu, ref), (t_dev, got) = times["cpu"], times["device"]
        names = ("U", "D") + (("V",) if kind == "JFA" else ())
        diff = max(bench.rel_diff(getattr(ref, k), getattr(got, k)) for k in names)
        ok = diff <= bench.TOL["float64"]
        name = f"{kind} fit iteration through set_config(device=...)"
        bench.RESULTS["rows"].append({"workload": name, "cpu_s": t_cpu, "float64": {
            "s": t_dev, "speedup": t_cpu / t_dev, "rel_diff": diff, "ok": ok},
            "float32": {"ok": True, "rel_diff": 0.0, "note": "estimators run in float64"}})
        bench.log(f"\n{name} (C={C}, D={D}, r={r}, {S} sessions, {K} classes; fit(2) - fit(1))"
                  f"\n  numpy (CPU) {t_cpu * 1e3:10.1f} ms\n  device float64 {t_dev * 1e3:10.2f}"
                  f" ms  {t_cpu / t_dev:7.1f}x   max rel diff {diff:.1e} "
                  f"({'ok' if ok else 'ABOVE 1e-10'})")
