"""The labels of a score file's trials, looked up in a key (a labelled trial list), at the sizes
of evaluation lists (10^7 trials).

The key is read a block of lines at a time, as :mod:`emkit.io.score_files` reads scores: each
distinct id is numbered once, and a trial is kept as two int64 numbers and a label (no Python
object per trial).  A model-probe pair listed twice in the key is found by sorting the pairs'
numbers.  The key's ids are then given the score file's numbers (an id the score file does not
have cannot match) and the trials matched by sorting and ``searchsorted`` on int64 pair codes
``model_number * n_probes + probe_number``.  Rules and messages are those of
:func:`emkit.io.lists.read_trials`, which reads any trial list (labelled or not) with this
reader, keeping each trial's line number in an ``array('q')``.
"""

from __future__ import annotations

import io
import os
from array import array

import numpy as np

from .score_files import (blocks, fields_per_line, first_repeat, id_numbering, ids_by_number,
                          line_numbers)
from .untrusted import FeatureError, is_comment, show_key

#: (Key: what emkit.io.lists.read_key returns; the readers here are emkit.io.lists')
__all__ = ["Key"]

_LABELS = ("target", "nontarget")
_WHAT = "trial list"
_LINES_AT_A_TIME = 4096  # lines of a block read one at a time, added together


