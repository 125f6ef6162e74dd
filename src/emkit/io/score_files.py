"""Score files, ``model-id probe-id score [target|nontarget]`` lines, read and written at the
sizes of evaluation lists (10^7 trials).

The reader takes the file a block of lines at a time.  A block of plain lines (ASCII, no
comment, no empty line, every line with the same 3 or 4 columns) is converted column by column;
any other block is read line by line (the rules and messages of :mod:`emkit.io.lists`), so a
refused line is named as before, and a line longer than :data:`~emkit.io.lists.MAX_LINE` is
refused before it is read whole.  What is kept per trial is a float64 score, a bool label and a
reference to its model and probe ids, each distinct id held once; a model-probe pair listed
twice is found by sorting the pairs' numbers once the file is read.
"""

from __future__ import annotations

import io
import itertools
import os
from array import array
from collections import defaultdict

import numpy as np

from .untrusted import (ASCII_NUMBER, NOT_FINITE, FeatureError, is_comment, number_advice,
                        open_regular, show_key)

#: nothing here is public API: the block readers behind emkit.io.lists' score files (internal;
#: their un-underscored names stay importable)
__all__ = []

_BLOCK = 1 << 20  # bytes read at a time (lines are never cut)
_IDS_AT_A_TIME = 1 << 16
_LINES_AT_A_TIME = 4096  # lines of a block read one at a time, added together
_BOM = b"\xef\xbb\xbf"
_NUMBER_CHARACTERS = b"0123456789+-.eE"  # within these, float() reads what ASCII_NUMBER matches
_LABELS = ("target", "nontarget")
#: The ASCII characters str.split() splits at (\x1c-\x1f among them)
_SPACE = np.array([chr(c).isspace() for c in range(256)]) & (np.arange(256) < 128)


def id_numbering() -> dict:
    """A dict that numbers each new id it is asked for, in order of first appearance."""
    return defaultdict(itertools.count().__next__)


def _parse_score(text: str, where: str) -> float:
    """The score of column 3 as a finite float64; a :class:`FeatureError` for anything else."""
    numeric = ASCII_NUMBER.fullmatch(text) is not None
    if numeric and np.isfinite(value := float(text)):
        return value
    if numeric or NOT_FINITE.fullmatch(text):  # 1e999 overflows to inf
        raise FeatureError(f"{where}: the score must be finite; got {show_key(text)} in column 3")
    raise FeatureError(f"{where}: the score must be a number; got {show_key(text)} in column 3 "
                       f"({number_advice(text)})")


def _parse_label(text: str, where: str) -> bool:
    low = text.lower()
    if low not in _LABELS:
        raise FeatureError(f"{where}: the label must be 'target' or 'nontarget'; got {show_key(text)}")
    return low == "target"


def fields_per_line(block: bytes, max_line: int):
    """The number of fields of every line of ``block`` (ASCII, complete lines) when they all
    have the same, with no line longer than ``max_line``; None otherwise.  Fields are split as
    ``str.split`` splits them, counted with numpy (no Python object per line)."""
    data = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(data == ord("\n"))
    if np.diff(ends, prepend=-1).max() > max_line:
        return None
    space = _SPACE[data]
    starts = ~space
    starts[1:] &= space[:-1]  # the first character of each field
    fields_before = np.searchsorted(np.flatnonzero(starts), ends)  # (fields before each end)
    per_line = np.diff(fields_before, prepend=0)
    count = int(per_line[0])
    return count if (per_line == count).all() else None


