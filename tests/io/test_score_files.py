"""Score files read a block of lines at a time (emkit.io.score_files): the same trials, scores,
labels and errors as the line-by-line reader it replaced (kept here as the reference), ids held
once each, memory bounded by what is returned, and refused lines named without their text."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from emkit.io import score_files
from emkit.io.lists import MAX_LINE, read_scores, write_scores
from emkit.io.untrusted import ASCII_NUMBER, NOT_FINITE, FeatureError


def reference_read(path, max_line=MAX_LINE):
    """The line-by-line reader of emkit before the block reader: (models, probes, scores,
    labels), or the message of the FeatureError it raised."""
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    models, probes, scores, labels, seen, n_columns = [], [], [], [], {}, None
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
        ends = [b"\n"] * len(lines)
    else:
        ends = [b"\n"] * (len(lines) - 1) + [b""]
    for number, (raw, end) in enumerate(zip(lines, ends), start=1):
        where = f"{path} line {number}"
        if len(raw) + len(end) > max_line:
            return f"{where}: longer than {max_line} bytes; not a score file"
        try:
            fields = raw.decode("utf-8").split()
        except UnicodeDecodeError:
            return f"{where}: not UTF-8 text; not a score file"
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) not in (3, 4) or (n_columns is not None and len(fields) != n_columns):
            return (f"{where}: expected 'model-id probe-id score [target|nontarget]'; got "
                    f"{len(fields)} columns")
        n_columns = len(fields)
        pair = tuple(fields[:2])
        if pair in seen:
            return f"{where}: trial {' '.join(pair)!r} repeats line {seen[pair]}"
        seen[pair] = number
        text = fields[2]
        if ASCII_NUMBER.fullmatch(text) and np.isfinite(float(text)):
            scores.append(float(text))
        elif ASCII_NUMBER.fullmatch(text) or NOT_FINITE.fullmatch(text):
            return f"{where}: the score must be finite; got {text!r} in column 3"
        else:
            return f"{where}: the score must be a number; got {text!r} in column 3"
        if n_columns == 4:
            if fields[3].lower() not in ("target", "nontarget"):
                return f"{where}: the label must be 'target' or 'nontarget'; got {fields[3]!r}"
            labels.append(fields[3].lower() == "target")
        models.append(fields[0])
        probes.append(fields[1])
    if not models:
        return f"{path}: the score file is empty"
    return models, probes, np.array(scores), np.array(labels, bool) if n_columns == 4 else None


def read_or_message(path, max_line=MAX_LINE):
    try:
        models, probes, scores, labels = score_files.read_score_columns(path, max_line)
    except FeatureError as exc:
        return str(exc)
    return models, probes, scores, labels


def _assert_same(got, expected):
    if isinstance(expected, str):
        assert isinstance(got, str), f"read, but the reference refused: {expected}"
        assert got.startswith(expected), (got, expected)
        return
    assert not isinstance(got, str), f"refused, but the reference read it: {got}"
    assert got[0] == expected[0] and got[1] == expected[1]
    np.testing.assert_array_equal(got[2], expected[2])
    assert got[2].dtype == np.float64
    if expected[3] is None:
        assert got[3] is None
    else:
        np.testing.assert_array_equal(got[3], expected[3])


SCORES = ["1.5", "-2", "+.5", "3.", "1e5", "-1.25E-3", "007", "0", "-0.0", "12345678901234567890"]
BAD_SCORES = ["1_0", "nan", "-inf", "1e999", "1e", "--1", ".", "x", "\u0661", "0x10", "1.2.3"]
IDS = ["m1", "m2", "spk#1", "é", "u\x1cv", "a-b_c.d"]
LABELS = ["target", "nontarget", "TARGET", "NonTarget"]


def _random_file(rng, bad: bool) -> bytes:
    n_columns = int(rng.choice([3, 4]))
    lines, used = [], set()
    for k in range(int(rng.integers(1, 60))):
        kind = rng.random()
        if kind < 0.05:
            lines.append("# a comment " + str(k))
            continue
        if kind < 0.08:
            lines.append(rng.choice(["", "   ", "\t"]))
            continue
        model, probe = rng.choice(IDS[:3] if rng.random() < 0.8 else IDS), f"p{k}"
        fields = [model, probe, rng.choice(SCORES) if rng.random() < 0.5 else repr(rng.normal())]
        if n_columns == 4:
            fields.append(rng.choice(LABELS))
        sep = rng.choice([" ", " ", "\t", "  ", " \x1f "]) if rng.random() < 0.2 else " "
        lines.append(sep.join(fields) + ("\r" if rng.random() < 0.05 else ""))
        used.add((model, probe))
    if bad:
        k = int(rng.integers(0, len(lines) + 1))
        fields = ["mx", f"px{k}", rng.choice(BAD_SCORES)] + (["target"] if n_columns == 4 else [])
        bad_line = rng.choice([" ".join(fields), "mx px 1.0 maybe", "a b", "a b 1 target extra",
                               lines[0] if lines and not lines[0].startswith("#") else "q"])
        lines.insert(k, bad_line)
    text = "\n".join(lines) + ("\n" if rng.random() < 0.8 else "")
    data = text.encode("utf-8")
    if rng.random() < 0.1:
        data = b"\xef\xbb\xbf" + data
    if bad and rng.random() < 0.1:
        data = data.replace(b"\n", b"\n\xff", 1)
    return data


@pytest.mark.parametrize("block", [16, 64, 1 << 20])
def test_the_same_trials_and_errors_as_the_line_reader(block, tmp_path, monkeypatch):
    monkeypatch.setattr(score_files, "_BLOCK", block)
    rng = np.random.default_rng(block)
    path = tmp_path / "scores.txt"
    for i in range(100):
        path.write_bytes(_random_file(rng, bad=i % 3 == 0))
        _assert_same(read_or_message(path), reference_read(path))


@pytest.mark.parametrize("block", [16, 1 << 20])
def test_lines_at_the_length_limit(block, tmp_path, monkeypatch):
    monkeypatch.setattr(score_files, "_BLOCK", block)
    path = tmp_path / "scores.txt"
    for length in (38, 39, 40, 41):
        for end in ("\n", ""):
            line = "m p 1.5 target"
            line = line[:2] + "q" * (length - len(line)) + line[2:]
            path.write_text("m0 p0 2 nontarget\n" + line + end)
            _assert_same(read_or_message(path, 40), reference_read(path, 40))


def test_plain_blocks_match_the_line_reader_at_scale(tmp_path):
    rng = np.random.default_rng(5)
    n = 30_000
    scores = rng.normal(size=n) * 10.0 ** rng.integers(-5, 5, n)
    labels = rng.random(n) < 0.1
    models = [f"m{i % 300}" for i in range(n)]
    probes = [f"p{i // 300}" for i in range(n)]
    write_scores(tmp_path / "s.txt", models, probes, scores, labels)
    _assert_same(read_or_message(tmp_path / "s.txt"), reference_read(tmp_path / "s.txt"))
    trials, values = read_scores(tmp_path / "s.txt")
    np.testing.assert_array_equal(values, scores)  # (the text is the shortest that reads back)
    assert trials.models[0] is trials.models[300]  # one object per distinct id
    assert trials.probes[0] is trials.probes[299]


def test_a_repeated_pair_names_the_first_repeat_and_the_line_it_repeats(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("# header\na b 1\nc d 2\n\nc e 3\nc d 4\na b 5\n")
    with pytest.raises(FeatureError, match=r"s.txt line 6: trial 'c d' repeats line 3 \(each "):
        read_scores(path)


def test_a_bad_line_at_the_end_of_a_long_file_is_named_without_its_text(tmp_path):
    path = tmp_path / "s.txt"
    n = 200_000
    body = "".join(f"m{i % 100} p{i // 100} {i * 1e-3} target\n" for i in range(n))
    path.write_text(body + "m p " + "9" * 500_000 + "x target\n" + "m p2 1 target\n")
    with pytest.raises(FeatureError) as info:
        read_scores(path)
    message = str(info.value)
    assert message.startswith(f"{path} line {n + 1}: the score must be a number; got '999")
    assert len(message) < 400
    path.write_text(body + "m q nan target\n")
    with pytest.raises(FeatureError, match=f"s.txt line {n + 1}: the score must be finite; got "
                                           "'nan' in column 3"):
        read_scores(path)


def test_memory_is_bounded_by_the_trials_returned(tmp_path):
    # 1,000 models x 200 probes: what is held per trial is two references, a float64 and a
    # bool (25 bytes); the line reader held 131 bytes per trial and peaked at 311
    n = 200_000
    path = tmp_path / "s.txt"
    path.write_text("".join(f"m{i % 1000} p{i // 1000} {i * 1e-3:.6f} "
                            f"{'target' if i % 10 == 0 else 'nontarget'}\n" for i in range(n)))
    read_scores(tmp_path / "s.txt")  # (imports outside the count)
    tracemalloc.start()
    try:
        result = read_scores(path)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result[1]) == n
    assert held < 40 * n, held / n
    assert peak < 120 * n, peak / n


@pytest.mark.parametrize("with_labels", [True, False])
def test_scores_are_written_a_block_at_a_time_as_before(with_labels, tmp_path, monkeypatch):
    from emkit.io import lists

    monkeypatch.setattr(lists, "WRITE_TRIALS", 7)
    rng = np.random.default_rng(1)
    scores = rng.normal(size=50) * 10.0 ** rng.integers(-300, 300, 50)
    labels = list(rng.random(50) < 0.5) if with_labels else None
    models, probes = [f"m{i % 3}" for i in range(50)], np.array([f"p{i}" for i in range(50)])
    write_scores(tmp_path / "s.txt", models, probes, scores, labels)
    expected = "".join(f"{m} {p} {float(s)!r}" + ("" if labels is None else
                                                  " target" if labels[i] else " nontarget") + "\n"
                       for i, (m, p, s) in enumerate(zip(models, probes, scores)))
    assert (tmp_path / "s.txt").read_text() == expected


def test_lines_read_one_at_a_time_are_not_all_held_at_once(tmp_path):
    # a block that is not plain (here: non-ASCII ids) was read line by line into a Python list
    # of every line's bytes and of every line's fields before any trial was added: 45 times the
    # file's size for a 1 MB file of short lines (49 MB), 30 times for this one; now
    # 4096 lines at a time (3.6 times)
    n = 50_000
    path = tmp_path / "s.txt"
    path.write_text("".join(f"é{i % 100} p{i // 100} {i % 7} target\n" for i in range(n)))
    (tmp_path / "warm.txt").write_text("é p 1 target\n")
    read_scores(tmp_path / "warm.txt")  # (imports outside the count)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        trials, scores = read_scores(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(scores) == n and trials.models[5] == "é5" and scores[8] == 1.0
    assert trials.models[0] is trials.models[100] and trials.labels.all()
    assert peak < 8 * size, peak / size