class Key:
    """A key's trials (read so far, then whole): the ids' numbers and the labels; read once by
    :func:`read_key`, it labels any number of score files (:func:`key_labels` only reads it).

    Parameters
    ----------
    path : str
        The key's file (named in messages).
    max_line : int
        The longest line (bytes) accepted.
    keep_lines : bool, default False
        Also keep each trial's line number (``lines``), as a trial list's reader needs.
    """

    def __init__(self, path: str, max_line: int, *, keep_lines: bool = False):
        self.path, self.max_line = path, max_line
        self.models, self.probes, self.labels = array("q"), array("q"), array("b")
        self.model_ids, self.probe_ids = id_numbering(), id_numbering()
        self.n_columns = None
        self.lines = array("q") if keep_lines else None  # each trial's line, when kept

    def add(self, models: list, probes: list, labels) -> None:
        """Add trials ``models[k] probes[k]``, numbering ids not seen before.

        Parameters
        ----------
        models, probes : list of str
            The model and probe id of each trial, (n,).
        labels : array-like of shape (n,)
            Bool, True for a target trial.
        """
        for numbers, ids, names in ((self.models, self.model_ids, models),
                                    (self.probes, self.probe_ids, probes)):
            numbers.frombytes(np.fromiter(map(ids.__getitem__, names), np.int64,
                                          len(names)).tobytes())
        self.labels.frombytes(np.array(labels, dtype=bool).tobytes())

    def add_plain_block(self, block: bytes, number: int) -> bool:
        """Add the lines of ``block`` at once if every one is ``model probe [label]`` in ASCII,
        not a comment, with the file's number of columns and a known label.

        Parameters
        ----------
        block : bytes
            Whole lines of the key.
        number : int
            The number of the line before the block's first.

        Returns
        -------
        bool
            Whether the lines were added (False: nothing was; :meth:`add_lines` reads them).
        """
        if not block.endswith(b"\n") or not block.isascii() or b"#" in block:
            return False
        count = fields_per_line(block, self.max_line)
        if count not in (2, 3) or self.n_columns not in (None, count):
            return False
        tokens = block.decode("ascii").split()
        if count == 3:
            names = tokens[2::3]
            known = {name: name.lower() == "target" for name in set(names)
                     if name.lower() in _LABELS}
            if len(known) < len(set(names)):
                return False
            labels = np.fromiter(map(known.__getitem__, names), bool, len(names))
        else:
            labels = np.zeros(len(tokens) // 2, dtype=bool)
        self.n_columns = count
        self.add(tokens[0::count], tokens[1::count], labels)
        if self.lines is not None:  # (a plain block has no empty or comment line)
            self.lines.frombytes(np.arange(number + 1, number + 1 + labels.size,
                                           dtype=np.int64).tobytes())  # (array("q"))
        return True

    def add_lines(self, block: bytes, number: int) -> None:
        """Add the lines of ``block`` one at a time, with the rules and messages of
        :func:`emkit.io.lists.read_trials`; taken from the block lazily and added
        :data:`_LINES_AT_A_TIME` at a time, as the score reader does.

        Parameters
        ----------
        block : bytes
            Lines of the key (the last may lack its newline).
        number : int
            The number of the line before the block's first.

        Raises
        ------
        FeatureError
            A line that is not ``model-id probe-id [target|nontarget]`` (naming it).
        """
        models, probes, labels = [], [], []
        try:
            for raw in io.BytesIO(block):  # (each line with its newline; the last may lack it)
                number += 1
                where = f"{self.path} line {number}"
                fields = self._fields(raw, where)
                if not fields or is_comment(fields[0], where):
                    continue
                if len(fields) not in (2, 3) or self.n_columns not in (None, len(fields)):
                    expected = "2 or 3" if self.n_columns is None else str(self.n_columns)
                    raise FeatureError(f"{where}: expected {expected} columns 'model-id probe-id "
                                       f"[target|nontarget]'; got {len(fields)}")
                self.n_columns = len(fields)
                if self.lines is not None:
                    self.lines.append(number)
                # (the pair is kept before its label is read: a repeat is named before a bad label)
                models.append(fields[0])
                probes.append(fields[1])
                labels.append(self.n_columns == 3 and _parse_label(fields[2], where))
                if len(models) == _LINES_AT_A_TIME:
                    self._add_batch(models, probes, labels)
        finally:
            self._add_batch(models, probes, labels)

    def _add_batch(self, models: list, probes: list, labels: list) -> None:
        """Add the trials of the lists (a refused line's pair as a non-target) and empty them."""
        labels += [False] * (len(models) - len(labels))
        if models:
            self.add(models, probes, labels)
        for batch in (models, probes, labels):
            batch.clear()

    def _fields(self, raw: bytes, where: str) -> list:
        if len(raw) > self.max_line:
            raise FeatureError(f"{where}: longer than {self.max_line} bytes; not a {_WHAT}")
        try:
            return raw.decode("utf-8").split()
        except UnicodeDecodeError:
            raise FeatureError(f"{where}: not UTF-8 text; not a {_WHAT}") from None

    def check_repeats(self) -> None:
        """A :class:`FeatureError` naming both lines if a model-probe pair repeats."""
        models = np.frombuffer(self.models, dtype=np.int64)
        probes = np.frombuffer(self.probes, dtype=np.int64)
        repeat = first_repeat(models, probes, len(self.probe_ids))
        if repeat is not None:
            first, second = repeat
            lines = line_numbers(self.path, repeat)
            pair = f"{list(self.model_ids)[models[second]]} {list(self.probe_ids)[probes[second]]}"
            raise FeatureError(f"{self.path} line {lines[1]}: trial {show_key(pair)} repeats line "
                               f"{lines[0]} (each model-probe pair must appear once)")


def _parse_label(text: str, where: str) -> bool:
    low = text.lower()
    if low not in _LABELS:
        raise FeatureError(f"{where}: the label must be 'target' or 'nontarget'; got {show_key(text)}")
    return low == "target"


def _read(path: str, max_line: int, *, keep_lines: bool = False) -> Key:
    """The trial list ``path``, labelled or not, its repeats and emptiness checked."""
    key = Key(path, max_line, keep_lines=keep_lines)
    try:
        for lines_before, block in blocks(path, max_line, _WHAT):
            if not key.add_plain_block(block, lines_before):
                key.add_lines(block, lines_before)
    except FeatureError:
        key.check_repeats()  # a pair repeated before the refused line is named first
        raise
    key.check_repeats()
    if not key.models:
        raise FeatureError(f"{path}: the trial list is empty")
    return key


def read_key(path, max_line: int) -> Key:
    """The labelled trial list ``path`` (a :class:`FeatureError` naming the line for anything
    else: a repeated pair, a bad label, no label column, ...), lines of at most ``max_line``
    bytes."""
    path = os.fspath(path)
    key = _read(path, max_line)
    if key.n_columns != 3:
        raise FeatureError(f"{path}: trials need a third column 'target' or 'nontarget'")
    return key


def read_trial_columns(path, max_line: int):
    """``(models, probes, labels, lines)`` of the trial list ``path`` (see
    :func:`emkit.io.lists.read_trials`): lists of ids (each distinct id one object), bool
    (n_trials,) or None without a label column, and each trial's line (``array('q')``)."""
    path = os.fspath(path)
    key = _read(path, max_line, keep_lines=True)
    models = ids_by_number(list(key.model_ids), np.frombuffer(key.models, np.int64))
    probes = ids_by_number(list(key.probe_ids), np.frombuffer(key.probes, np.int64))
    labels = None
    if key.n_columns == 3:
        labels = np.frombuffer(key.labels, np.int8).view(bool)
    return models, probes, labels, key.lines


def _in_numbering(ids, numbering: dict) -> np.ndarray:
    """The number of each of ``ids`` in ``numbering``, -1 for an id it lacks (int64)."""
    return np.fromiter((numbering.get(name, -1) for name in ids), np.int64, len(ids))


def key_labels(scores_path, models: list, probes: list, key: Key) -> np.ndarray:
    """The label (bool (n_trials,), True: target) of each trial ``models[k] probes[k]`` of the
    score file ``scores_path``, looked up in ``key`` (:func:`read_key`).

    A trial missing from the key is a :class:`FeatureError` naming the score file and the key.
    """
    scores_path = os.fspath(scores_path)
    score_models, score_probes = id_numbering(), id_numbering()
    trial_codes = np.fromiter(map(score_models.__getitem__, models), np.int64, len(models))
    probe_numbers = np.fromiter(map(score_probes.__getitem__, probes), np.int64, len(probes))
    n_probes = max(len(score_probes), 1)
    trial_codes *= n_probes
    trial_codes += probe_numbers
    del probe_numbers
    # the key's trials in the score file's numbering; -1 where an id is not in the score file
    key_models = _in_numbering(key.model_ids, score_models)[np.frombuffer(key.models, np.int64)]
    key_probes = _in_numbering(key.probe_ids, score_probes)[np.frombuffer(key.probes, np.int64)]
    known = np.flatnonzero((key_models >= 0) & (key_probes >= 0))
    key_codes = key_models[known] * n_probes + key_probes[known]
    del key_models, key_probes
    order = np.argsort(key_codes)
    key_codes = key_codes[order]
    target = np.frombuffer(key.labels, np.int8).view(bool)[known[order]]
    del known, order
    found = np.searchsorted(key_codes, trial_codes)
    found[found == key_codes.size] = 0
    missing = np.flatnonzero(key_codes[found] != trial_codes) if key_codes.size else \
        np.arange(trial_codes.size)
    if missing.size:
        k = int(missing[0])
        raise FeatureError(f"{scores_path}: trial {show_key(models[k] + ' ' + probes[k])} is not in "
                           f"the key {key.path} ({missing.size} trials missing)")
    return target[found]
