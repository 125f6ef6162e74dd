"""PLDA: scoring many models against many probes, and training.

Peers measured in the same run:
* the textbook two-covariance scoring ``x^T Q x / 2 + y^T Q y / 2 + x^T P y + c`` (Garcia-Romero
  and Espy-Wilson 2011) written directly in NumPy with explicit inverses, whole matrix at once
  (single-vector models only);
* a per-pair Python loop over the same closed form, on a subset, extrapolated.
bob.learn.em 3.3.1 has no PLDA (bob 2.x had one, in C++), so there is no reference timing.

    python benchmarks/plda.py [--models 10000] [--probes 10000] [--dim 200] [--reference-python PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import best_time, header, mb, peak_memory  # noqa: E402

from emkit.plda import PLDA  # noqa: E402


def textbook_terms(plda):
    """Q, P and the constant of the two-covariance LLR, with explicit inverses."""
    B, W = plda.between_covariance_, plda.within_covariance_
    T = B + W
    Ti = np.linalg.inv(T)
    S = np.linalg.inv(T - B @ Ti @ B)
    Q = Ti - S
    P = Ti @ B @ S
    joint = np.block([[T, B], [B, T]])
    const = np.linalg.slogdet(T)[1] - 0.5 * np.linalg.slogdet(joint)[1]
    return Q, P, const


def textbook_scores(plda, E, Pr, terms):
    Q, P, const = terms
    e, p = E - plda.mean_, Pr - plda.mean_
    out = (e @ P) @ p.T
    out += 0.5 * np.einsum("ij,jk,ik->i", e, Q, e)[:, None]
    out += 0.5 * np.einsum("ij,jk,ik->i", p, Q, p)[None, :]
    out += const
    return out


def per_pair_loop(plda, E, Pr, terms):
    Q, P, const = terms
    out = np.empty((len(E), len(Pr)))
    for i, e in enumerate(E - plda.mean_):
        for j, p in enumerate(Pr - plda.mean_):
            out[i, j] = 0.5 * e @ Q @ e + 0.5 * p @ Q @ p + e @ P @ p + const
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=10000)
    ap.add_argument("--probes", type=int, default=10000)
    ap.add_argument("--dim", type=int, default=200)
    ap.add_argument("--train-classes", type=int, default=2000)
    ap.add_argument("--per-class", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reference-python", default=None)
    args = ap.parse_args(argv)
    header("PLDA scoring and training")
    D, M, P = args.dim, args.models, args.probes
    rng = np.random.default_rng(0)

    # --- training (two-covariance; D-dimensional between- and within-class covariances) --------
    K, n = args.train_classes, args.per_class
    y = np.repeat(np.arange(K), n)
    F = rng.normal(size=(D, D // 2)) / np.sqrt(D)
    X = (rng.normal(size=(K, D // 2)) @ F.T)[y] * 3 + rng.normal(size=(K * n, D)) * rng.uniform(0.5, 1.5, D)
    for model in ("two-covariance", "simplified", "full"):
        est = PLDA(model=model, dim_f=D // 2, dim_g=D // 2, max_iterations=10, convergence_threshold=None)
        t = best_time(lambda: est.fit(X, y), repeat=1)
        print(f"  fit {model:<15} N={K * n} D={D} K={K}, 10 EM iterations: {t:.2f} s "
              f"({t / 10 * 1000:.0f} ms/iteration incl. statistics)")
    plda = PLDA(model="two-covariance", max_iterations=10).fit(X, y)

    # --- scoring --------------------------------------------------------------------------------
    E = rng.normal(size=(M, D)) + plda.mean_
    Pr = rng.normal(size=(P, D)) + plda.mean_
    out = np.empty((M, P))
    t_emkit = best_time(lambda: plda.log_likelihood_ratio(E, Pr, out=out), repeat=args.repeat)
    mem_emkit = peak_memory(lambda: plda.log_likelihood_ratio(E, Pr, out=out))
    print(f"  emkit     {M} x {P} single-vector models/probes, D={D}: {t_emkit:.2f} s "
          f"({M * P / t_emkit / 1e6:.0f} M scores/s); working memory besides the {mb(out.nbytes)} "
          f"output: {mb(mem_emkit)}")
    mem_own = peak_memory(lambda: plda.log_likelihood_ratio(E, Pr))
    print(f"  emkit     allocating its own output: peak memory {mb(mem_own)}")
    out32 = np.empty((M, P), dtype=np.float32)
    t32 = best_time(lambda: plda.log_likelihood_ratio(E, Pr, out=out32), repeat=args.repeat)
    mem32 = peak_memory(lambda: plda.log_likelihood_ratio(E, Pr, out=out32))
    print(f"  emkit     into a float32 output ({mb(out32.nbytes)}): {t32:.2f} s; working memory {mb(mem32)}")
    enr = plda.enroll(np.repeat(E, 3, axis=0) + rng.normal(size=(3 * M, D)) * 0.1, np.repeat(np.arange(M), 3))
    t3 = best_time(lambda: plda.log_likelihood_ratio(enr, Pr, out=out), repeat=args.repeat)
    print(f"  emkit     {M} three-vector models x {P} probes: {t3:.2f} s")

    terms = textbook_terms(plda)
    t_text = best_time(lambda: textbook_scores(plda, E, Pr, terms), repeat=args.repeat)
    mem_text = peak_memory(lambda: textbook_scores(plda, E, Pr, terms))
    ref = textbook_scores(plda, E[:500], Pr[:500], terms)
    diff = np.abs(plda.log_likelihood_ratio(E[:500], Pr[:500]) - ref).max()
    print(f"  textbook  Q/P formula, whole matrix: {t_text:.2f} s, peak memory {mb(mem_text)} "
          f"(incl. its output); max |emkit - textbook| on 500 x 500 = {diff:.2e}")
    sub = 60
    start = time.perf_counter()
    per_pair_loop(plda, E[:sub], Pr[:sub], terms)
    t_loop = (time.perf_counter() - start) * (M * P) / (sub * sub)
    print(f"  per-pair Python loop (extrapolated from {sub} x {sub}): {t_loop:,.0f} s")
    print(f"  ratios: textbook / emkit = {t_text / t_emkit:.2f}x time, {mem_text / mem_own:.2f}x peak "
          f"memory (both allocating the output); loop / emkit = {t_loop / t_emkit:,.0f}x time")
    if args.reference_python:
        print("  reference: bob.learn.em 3.3.1 has no PLDA (dropped after 2.x): nothing to time")
    else:
        print("  reference: skipped (bob.learn.em 3.3.1 has no PLDA)")


if __name__ == "__main__":
    main()
