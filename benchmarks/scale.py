"""Production sizes: seconds per iteration, GFLOP/s and the share of this machine's own dgemm rate.

Each case runs in a fresh process (so its peak RSS is its own), on synthetic data of the shapes
people train; the machine's dgemm (and sgemm) rate is measured in the same run, with the same
BLAS threads, on square products after a warm-up, just before and just after each case: the
share is of their mean (on a shared machine the rate drifts; both are printed).  Not a test:
nothing is asserted.

Cases (full sizes; ``--small`` runs reduced shapes in well under two minutes):

=================  ======================================================================
ubm-1024, -2048    one GMM ML iteration (means, variances, weights), N=2M frames, D=60, in
                   the course of training (frames of overlapping Gaussians, cepstrum-like;
                   the UBM at half of them), and from a flat start (every variance the
                   data's: each frame within 100 nats of every Gaussian, as only a first
                   iteration sees)
                   (float64, and the float32 opt-in against sgemm's rate)
ivector-512        one i-vector EM iteration, C=512, D=60, R=400, 2,000 utterances
ivector-2048       one i-vector EM iteration, C=2048, D=60, R=400, 500 utterances
isv-512            one ISV iteration, C=512, D=60, r_U=100, 2,000 sessions of 200 speakers
jfa-512            one iteration of each JFA phase (V, U, D), r_U=r_V=100, same data
                   (both: the marginal cost of an iteration, (fit(3) - fit(1)) / 2; the
                   1-iteration fit, with stacking and set-up, on the line below)
project-2048       i-vectors of 10,000 utterances, C=2048, D=60, R=400
=================  ======================================================================

GFLOP/s counts only the dominant matrix products, two flops per multiply-add:

* GMM iteration: ``8 N D C`` (two E-step products (N, D) x (D, C), two M-step products).
* i-vector iteration: ``2 S C R(R+1)`` (precisions from packed halves, then the second-order
  accumulator) + ``4 S C D R`` (first-order terms) + ``S R^3`` (a Cholesky factor and the
  posterior covariance per utterance) + ``C R^3 / 3 + 2 C D R^2`` (M-step factors and solves) +
  ``C D R(R+1)`` (the next iteration's constants, one half of each symmetric product).  Like ISV/JFA, s/iter is the marginal
  iteration, ``(fit(3) - fit(1)) / 2``; the one-iteration fit is printed below it.
* ISV iteration: the same with ``r_U`` and sessions, plus ``4 K C D r`` (the class offsets
  ``sum_h N_h U x_h`` of the K speakers and their products with the class sums) and ``C r^3 / 3``
  (the U update).  JFA adds the V phase on speakers (the same terms with K rows, and its
  update).  The 1-iteration fits add their once-per-fit passes: JFA's last y (speakers) and x
  (sessions) without accumulators, ``S C r(r+1) + 2 S C D r + S r^3 / 3`` for the sessions, and
  ``4 K C D r`` (V y and U G of the D phase).
* projection: ``S C R(R+1) + 2 S C D R + S R^3 / 3``.

    python benchmarks/scale.py [--small] [--only ubm-1024,ivector-512] [--float32]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import time

import numpy as np

FULL = {
    "ubm-1024": dict(kind="ubm", N=2_000_000, D=60, C=1024),
    "ubm-1024-flat": dict(kind="ubm", N=2_000_000, D=60, C=1024, flat=True),
    "ubm-2048": dict(kind="ubm", N=2_000_000, D=60, C=2048),
    "ivector-512": dict(kind="ivector", C=512, D=60, R=400, S=2000),
    "ivector-2048": dict(kind="ivector", C=2048, D=60, R=400, S=500),
    "isv-512": dict(kind="isv", C=512, D=60, r=100, S=2000, K=200),
    "jfa-512": dict(kind="jfa", C=512, D=60, r=100, S=2000, K=200),
    "project-2048": dict(kind="project", C=2048, D=60, R=400, S=10_000),
}
SMALL = {
    "ubm-1024": dict(kind="ubm", N=200_000, D=60, C=256),
    "ubm-1024-flat": dict(kind="ubm", N=200_000, D=60, C=256, flat=True),
    "ubm-2048": dict(kind="ubm", N=100_000, D=60, C=1024),
    "ivector-512": dict(kind="ivector", C=256, D=60, R=200, S=400),
    "ivector-2048": dict(kind="ivector", C=512, D=60, R=200, S=200),
    "isv-512": dict(kind="isv", C=256, D=60, r=50, S=800, K=100),
    "jfa-512": dict(kind="jfa", C=256, D=60, r=50, S=800, K=100),
    "project-2048": dict(kind="project", C=512, D=60, R=200, S=2000),
}


# -- the machine's own rate -----------------------------------------------------------------------
def gemm_rate(dtype, n=2048, repeat=3) -> float:
    """GFLOP/s of an n x n x n product (best of ``repeat``, after one warm-up product)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeat))
    return 2.0 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# -- synthetic problems ---------------------------------------------------------------------------
