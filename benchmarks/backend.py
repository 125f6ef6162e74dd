"""The evaluation back-end at the sizes of evaluation lists: 10^7 scores (10% targets), as NIST SRE
sets have (VoxCeleb1-H has 550,894 trials).

Each step is timed (best of --repeat) next to an anchor measured in the same run, with the ratio:

* EER, minDCF, Cllr, min Cllr, ROCCH on 10^7 scores, against one ``np.sort`` of the scores (a
  threshold measure cannot be faster than one sort) and scikit-learn's ``roc_curve``;
* calibration trained on 10^6 scores (scikit-learn's ``LogisticRegression`` beside it) and
  applied to 10^7 (against one multiply-add of the scores);
* a 10^7-line score file written and read (against ``np.loadtxt`` of its score column and a
  plain Python loop over its lines), its labels taken from a key of 10^7 trials instead
  (``labels_from_key``; two files labelled by one reading of the key, ``read_key``, against
  the key read per file), and a file with one bad line at its end (line n - 1) or a
  NaN score, which must be refused naming the file and the line;
* adaptive S-norm of 10^5 trials (100 models x 1,000 probes) with a cohort of 5,000 (against
  the one dgemm that scores the probes against the cohort, 256-dim embeddings).

The traced peak (tracemalloc: Python and numpy allocations above the start) is printed as a
multiple of the scores' float64 size, and the process's peak RSS at the end.

    python benchmarks/backend.py [--quick] [--scores 10000000] [--lines 10000000]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

import numpy as np
from _common import header, mb, peak_memory


def timed(fn, repeat: int):
    """(best seconds of ``repeat`` calls, last result)."""
    best, out = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def report(name: str, seconds: float, anchor_name: str, anchor: float, peak=None, unit=None):
    line = f"   {name:<28s} {seconds:8.3f} s  {seconds / anchor:6.1f}x {anchor_name}"
    if peak is not None:
        line += f"  traced peak {mb(peak)} ({peak / unit:.1f}x the scores)"
    print(line, flush=True)


def scores_of(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.1
    scores = rng.normal(size=n) + 2.5 * labels
    return scores, labels


def metrics_part(n: int, repeat: int) -> None:
    from sklearn.metrics import roc_curve

    from emkit.evaluation import calibration_io, metrics

    scores, labels = scores_of(n)
    tar, non = scores[labels], scores[~labels]
    print(f"-- metrics: {n:,} scores ({tar.size:,} targets), {mb(scores.nbytes)} float64")
    metrics.min_cllr(tar[:10], non[:10])  # (imports)
    sort, _ = timed(lambda: np.sort(scores), repeat)
    print(f"   anchor: np.sort {sort:.3f} s")
    roc, _ = timed(lambda: roc_curve(labels, scores), 1)
    report("scikit-learn roc_curve", roc, "sort", sort)
    calls = {"eer": lambda: metrics.eer(tar, non),
             "min_dcf(0.01)": lambda: metrics.min_dcf(tar, non, 0.01),
             "act_dcf(0.01)": lambda: metrics.act_dcf(tar, non, 0.01),
             "cllr": lambda: metrics.cllr(tar, non),
             "min_cllr": lambda: metrics.min_cllr(tar, non),
             "rocch": lambda: metrics.rocch(tar, non),
             "score_metrics (2 priors)": lambda: calibration_io.score_metrics(tar, non,
                                                                              (0.01, 0.001))}
    for name, fn in calls.items():
        seconds, _ = timed(fn, repeat)
        report(name, seconds, "sort", sort, peak_memory(fn), scores.nbytes)


def calibration_part(n_train: int, n_apply: int, repeat: int) -> None:
    from sklearn.linear_model import LogisticRegression

    from emkit.evaluation.calibration import LinearCalibration

    scores, labels = scores_of(n_train, 1)
    print(f"-- calibration: trained on {n_train:,} scores, applied to {n_apply:,}")
    peer, _ = timed(lambda: LogisticRegression(C=1e6).fit(scores[:, None], labels), 1)
    print(f"   peer: scikit-learn LogisticRegression {peer:.3f} s")
    fit, model = timed(lambda: LinearCalibration().fit(scores, labels), repeat)
    report("LinearCalibration.fit", fit, "LogisticRegression", peer,
           peak_memory(lambda: LinearCalibration().fit(scores, labels)), scores.nbytes)
    big = scores_of(n_apply, 2)[0]
    axpy, _ = timed(lambda: big * 2.0 + 1.0, repeat)
    apply, _ = timed(lambda: model.transform(big), repeat)
    report("transform", apply, "multiply-add", axpy, peak_memory(lambda: model.transform(big)),
           big.nbytes)


def _python_loop(path) -> np.ndarray:
    out = []
    with open(path) as f:
        for line in f:
            out.append(float(line.split()[2]))
    return np.array(out)


def file_part(n: int, repeat: int, folder: str) -> None:
    from emkit.io.lists import (FeatureError, labels_from_key, read_key, read_scores,
                                write_scores)

    scores, labels = scores_of(n, 3)
    models = [f"spk{i % 1000:05d}-enroll" for i in range(n)]
    probes = [f"spk{i // 1000:05d}-utt{i % 7:02d}" for i in range(n)]  # distinct pairs
    path = os.path.join(folder, "scores.txt")
    print(f"-- score file: {n:,} lines")
    write, _ = timed(lambda: write_scores(path, models, probes, scores, labels), 1)
    size = os.path.getsize(path)
    plain = os.path.join(folder, "plain.txt")
    text_write, _ = timed(lambda: open(plain, "w").writelines(  # noqa: SIM115
        f"{m} {p} {s!r}\n" for m, p, s in zip(models, probes, scores.tolist())), 1)
    report(f"write_scores ({mb(size)})", write, "a plain f-string loop", text_write)
    unlabelled, key = os.path.join(folder, "unlabelled.txt"), os.path.join(folder, "key.txt")
    write_scores(unlabelled, models, probes, scores)
    with open(key, "w") as f:  # (in reverse order: the key's order is not the scores')
        f.writelines(f"{m} {p} {('nontarget', 'target')[t]}\n" for m, p, t in
                     zip(reversed(models), reversed(probes), reversed(labels.tolist())))
    del models, probes
    loadtxt, _ = timed(lambda: np.loadtxt(path, usecols=2), 1)
    loop, _ = timed(lambda: _python_loop(path), 1)
    print(f"   anchors: np.loadtxt {loadtxt:.3f} s, a Python line loop {loop:.3f} s")
    read, (trials, values) = timed(lambda: read_scores(path), repeat)
    assert np.array_equal(values, scores) and np.array_equal(trials.labels, labels)
    del trials, values
    report("read_scores", read, "loadtxt", loadtxt)
    report("read_scores", read, "line loop", loop, peak_memory(lambda: read_scores(path)),
           scores.nbytes)
    bare, _ = read_scores(unlabelled)
    fn = lambda: labels_from_key(unlabelled, bare, key)  # noqa: E731
    seconds, from_key = timed(fn, repeat)
    assert np.array_equal(from_key, labels)
    report("labels_from_key (the key)", seconds, "line loop", loop, peak_memory(fn), scores.nbytes)
    # emkit evaluate a b --key k: the key read once for both files, against once per file
    per_file, _ = timed(lambda: [labels_from_key(unlabelled, bare, key) for _ in range(2)], 1)
    once, _ = timed(lambda: [labels_from_key(unlabelled, bare, k) for k in [read_key(key)] * 2],
                    1)
    report("2 files, the key read once", once, "the key read per file", per_file)
    del bare, from_key
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    for name, bad in (("a bad score", b"m p " + b"9" * 200_000 + b"x target"),
                      ("a NaN score", b"m p nan target")):
        lines[n - 2] = bad  # line n - 1
        with open(path, "wb") as f:
            f.write(b"\n".join(lines))
        start = time.perf_counter()
        try:
            read_scores(path)
            message = "READ (not refused)"
        except FeatureError as exc:
            message = str(exc)
        seconds = time.perf_counter() - start
        print(f"   {name} on line {n - 1:,}: refused in {seconds:.2f} s: "
              f"{message.replace(folder, '...')[:150]} ({len(message)} characters)")


def snorm_part(n_models: int, n_probes: int, n_cohort: int, repeat: int) -> None:
    from emkit.evaluation.score_norm import adaptive_snorm

    rng = np.random.default_rng(4)
    dim = 256
    probe_embeddings = rng.normal(size=(n_probes, dim))
    cohort_embeddings = rng.normal(size=(n_cohort, dim))
    scores = rng.normal(size=(n_models, n_probes))
    model_cohort = rng.normal(size=(n_models, n_cohort))
    print(f"-- adaptive S-norm: {n_models} models x {n_probes:,} probes, cohort {n_cohort:,}, "
          "top 200")
    gemm, cohort_probe = timed(lambda: (probe_embeddings @ cohort_embeddings.T).T, repeat)
    print(f"   anchor: the cohort-probe dgemm ({n_probes:,} x {dim} x {n_cohort:,}) {gemm:.3f} s")
    fn = lambda: adaptive_snorm(scores, model_cohort, cohort_probe, top_n=200)  # noqa: E731
    seconds, _ = timed(fn, repeat)
    report("adaptive_snorm", seconds, "dgemm", gemm, peak_memory(fn), cohort_probe.nbytes)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (under a minute)")
    parser.add_argument("--scores", type=int, default=10_000_000)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if args.quick:
        args.scores, args.lines, args.repeat = 200_000, 100_000, 1
    header("evaluation back-end at scale")
    metrics_part(args.scores, args.repeat)
    calibration_part(args.scores // 10, args.scores, args.repeat)
    with tempfile.TemporaryDirectory() as folder:
        file_part(args.lines, 1, folder)
    snorm_part(100, 100 if args.quick else 1000, 500 if args.quick else 5000, args.repeat)
    print(f"   peak RSS of the process: {mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)}")


if __name__ == "__main__":
    main()
