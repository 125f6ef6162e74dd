"""labels_from_key: a score file's labels looked up in a key, in int64 pair codes.

The labels and messages must be those of a dict of (model, probe) pairs built from read_trials
(the route it replaces), and reading the key must not hold a Python object per trial.
"""

import tracemalloc

import numpy as np
import pytest

from emkit.io.lists import FeatureError, labels_from_key, read_key, read_scores, read_trials
from emkit.io.untrusted import show_key


def dict_route(scores_path, trials, key_path):
    key = read_trials(key_path, require_labels=True)
    lookup = dict(zip(zip(key.models, key.probes), key.labels))
    pairs = list(zip(trials.models, trials.probes))
    missing = [pair for pair in pairs if pair not in lookup]
    if missing:
        raise FeatureError(f"{scores_path}: trial {show_key(' '.join(missing[0]))} is not in "
                           f"the key {key_path} ({len(missing)} trials missing)")
    return np.array([lookup[pair] for pair in pairs], dtype=bool)


def outcome(route, scores_path, trials, key_path):
    try:
        return route(str(scores_path), trials, str(key_path)).tolist()
    except FeatureError as exc:
        return str(exc)


def random_files(tmp_path, rng, case):
    """A score file and a key over a few shared ids: the key's pairs a shuffled superset of the
    scores' (or missing some), with extra ids, repeats, comments and bad labels in some cases."""
    models = [f"m{i}" for i in range(rng.integers(1, 6))]
    probes = [f"p{i}" for i in range(rng.integers(1, 6))]
    pairs = [(m, p) for m in models for p in probes]
    chosen = rng.permutation(len(pairs))[:rng.integers(1, len(pairs) + 1)]
    scored = [pairs[k] for k in chosen]
    key_pairs = pairs + [(f"x{i}", probes[0]) for i in range(rng.integers(0, 3))]
    key_pairs += [(models[0], f"y{i}") for i in range(rng.integers(0, 3))]
    key_pairs = [key_pairs[k] for k in rng.permutation(len(key_pairs))]
    if case % 4 == 1:  # a scored trial missing from the key
        gone = scored[rng.integers(len(scored))]
        key_pairs = [pair for pair in key_pairs if pair != gone]
    if case % 4 == 2:  # a repeated pair (its label the same or not)
        key_pairs.insert(rng.integers(len(key_pairs) + 1), key_pairs[rng.integers(len(key_pairs))])
    lines = [f"{m} {p} {rng.choice(['target', 'nontarget', 'TARGET'])}" for m, p in key_pairs]
    if case % 4 == 3:  # a comment, an empty line, and in some files a bad label or a '#id'
        lines.insert(rng.integers(len(lines) + 1), "# a comment")
        lines.insert(rng.integers(len(lines) + 1), "")
        if case % 8 == 7:
            lines[rng.integers(len(lines))] = rng.choice(["m0 p0 maybe", "#m0 p0 target"])
    key_path, scores_path = tmp_path / f"key{case}.txt", tmp_path / f"scores{case}.txt"
    key_path.write_text("".join(line + "\n" for line in lines))
    scores_path.write_text("".join(f"{m} {p} {rng.normal()}\n" for m, p in scored))
    return scores_path, key_path


def test_labels_and_messages_equal_the_dict_route_on_random_files(tmp_path):
    rng = np.random.default_rng(7)
    kinds = set()
    for case in range(120):
        scores_path, key_path = random_files(tmp_path, rng, case)
        trials, _ = read_scores(scores_path)
        expected = outcome(dict_route, scores_path, trials, key_path)
        assert outcome(labels_from_key, scores_path, trials, key_path) == expected, case
        kinds.add("labels" if isinstance(expected, list) else
                  next(kind for kind in ("is not in the key", "repeats line", "the label must",
                                         "starts with") if kind in expected))
    assert len(kinds) == 5, kinds  # each kind of outcome was met


