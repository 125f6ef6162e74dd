"""Per-item overhead of the Python paths at production counts (not a test).

For each path (list files, trial lists, score files and keys, metrics, Kaldi archives and
script files, cohort normalisation) this times one run at n = 10^4, 10^5, 10^6 items (score and
trial paths also 10^7 with ``--trials-max 10000000``), and prints seconds per item, the growth
exponent of the time between sizes (1.0: linear; 2.0: quadratic), the traced peak memory per
item (tracemalloc, a second run) and, where there is one, a plain Python baseline doing the same
parsing (``str.split`` loop, ``dict`` grouping) timed in the same run, alternating with the path,
and the ratio path/baseline; at the end, the process's peak RSS (run one path with ``--only`` to
read it as that path's).  Files are written to a temporary directory and removed.  The first
size is timed 3 times (the first a warm-up), the others once unless ``--repeat``.

The machine's load moves all timings: compare figures of one run only.

    python benchmarks/counts.py                 # 10^4, 10^5, 10^6 (a few minutes)
    python benchmarks/counts.py --quick         # 10^3, 10^4 (seconds)
    python benchmarks/counts.py --only scp      # the paths whose name contains 'scp'
    python benchmarks/counts.py --trials-max 10000000
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import struct
import tempfile
from collections import defaultdict

import numpy as np
from _common import interleaved, peak_memory

from emkit.audio._write import write_kaldi_ark
from emkit.evaluation import metrics, score_norm
from emkit.io import kaldi, lists

RNG = np.random.default_rng(0)


# -- files -------------------------------------------------------------------------------------

def _write(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(lines)
    return path


def utt2spk(tmp, n):
    return _write(os.path.join(tmp, "utt2spk"),
                  (f"spk{k // 10:07d}-utt{k:08d} spk{k // 10:07d}\n" for k in range(n)))


def spk2utt(tmp, n):
    return _write(os.path.join(tmp, "spk2utt"),
                  (f"spk{s:07d} " + " ".join(f"spk{s:07d}-utt{s * 10 + u:08d}" for u in range(10))
                   + "\n" for s in range(max(n // 10, 1))))


def _trial_ids(n):
    """(model, probe) of n distinct trials: sqrt(n)-ish models, each against its probes."""
    n_models = max(int(math.sqrt(n)) // 4, 1)
    return ((f"m{k % n_models:06d}", f"p{k // n_models:08d}") for k in range(n))


def trials(tmp, n):
    labels = RNG.random(n) < 0.1
    return _write(os.path.join(tmp, "trials"),
                  (f"{m} {p} {'target' if t else 'nontarget'}\n"
                   for (m, p), t in zip(_trial_ids(n), labels.tolist())))


def scores(tmp, n):
    values = RNG.normal(size=n).tolist()
    return _write(os.path.join(tmp, "scores"),
                  (f"{m} {p} {v!r}\n" for (m, p), v in zip(_trial_ids(n), values)))


def ark(tmp, n, dim=20, order="file", rows=1):
    """An archive of n i-vectors (1 x dim; rows x dim matrices) and its scp, in file order or
    shuffled."""
    path = os.path.join(tmp, "ivectors.ark")
    vectors = RNG.normal(size=(n, rows, dim)).astype(np.float32)
    _, scp = write_kaldi_ark(((f"utt{k:08d}", vectors[k]) for k in range(n)), path)
    if order == "shuffled":
        with open(scp, encoding="utf-8") as f:
            lines = f.readlines()
        random.Random(0).shuffle(lines)
        _write(scp, lines)
    return path, str(scp)


# -- baselines: the same parsing as a plain loop -----------------------------------------------

def split_map(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, value = line.split()
            out[key] = value
    return out


def split_lists(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            out[fields[0]] = fields[1:]
    return out


def split_trials(path):
    models, probes, labels = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m, p, t = line.split()
            models.append(m)
            probes.append(p)
            labels.append(t == "target")
    return models, probes, np.array(labels)


def split_scores(path):
    models, probes, values = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m, p, s = line.split()
            models.append(m)
            probes.append(p)
            values.append(float(s))
    return models, probes, np.array(values)


def dict_group(models, values, labels):
    """The trials of each model by dict grouping, then eer per model."""
    groups = defaultdict(list)
    for k, m in enumerate(models):
        groups[m].append(k)
    for own in groups.values():
        own = np.array(own)
        tar, non = values[own][labels[own]], values[own][~labels[own]]
        if tar.size and non.size:
            metrics.eer(tar, non)


def plain_ark(path):
    """Binary float matrices 'key \\0BFM ' read with f.read and numpy.frombuffer."""
    out = {}
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        key = data[pos:space].decode()
        rows, cols = struct.unpack_from("<xixi", data, space + 6)
        start = space + 16
        out[key] = np.frombuffer(data, np.float32, rows * cols, start).reshape(rows, cols) \
            .astype(np.float64)
        pos = start + 4 * rows * cols
    return out


# -- the paths: name -> (sizes, setup(tmp, n) -> (path call, baseline call or None)) -------------

def _scores_and_labels(n):
    values = RNG.normal(size=n)
    labels = RNG.random(n) < 0.1
    return values, labels


def p_utt2spk(tmp, n):
    path = utt2spk(tmp, n)
    return (lambda: lists.read_id_map(path)), (lambda: split_map(path))


def p_spk2utt(tmp, n):
    path = spk2utt(tmp, n)
    return (lambda: lists.read_id_lists(path)), (lambda: split_lists(path))


def p_read_trials(tmp, n):
    path = trials(tmp, n)
    return (lambda: lists.read_trials(path)), (lambda: split_trials(path))


def p_read_scores(tmp, n):
    path = scores(tmp, n)
    return (lambda: lists.read_scores(path)), (lambda: split_scores(path))


def p_write_scores(tmp, n):
    models, probes = map(list, zip(*_trial_ids(n)))
    values, labels = _scores_and_labels(n)
    out = os.path.join(tmp, "written")

    def baseline():
        with open(out, "w", encoding="utf-8") as f:
            f.writelines(f"{m} {p} {v!r}\n" for m, p, v in zip(models, probes, values.tolist()))
    return (lambda: lists.write_scores(out, models, probes, values)), baseline


def p_key_labels(tmp, n):
    key_path, score_path = trials(tmp, n), scores(tmp, n)
    found, _ = lists.read_scores(score_path)

    def baseline():
        m, p, t = split_trials(key_path)
        key = dict(zip(zip(m, p), t.tolist()))
        return np.array([key[pair] for pair in zip(found.models, found.probes)])
    return (lambda: lists.labels_from_key(score_path, found, key_path)), baseline


def p_eer_min_dcf(tmp, n):
    values, labels = _scores_and_labels(n)
    tar, non = values[labels], values[~labels]
    return (lambda: (metrics.eer(tar, non), metrics.min_dcf(tar, non, 0.01))), None


def p_per_model(tmp, n):
    models = [f"m{k % max(n // 100, 1):06d}" for k in range(n)]  # 100 trials per model
    values, labels = _scores_and_labels(n)
    return (lambda: metrics.per_model(models, values, labels)), \
        (lambda: dict_group(models, values, labels))


def p_read_ark(tmp, n):
    path, _ = ark(tmp, n)
    return (lambda: kaldi.read_kaldi_ark(path)), (lambda: plain_ark(path))


def p_read_ark_matrices(tmp, n):
    path, _ = ark(tmp, n, rows=50)
    return (lambda: kaldi.read_kaldi_ark(path)), (lambda: plain_ark(path))


def p_read_scp(tmp, n):
    path, scp = ark(tmp, n)
    return (lambda: kaldi.read_kaldi_scp(scp)), (lambda: kaldi.read_kaldi_ark(path))


def p_read_scp_shuffled(tmp, n):
    path, scp = ark(tmp, n, order="shuffled")
    return (lambda: kaldi.read_kaldi_scp(scp)), (lambda: kaldi.read_kaldi_ark(path))


def p_adaptive_snorm(tmp, n):
    """n trials as 100 models x n/100 probes, against a cohort of 10^4."""
    n_models, n_probes, cohort = 100, max(n // 100, 1), 10_000
    s = RNG.normal(size=(n_models, n_probes))
    mc, cp = RNG.normal(size=(n_models, cohort)), RNG.normal(size=(cohort, n_probes))
    return (lambda: score_norm.adaptive_snorm(s, mc, cp, 200)), None


# (name, setup, largest n by default, largest n with --trials-max); the baselines: ark and scp
# paths compare with a plain reader (plain_ark) and with read_kaldi_ark of the same archive
PATHS = [
    ("utt2spk read_id_map", p_utt2spk, 10**6, None),
    ("spk2utt read_id_lists", p_spk2utt, 10**6, None),
    ("trials read_trials", p_read_trials, 10**6, True),
    ("scores read_scores", p_read_scores, 10**6, True),
    ("scores write_scores", p_write_scores, 10**6, True),
    ("key labels_from_key", p_key_labels, 10**6, True),
    ("metrics eer+min_dcf", p_eer_min_dcf, 10**6, True),
    ("metrics per_model", p_per_model, 10**6, True),
    ("ark read_kaldi_ark", p_read_ark, 10**6, None),
    ("ark read_kaldi_ark 50x20", p_read_ark_matrices, 10**5, None),
    ("scp read_kaldi_scp", p_read_scp, 10**6, None),
    ("scp read_kaldi_scp shuffled", p_read_scp_shuffled, 10**6, None),
    ("cohort adaptive_snorm 10^4", p_adaptive_snorm, 10**5, None),
]


def run_path(name, setup, sizes, repeat):
    print(f"\n{name}")
    print(f"  {'n':>9} {'s/item':>10} {'exp':>5} {'traced B/item':>13} {'base s/item':>11} "
          f"{'ratio':>6}")
    previous = None
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="emkit-counts-") as tmp:
            call, baseline = setup(tmp, n)
            fns = [call] + ([baseline] if baseline else [])
            timed = interleaved(fns, repeat if n > 10**4 else max(repeat, 3))  # (1st: warm-up)
            seconds = timed[0][0]
            traced = peak_memory(call)
        exponent = "" if previous is None else \
            f"{math.log(seconds / previous[1]) / math.log(n / previous[0]):5.2f}"
        base = f"{timed[1][0] / n:11.2e} {seconds / timed[1][0]:6.2f}" if baseline else ""
        print(f"  {n:>9,} {seconds / n:10.2e} {exponent:>5} {traced / n:13.1f} {base}", flush=True)
        previous = (n, seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 10^3 and 10^4 only")
    parser.add_argument("--only", default="", help="run the paths whose name contains this")
    parser.add_argument("--max", type=int, default=None, help="largest n of every path")
    parser.add_argument("--trials-max", type=int, default=None,
                        help="largest n of the trial and score paths (e.g. 10000000)")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each (best kept)")
    args = parser.parse_args()
    for name, setup, largest, trial_path in PATHS:
        if args.only not in name:
            continue
        if args.quick:
            largest = 10**4
        elif args.max:
            largest = min(largest, args.max)
        if trial_path and args.trials_max and not args.quick:
            largest = args.trials_max
        sizes = [n for n in (10**3, 10**4, 10**5, 10**6, 10**7)
                 if n <= largest and (args.quick or n >= 10**4)]
        run_path(name, setup, sizes, args.repeat)
    print(f"\nprocess peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:,.0f} MB")


if __name__ == "__main__":
    main()