class _Columns:
    """The columns read so far: ids (each distinct one held once), scores, labels."""

    def __init__(self, path: str, max_line: int):
        self.path, self.max_line = path, max_line
        self.models, self.probes = array("q"), array("q")  # the ids' numbers
        self.scores, self.labels = array("d"), array("b")
        # each distinct id, numbered in order of first appearance as it is met
        self.model_ids, self.probe_ids = id_numbering(), id_numbering()
        self.n_columns = None

    def add(self, models, probes, scores: np.ndarray, labels) -> None:
        """Add trials: ids (lists of str), float64 scores, bool labels (None without a label
        column), all (n,)."""
        for numbers, ids, names in ((self.models, self.model_ids, models),
                                    (self.probes, self.probe_ids, probes)):
            numbers.frombytes(np.fromiter(map(ids.__getitem__, names), np.int64,
                                          len(names)).tobytes())
        self.scores.frombytes(scores.tobytes())
        if labels is not None:
            self.labels.frombytes(labels.tobytes())

    def check_columns(self, count: int, where: str) -> None:
        if count not in (3, 4) or (self.n_columns is not None and count != self.n_columns):
            raise FeatureError(f"{where}: expected 'model-id probe-id score [target|nontarget]'; "
                               f"got {count} columns")
        self.n_columns = count

    def add_plain_block(self, block: bytes) -> bool:
        """Add the lines of ``block`` (complete lines, each ending with a newline) if every one
        is plain: ASCII, not a comment, the same 3 or 4 columns as the file's other lines, a
        number and a label where they belong.  False (and nothing added) otherwise."""
        if not block.endswith(b"\n") or not block.isascii() or b"#" in block:
            return False
        count = fields_per_line(block, self.max_line)
        if count not in (3, 4) or self.n_columns not in (None, count):
            return False
        tokens = block.decode("ascii").split()
        scores = tokens[2::count]
        if "".join(scores).encode("ascii").translate(None, _NUMBER_CHARACTERS):
            return False
        try:
            values = np.fromiter(map(float, scores), np.float64, len(scores))
        except ValueError:  # ("1e", "--1", "."): the line-by-line reading names it
            return False
        if not np.isfinite(values).all():
            return False
        labels = None
        if count == 4:
            names = tokens[3::4]
            known = {name: name.lower() == "target" for name in set(names)
                     if name.lower() in _LABELS}
            if len(known) < len(set(names)):
                return False
            labels = np.fromiter(map(known.__getitem__, names), bool, len(names))
        self.n_columns = count
        self.add(tokens[0::count], tokens[1::count], values, labels)
        return True

    def add_lines(self, block: bytes, number: int) -> None:
        """Add the lines of ``block`` (complete lines, the first being line ``number + 1``) one
        at a time, with the rules and messages of the line readers.

        Lines are taken from the block lazily and their trials added :data:`_LINES_AT_A_TIME`
        at a time: the block's lines and fields held as Python objects at once took 30 to 47
        times its size (lines of 19 and 7 bytes)."""
        models, probes, scores, labels = [], [], [], []
        try:
            for raw in io.BytesIO(block):  # (each line with its newline; the last may lack it)
                number += 1
                fields = self._fields(raw, number)
                where = f"{self.path} line {number}"
                if not fields or is_comment(fields[0], where):
                    continue
                self.check_columns(len(fields), where)
                models.append(fields[0])  # (a pair that repeats is named before a bad score)
                probes.append(fields[1])
                scores.append(_parse_score(fields[2], where))
                if len(fields) == 4:
                    labels.append(_parse_label(fields[3], where))
                if len(models) == _LINES_AT_A_TIME:
                    self._add_batch(models, probes, scores, labels)
        finally:  # the lines read, and on an error the pair of the line refused
            self._add_batch(models, probes, scores, labels)

    def _add_batch(self, models: list, probes: list, scores: list, labels: list) -> None:
        """Add the trials of the lists (a refused line's pair with a score of 0, no label) and
        empty them."""
        if models:
            scores += [0.0] * (len(models) - len(scores))
            labels += [False] * (len(models) - len(labels))
            self.add(models, probes, np.array(scores),
                     np.array(labels, dtype=bool) if self.n_columns == 4 else None)
        for batch in (models, probes, scores, labels):
            batch.clear()

    def _fields(self, raw: bytes, number: int) -> list:
        if len(raw) > self.max_line:
            raise FeatureError(f"{self.path} line {number}: longer than {self.max_line} bytes; "
                               "not a score file")
        try:
            return raw.decode("utf-8").split()
        except UnicodeDecodeError:
            raise FeatureError(f"{self.path} line {number}: not UTF-8 text; not a score "
                               "file") from None


def blocks(path: str, max_line: int, what: str = "score file"):
    """``(number of lines before, bytes)``: the file in blocks of complete lines (the last may
    lack its newline), a leading byte-order mark left out.  A line longer than ``max_line``
    bytes is refused before it is read whole (not a ``what``)."""
    with open_regular(path) as f:
        carry, lines_before = f.read(len(_BOM)), 0
        if carry == _BOM:
            carry = b""
        while True:
            data = f.read(_BLOCK)
            block = carry + data
            end = block.rfind(b"\n") + 1
            if not data:
                end = len(block)
            if end:
                yield lines_before, block[:end]
                lines_before += block.count(b"\n", 0, end)
            carry = block[end:]
            if len(carry) > max_line:
                raise FeatureError(f"{path} line {lines_before + 1}: longer than {max_line} "
                                   f"bytes; not a {what}")
            if not data:
                return