def _ubm(C, D, rng):
    from emkit import GMMMachine

    ubm = GMMMachine(C)
    ubm.means = rng.normal(0.0, 3.0, (C, D))
    ubm.variances = rng.uniform(0.5, 2.0, (C, D))
    ubm.weights = rng.dirichlet(np.full(C, 5.0))
    return ubm


def _stats(ubm, S, rng, frames=300.0, pool=200):
    """``S`` per-utterance GMMStats (``pool`` distinct ones repeated, to keep the input small)."""
    from emkit import GMMStats

    C, D = ubm.means.shape
    out = []
    for _ in range(min(S, pool)):
        n = rng.gamma(2.0, frames / C, C) * ubm.weights * C
        offset = rng.normal(0.0, 0.5, D)
        s = GMMStats(C, D)
        s.init_fields(0.0, float(n.sum()), n, n[:, None] * (ubm.means + offset),
                      n[:, None] * ((ubm.means + offset) ** 2 + ubm.variances))
        out.append(s)
    return [out[i % len(out)] for i in range(S)]


def run_ubm(p, dtype):
    """Frames of 2C overlapping Gaussians whose spread falls with the coefficient index, as
    cepstra's do; the UBM starts at C of them (about 16% of its log-likelihoods within 100 nats
    of a frame's best, all of the posterior in the top 20), or flat (``p["flat"]``)."""
    from emkit import GMMMachine

    rng = np.random.default_rng(0)
    N, D, C = p["N"], p["D"], p["C"]
    centres = rng.normal(size=(2 * C, D)) * np.linspace(1.5, 0.3, D)
    scales = np.linspace(1.0, 0.3, D) * rng.uniform(0.3, 1.0, (2 * C, 1))
    component = rng.integers(0, 2 * C, N)
    X = rng.normal(size=(N, D))
    X *= scales[component]
    X += centres[component]
    m = GMMMachine(C, max_fitting_steps=1, convergence_threshold=None, update_means=True,
                   update_variances=True, update_weights=True, compute_dtype=dtype)
    if p.get("flat"):
        m.means = X[rng.choice(N, C, replace=False)].copy()
        m.variances = np.tile(X.var(axis=0), (C, 1))
    else:
        m.means, m.variances = centres[:C], scales[:C] ** 2
    m.weights = np.full(C, 1.0 / C)
    seconds = _timed(lambda: m.fit(X))
    return seconds, 8.0 * N * D * C, (m.means, m.variances, m.weights)


