"""k-means Lloyd iterations and per-utterance MAP adaptation.

1. Lloyd iteration, N=200,000 x D=60, k=256, from the same initial centroids: emkit's
   KMeansMachine against scikit-learn's KMeans (lloyd), time per iteration as the difference of
   fits with 1 and 11 iterations (divided by 10), the fits of both libraries in turn.
2. MAP adaptation (means, relevance factor 4, one EM pass as in Reynolds et al.) of 1,000
   utterances of 300 frames each to a C=256 UBM: emkit against bob.learn.em 3.3.1
   (--reference-python), same UBM and data.

    python benchmarks/kmeans.py [--reference-python /path/to/side-env/bin/python]
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import best_time, header, interleaved, mb, peak_memory, run_reference
from gmm_em import make_problem

from emkit import GMMMachine, KMeansMachine


def emkit_lloyd(X, init, iters):
    return KMeansMachine(len(init), init_method=init, max_iter=iters, convergence_threshold=None).fit(X)


def sklearn_lloyd(X, init, iters):
    from sklearn.cluster import KMeans

    return KMeans(len(init), init=init, n_init=1, max_iter=iters, tol=0.0, algorithm="lloyd").fit(X)


def make_ubm(means, variances, weights):
    ubm = GMMMachine(len(weights))
    ubm.means, ubm.variances, ubm.weights = means, variances, weights
    return ubm


def emkit_map(ubm, utterances):
    out = []
    for utt in utterances:
        m = GMMMachine(ubm.n_gaussians, trainer="map", ubm=ubm, max_fitting_steps=1)
        out.append(m.fit(utt).means)
    return out


REFERENCE_MAP = r"""
import json, sys, time
import numpy as np
from bob.learn.em import GMMMachine
d = np.load(sys.argv[1])
ubm = GMMMachine(len(d["weights"]))
ubm.means, ubm.variances, ubm.weights = d["means"], d["variances"], d["weights"]
utts = d["utterances"]
t = time.perf_counter()
out = [GMMMachine(len(d["weights"]), trainer="map", ubm=ubm, max_fitting_steps=1).fit(u).means for u in utts]
t = time.perf_counter() - t
print(json.dumps({"seconds": t, "first": out[0].tolist(), "last": out[-1].tolist()}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-python", default=None)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--utterances", type=int, default=1000)
    parser.add_argument("--iterations", type=int, default=11,
                        help="time per iteration: (fit(this many) - fit(1)) / (this many - 1)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="best of this many fits of each length (raise it on a shared, busy machine)")
    args = parser.parse_args()

    header(f"k-means Lloyd iteration, N={args.n} D=60 k=256")
    # one Gaussian blob: Lloyd keeps moving for many iterations (scikit-learn stops early once the
    # labels no longer change) and no cluster empties, so both libraries do plain Lloyd updates
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.n, 60))
    init = X[rng.choice(args.n, 256, replace=False)].copy()
    # the four fits in turn, best of --repeat each: a drifting machine moves them together
    n = args.iterations
    (e_n, _), (e_1, _), (s_n, _), (s_1, _) = interleaved(
        [lambda: emkit_lloyd(X, init, n), lambda: emkit_lloyd(X, init, 1),
         lambda: sklearn_lloyd(X, init, n), lambda: sklearn_lloyd(X, init, 1)], args.repeat)
    te, ts = (e_n - e_1) / (n - 1), (s_n - s_1) / (n - 1)
    me = peak_memory(lambda: emkit_lloyd(X, init, 1))
    ms = peak_memory(lambda: sklearn_lloyd(X, init, 1))
    a, b = emkit_lloyd(X, init, 3).centroids_, sklearn_lloyd(X, init, 3).cluster_centers_
    print(f"   check: max |centroids emkit - sklearn| after 3 iterations = {np.abs(a - b).max():.2e}")
    print(f"{'':24s}{'s/iteration':>12s}{'peak memory':>16s}")
    print(f"{'emkit':24s}{te:12.3f}{mb(me):>16s}")
    print(f"{'scikit-learn (lloyd)':24s}{ts:12.3f}{mb(ms):>16s}")
    print(f"   emkit / scikit-learn time: {te / ts:.2f} (target <= 1.0)")

    header(f"MAP adaptation (means, r=4, 1 pass): {args.utterances} utterances x 300 frames, C=256 D=60")
    X, means, variances, weights = make_problem(args.n, 60, 256)
    rng = np.random.default_rng(1)
    utterances = X[rng.integers(0, len(X) - 300, args.utterances)[:, None] + np.arange(300)]
    ubm = make_ubm(means, variances, weights)
    tm = best_time(lambda: emkit_map(ubm, utterances), 2)
    print(f"{'emkit':24s}{tm:12.3f} s  ({1e3 * tm / args.utterances:.2f} ms per utterance)")
    ref = run_reference(args.reference_python, REFERENCE_MAP,
                        {"means": means, "variances": variances, "weights": weights, "utterances": utterances})
    if ref is not None:
        mine = emkit_map(ubm, utterances[[0, -1]])
        diff = max(np.abs(np.array(ref["first"]) - mine[0]).max(), np.abs(np.array(ref["last"]) - mine[1]).max())
        print(f"{'bob.learn.em 3.3.1':24s}{ref['seconds']:12.3f} s  "
              f"({1e3 * ref['seconds'] / args.utterances:.2f} ms per utterance)")
        print(f"   speed-up vs reference: {ref['seconds'] / tm:.1f}x (target >= 15x); max |means diff| = {diff:.2e}")


if __name__ == "__main__":
    main()
