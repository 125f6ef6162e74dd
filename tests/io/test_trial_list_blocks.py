"""read_trials reads a block of lines at a time, as the key and score readers do.

It read a line at a time, kept a dict of (model, probe) tuples to find repeats, a Python int
per line number and a string per id per trial: 283 bytes per trial traced, 5 times a plain
``str.split`` loop.  Its trials, labels, line numbers and messages must be those of that
line-by-line reading (:func:`line_route`, kept here as the reference).
"""

import tracemalloc

import numpy as np

from emkit.io.lists import MAX_LINE, FeatureError, read_trials
from emkit.io.untrusted import is_comment, show_key, text_lines


def line_route(path):
    """The line-by-line reading read_trials did: (models, probes, labels or None, lines)."""
    models, probes, labels, lines, seen, n_columns = [], [], [], [], {}, None
    for number, line in text_lines(path, MAX_LINE, "trial list"):
        fields, where = line.split(), f"{path} line {number}"
        if not fields or is_comment(fields[0], where):
            continue
        lines.append(number)
        if len(fields) not in (2, 3) or n_columns not in (None, len(fields)):
            expected = "2 or 3" if n_columns is None else str(n_columns)
            raise FeatureError(f"{where}: expected {expected} columns 'model-id probe-id "
                               f"[target|nontarget]'; got {len(fields)}")
        n_columns = len(fields)
        pair = tuple(fields[:2])
        if pair in seen:
            raise FeatureError(f"{where}: trial {show_key(' '.join(pair))} repeats line "
                               f"{seen[pair]} (each model-probe pair must appear once)")
        seen[pair] = number
        models.append(fields[0])
        probes.append(fields[1])
        if n_columns == 3:
            if fields[2].lower() not in ("target", "nontarget"):
                raise FeatureError(f"{where}: the label must be 'target' or 'nontarget'; got "
                                   f"{show_key(fields[2])}")
            labels.append(fields[2].lower() == "target")
    if not models:
        raise FeatureError(f"{path}: the trial list is empty")
    return models, probes, labels if n_columns == 3 else None, lines


def outcome(read, path):
    try:
        models, probes, labels, lines = read(str(path))
    except FeatureError as exc:
        return str(exc)
    return models, probes, None if labels is None else list(map(bool, labels)), list(lines)


def block_route(path):
    trials = read_trials(path)
    return trials.models, trials.probes, trials.labels, trials.lines


def random_list(rng, case):
    """A trial list of a few ids, with or without labels; some with a repeat, a comment, an
    empty line, a '#id', a bad label, a line of other columns, a non-ASCII id or bad UTF-8."""
    n_columns = 2 + case % 2
    pairs = [(f"m{i}", f"p{j}") for i in range(rng.integers(1, 5)) for j in range(4)]
    pairs = [pairs[k] for k in rng.permutation(len(pairs))]
    lines = [" ".join(pair + ((str(rng.choice(["target", "nontarget", "Target"])),)
                              if n_columns == 3 else ())) for pair in pairs]
    mutation = case // 2 % 9
    where = int(rng.integers(len(lines) + 1))
    extra = ["", f"{pairs[0][0]} {pairs[0][1]}" + (" target" if n_columns == 3 else ""),
             "# a comment", "", "#m9 p9", "m9 p9 maybe", "m9 p9 target nontarget", "é1 p1",
             None][mutation]
    if extra is not None:
        lines.insert(where, extra)
    text = "".join(line + "\n" for line in lines).encode()
    if mutation == 8:
        text = text[:3] + b"\xff" + text[3:]
    return text


def test_trials_lines_and_messages_equal_the_line_by_line_reading(tmp_path):
    rng = np.random.default_rng(11)
    kinds = set()
    for case in range(180):
        path = tmp_path / f"trials{case}.txt"
        path.write_bytes(random_list(rng, case))
        expected = outcome(line_route, path)
        assert outcome(block_route, path) == expected, (case, path.read_bytes())
        kinds.add("trials" if isinstance(expected, tuple) else
                  next(kind for kind in ("repeats line", "the label must", "starts with",
                                         "columns", "UTF-8") if kind in expected))
    assert len(kinds) == 6, kinds  # each kind of outcome was met


def test_line_numbers_across_blocks_with_comments_and_two_columns(tmp_path):
    # over 1 MiB: plain blocks (lines numbered by position) and a block read line by line
    lines = [f"model{i % 97} probe{i // 97}" for i in range(80_000)]
    lines[70_000:70_000] = ["", "# a comment", "é probe-x"]
    path = tmp_path / "trials.txt"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    assert path.stat().st_size > 1 << 20
    assert outcome(block_route, path) == outcome(line_route, path)
    trials = read_trials(path)
    assert trials.labels is None and trials.where(70_000) == "line 70003"


def test_a_trial_list_of_200000_trials_holds_no_python_object_per_line(tmp_path):
    n = 200_000  # (a 1 MiB block's tokens, held while it is read, weigh less per trial)
    path = tmp_path / "trials.txt"
    path.write_text("".join(f"m{k % 100:04d} p{k // 100:06d} "
                            f"{'target' if k % 10 == 0 else 'nontarget'}\n" for k in range(n)))
    read_trials(tmp_path / "trials.txt")  # (imports outside the count)
    tracemalloc.start()
    try:
        trials = read_trials(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(trials) == n and trials.labels.sum() == n // 10
    assert trials.models[5] == "m0005" and trials.probes[n - 1] == "p001999"
    # 88 bytes per trial traced (lists referring to each distinct id once, line numbers in an
    # array('q')); the line-by-line reading took 283
    assert peak < 150 * n, peak / n