def run_ivector(p):
    """``(seconds, flop)`` of one iteration (the marginal cost, as for ISV/JFA below), and of the
    whole fit with one iteration (with stacking and centring the statistics, drawing T)."""
    from emkit import IVectorMachine

    rng = np.random.default_rng(0)
    C, D, R, S = p["C"], p["D"], p["R"], p["S"]
    ubm = _ubm(C, D, rng)
    stats = _stats(ubm, S, rng)

    def fit(iterations):
        m = IVectorMachine(ubm, dim_t=R, max_iterations=iterations, random_state=0)
        return _timed(lambda: m.fit(stats))

    first = min(fit(1), fit(1))  # the first fit of the process runs on cold memory
    seconds = (min(fit(3), fit(3)) - first) / 2.0  # the best of two, as for ISV/JFA below
    # E-step: packed precisions and the second-order accumulator (2 S C R(R+1)), first-order
    # terms (4 S C D R), a Cholesky factor and the posterior covariance per utterance (S R^3);
    # M-step: a Cholesky factor and D right-hand sides per Gaussian (C R^3 / 3 + 2 C D R^2);
    # the next iteration's constants T_c' Sigma_c^-1 T_c, one triangle (C D R(R+1), dsyrk)
    flop = (2.0 * S * C * R * (R + 1) + 4.0 * S * C * D * R + S * R**3 + C * R**3 / 3.0
            + 2.0 * C * D * R**2 + C * D * R * (R + 1))
    return (seconds, flop), (first, flop)


def posterior_flop(n, C, D, r, second=True):
    """One posterior pass over ``n`` sessions (or classes) with a rank-r subspace: the packed
    precisions ``n C r(r+1)`` and linear terms ``2 n C D r`` and a Cholesky factor ``n r^3 / 3``;
    with ``second``, the accumulators (as many again) and the covariance ``n r^3``."""
    products = n * C * r * (r + 1) + 2.0 * n * C * D * r
    return 2.0 * products + 4.0 / 3.0 * n * r**3 if second else products + n * r**3 / 3.0