def first_repeat(models: np.ndarray, probes: np.ndarray, n_probes: int):
    """``(first, second)``: the first trial that repeats a model-probe pair, and the trial it
    repeats (positions), or None; ``models`` and ``probes`` are the ids' numbers (n_trials,).
    The pairs are numbered and sorted (no Python object per trial)."""
    if not models.size:
        return None
    pairs = models * n_probes
    pairs += probes
    order = np.argsort(pairs, kind="stable")  # each pair's trials in file order
    pairs = pairs[order]
    again = np.flatnonzero(pairs[1:] == pairs[:-1]) + 1  # (positions of repeats, sorted)
    if not again.size:
        return
    repeat = int(again[np.argmin(order[again])])  # the repeat that comes first in the file
    second = int(order[repeat])
    first = int(order[np.searchsorted(pairs, pairs[repeat])])  # the pair's first trial
    return first, second


def _check_repeats(path: str, columns: _Columns):
    """A :class:`FeatureError` if a model-probe pair of ``columns`` repeats; else the ids and
    the trials' numbers of them: ``(model ids, probe ids, model numbers, probe numbers)``."""
    model_numbers = np.frombuffer(columns.models, dtype=np.int64)
    probe_numbers = np.frombuffer(columns.probes, dtype=np.int64)
    model_ids, probe_ids = list(columns.model_ids), list(columns.probe_ids)
    repeat = first_repeat(model_numbers, probe_numbers, len(probe_ids))
    if repeat is not None:
        first, second = repeat
        lines = line_numbers(path, repeat)
        pair = f"{model_ids[model_numbers[second]]} {probe_ids[probe_numbers[second]]}"
        raise FeatureError(f"{path} line {lines[1]}: trial {show_key(pair)} repeats line "
                           f"{lines[0]} (each model-probe pair must appear once)")
    return model_ids, probe_ids, model_numbers, probe_numbers


def ids_by_number(names: list, numbers: np.ndarray) -> list:
    """The list of ``names[k]`` for each number (the trials' references to the distinct ids),
    converted a block at a time (no Python int per trial held at once).

    Parameters
    ----------
    names : list of str
        The distinct ids, in the order :func:`id_numbering` numbered them.
    numbers : ndarray of shape (n_trials,)
        Integer indices into ``names``.

    Returns
    -------
    list of str
    """
    out = []
    for start in range(0, numbers.size, _IDS_AT_A_TIME):
        out.extend(map(names.__getitem__, numbers[start:start + _IDS_AT_A_TIME].tolist()))
    return out


def line_numbers(path: str, trials) -> list:
    """The line numbers of the trials (0-based positions among the file's trial lines)."""
    wanted, found, k = sorted(set(trials)), {}, -1
    with open_regular(path) as f:
        for number, raw in enumerate(f, start=1):
            raw = raw.removeprefix(_BOM) if number == 1 else raw
            fields = raw.decode("utf-8", "replace").split()
            if fields and not is_comment(fields[0], f"{path} line {number}"):
                k += 1
                if k in wanted:
                    found[k] = number
                    if len(found) == len(wanted):
                        break
    return [found[t] for t in trials]


def read_score_columns(path, max_line: int):
    """``(models, probes, scores, labels)`` of a score file: lists of ids (each distinct id one
    object), float64 (n,) and bool (n,) or None; see :func:`emkit.io.lists.read_scores`."""
    path = os.fspath(path)
    columns = _Columns(path, max_line)
    try:
        for lines_before, block in blocks(path, max_line):
            if not columns.add_plain_block(block):
                columns.add_lines(block, lines_before)
    except FeatureError:
        _check_repeats(path, columns)  # a pair repeated before the refused line is named first
        raise
    if not columns.models:
        raise FeatureError(f"{path}: the score file is empty")
    model_ids, probe_ids, model_numbers, probe_numbers = _check_repeats(path, columns)
    models = ids_by_number(model_ids, model_numbers)
    probes = ids_by_number(probe_ids, probe_numbers)
    scores = np.frombuffer(columns.scores, dtype=np.float64)
    labels = None
    if columns.n_columns == 4:
        labels = np.frombuffer(columns.labels, dtype=np.int8).view(bool)
    return models, probes, scores, labels


def score_text(models, probes, scores, labels, start: int, stop: int) -> str:
    """The lines of trials ``start:stop``: ``model probe score [target|nontarget]``, the score
    written as the shortest text that reads back as the same float64."""
    texts = map(repr, scores[start:stop].tolist())
    if labels is None:
        rows = map("{} {} {}\n".format, models[start:stop], probes[start:stop], texts)
    else:
        part = labels[start:stop]
        part = part.tolist() if isinstance(part, np.ndarray) else part
        names = map(("nontarget", "target").__getitem__, map(bool, part))
        rows = map("{} {} {} {}\n".format, models[start:stop], probes[start:stop], texts, names)
    return "".join(rows)