def test_a_key_of_another_file_names_the_first_missing_trial_and_counts_them(tmp_path):
    (tmp_path / "s.txt").write_text("a b 1.0\nc d 2.0\ne f 3.0\n")
    (tmp_path / "k.txt").write_text("a b target\nc x nontarget\n")
    trials, _ = read_scores(tmp_path / "s.txt")
    with pytest.raises(FeatureError, match=r"s.txt: trial 'c d' is not in the key .*k.txt \(2 "
                                           r"trials missing\)"):
        labels_from_key(tmp_path / "s.txt", trials, tmp_path / "k.txt")


def test_reading_a_key_of_200000_trials_holds_no_python_object_per_trial(tmp_path):
    n_side = 448  # 200,704 trials, ids of 20 characters
    models = [f"model{i:015d}" for i in range(n_side)]
    probes = [f"probe{i:015d}" for i in range(n_side)]
    target = np.random.default_rng(3).random((n_side, n_side)) < 0.1
    names = np.where(target, "target", "nontarget")
    with open(tmp_path / "key.txt", "w") as key, open(tmp_path / "s.txt", "w") as scores:
        for i, m in enumerate(reversed(models)):  # (the key in another order than the scores)
            key.write("".join(f"{m} {p} {t}\n" for p, t in zip(probes, names[n_side - 1 - i])))
        for m in models:
            scores.write("".join(f"{m} {p} 0.5\n" for p in probes))
    trials, _ = read_scores(tmp_path / "s.txt")
    tracemalloc.start()
    try:
        labels = labels_from_key(tmp_path / "s.txt", trials, tmp_path / "key.txt")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(labels, target.ravel())
    # about 66 bytes per trial (int64 numbers, codes and their sort); the dict of tuples took 368
    assert peak < 120 * n_side**2, peak / n_side**2


def test_one_reading_of_a_key_labels_several_score_files_as_its_path_does(tmp_path):
    # emkit evaluate a.txt b.txt --key k read and parsed the key once per score file; a key
    # read once (read_key) must label each file, whatever its trials and ids, as its path does
    from emkit.io.lists import read_key

    rng = np.random.default_rng(8)
    for case in range(0, 120, 4):  # (the cases whose key is a valid labelled trial list)
        scores_path, key_path = random_files(tmp_path, rng, case)
        others = tmp_path / f"others{case}.txt"  # other trials, other ids, the same key
        key_trials = read_trials(key_path, require_labels=True)
        picked = rng.permutation(len(key_trials))[:rng.integers(1, len(key_trials) + 1)]
        others.write_text("".join(f"{key_trials.models[k]} {key_trials.probes[k]} 0.5\n"
                                  for k in picked))
        key = read_key(key_path)
        for path in (scores_path, others, scores_path):
            trials, _ = read_scores(path)
            assert outcome(lambda s, t, _: labels_from_key(s, t, key), path, trials, key_path) \
                == outcome(labels_from_key, path, trials, key_path), case


def test_key_lines_read_one_at_a_time_are_not_all_held_at_once(tmp_path):
    # a block that is not plain (non-ASCII ids) was split into a list of every line's bytes and
    # its trials kept as Python lists until the block ended: 16 times the size of this key;
    # now 4096 lines at a time (4.4 times)
    n = 50_000
    path = tmp_path / "key.txt"
    path.write_text("".join(f"é{i % 100} p{i // 100} {'target' if i % 3 else 'nontarget'}\n"
                            for i in range(n)))
    (tmp_path / "warm.txt").write_text("é p target\n")
    read_key(tmp_path / "warm.txt")  # (imports outside the count)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        key = read_key(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(key.labels) == n and list(key.model_ids)[:2] == ["é0", "é1"]
    assert np.frombuffer(key.labels, np.int8).view(bool).tolist()[:4] == [False, True, True, False]
    assert peak < 8 * size, peak / size