def run_factor_analysis(p, jfa):
    """``(seconds, flop)`` of one iteration, and the same for the whole fit with one iteration.

    One iteration is the marginal cost, ``(fit(3 iterations) - fit(1 iteration)) / 2``, each the
    best of two fits (the first fit of the process, on cold memory, is one of them): without
    stacking the sessions, drawing the initial subspaces and the once-per-fit passes (ISV's
    class-level arrays, JFA's last y and x).
    """
    from emkit import ISVMachine, JFAMachine

    rng = np.random.default_rng(0)
    C, D, r, S, K = p["C"], p["D"], p["r"], p["S"], p["K"]
    ubm = _ubm(C, D, rng)
    stats = _stats(ubm, S, rng, pool=S)
    labels = np.repeat(np.arange(K), S // K)

    def fit(iterations):
        if jfa:
            m = JFAMachine(r, r, em_iterations=iterations, ubm=ubm, random_state=0)
        else:
            m = ISVMachine(r, em_iterations=iterations, ubm=ubm, random_state=0)
        return _timed(lambda: m.fit(stats, labels))

    first = min(fit(1), fit(1))  # the first fit of the process runs on cold memory
    seconds = (min(fit(3), fit(3)) - first) / 2.0  # the best of two: steadier under load
    # U phase: E-step over sessions, class offsets (2 K C D r) and their outer products with the
    # class sums G (2 K C D r), the Cholesky factors of the U update (C r^3 / 3)
    flop = posterior_flop(S, C, D, r) + 4.0 * K * C * D * r + C * r**3 / 3.0
    fit_flop = flop
    if jfa:  # the V phase on speakers and its update; once per fit: the last y and x, V y, U G
        flop += posterior_flop(K, C, D, r) + C * r**3 / 3.0
        fit_flop = (flop + posterior_flop(K, C, D, r, False) + posterior_flop(S, C, D, r, False)
                    + 4.0 * K * C * D * r)
    return (seconds, flop), (first, fit_flop)


def run_projection(p):
    from emkit import IVectorMachine

    rng = np.random.default_rng(0)
    C, D, R, S = p["C"], p["D"], p["R"], p["S"]
    ubm = _ubm(C, D, rng)
    stats = _stats(ubm, S, rng)
    m = IVectorMachine(ubm, dim_t=R)
    m.T = rng.normal(0.0, 0.1, (C, D, R))
    m.sigma = ubm.variances.copy()
    seconds = _timed(lambda: m.transform(stats))
    return seconds, S * C * R * (R + 1) + 2.0 * S * C * D * R + S * R**3 / 3.0


def run_case(name, p, dtype, queue):
    kind = p["kind"]
    fit = None
    if kind == "ubm":
        seconds, flop, fit = run_ubm(p, dtype)
    elif kind == "ivector":
        (seconds, flop), fit = run_ivector(p)
    elif kind in ("isv", "jfa"):
        (seconds, flop), fit = run_factor_analysis(p, kind == "jfa")
    else:
        seconds, flop = run_projection(p)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    queue.put((seconds, flop, rss, fit))


def _differences(reference, other) -> str:
    """Largest relative differences of two (means, variances, weights), the means' relative to
    their largest magnitude."""
    (m0, v0, w0), (m1, v1, w1) = reference, other
    means = np.max(np.abs(m1 - m0)) / np.max(np.abs(m0))
    variances, weights = np.max(np.abs(v1 / v0 - 1)), np.max(np.abs(w1 / w0 - 1))
    return f"means {means:.1e}, variances {variances:.1e}, weights {weights:.1e} (relative)"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="reduced shapes (under two minutes)")
    parser.add_argument("--only", default=None, help="comma-separated case names")
    parser.add_argument("--float32", action="store_true", help="also time the UBM cases in float32")
    args = parser.parse_args()
    cases = SMALL if args.small else FULL
    names = args.only.split(",") if args.only else list(cases)
    unknown = [n for n in names if n not in cases]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(cases)}")

    from threadpoolctl import threadpool_info

    blas = [f"{i['internal_api']} {i.get('architecture', '?')} x{i['num_threads']}"
            for i in threadpool_info() if i["user_api"] == "blas"]
    print(f"== emkit at production sizes ({'small' if args.small else 'full'}); numpy "
          f"{np.__version__}; BLAS {', '.join(blas)}; {os.cpu_count()} CPUs; load "
          f"{os.getloadavg()[0]:.2f}")
    # the gemm rate is measured around every case (on a shared machine it drifts: the ratio is
    # to the mean of the two, both printed)
    print(f"{'case':16s}{'dtype':>9s}{'shape':>34s}{'s/iter':>9s}{'GFLOP/s':>9s}{'of gemm':>9s}"
          f"{'peak RSS':>11s}   gemm GFLOP/s before/after")
    ctx = mp.get_context("spawn")
    fitted = {}
    for name in names:
        p = cases[name]
        dtypes = ["float64", "float32"] if (p["kind"] == "ubm" and args.float32) else ["float64"]
        for dtype in dtypes:
            before = gemm_rate(np.dtype(dtype))
            queue = ctx.Queue()
            proc = ctx.Process(target=run_case, args=(name, p, dtype, queue))
            proc.start()
            seconds, flop, rss, fit = queue.get()
            proc.join()
            after = gemm_rate(np.dtype(dtype))
            gemm = (before + after) / 2.0
            rate = flop / seconds / 1e9
            shape = " ".join(f"{k}={v}" for k, v in p.items() if k != "kind")
            print(f"{name:16s}{dtype:>9s}{shape:>34s}{seconds:9.2f}{rate:9.1f}"
                  f"{100 * rate / gemm:8.0f}%{rss / 2**20:9.0f} MB   {before:.1f}/{after:.1f}",
                  flush=True)
            if p["kind"] == "ubm":
                fitted[dtype] = fit
                if dtype == "float32":
                    print("   float32 against float64 after the iteration: "
                          + _differences(fitted["float64"], fitted["float32"]))
            elif fit is not None:
                fit_rate = fit[1] / fit[0] / 1e9
                print(f"{'  (fit, 1 iter)':16s}{dtype:>9s}{'with stacking and set-up':>34s}"
                      f"{fit[0]:9.2f}{fit_rate:9.1f}{100 * fit_rate / gemm:8.0f}%",
                      flush=True)
    print(f"   load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
