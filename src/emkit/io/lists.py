"""Id lists, trial lists and score files.

Text files (id lists, trial lists, scores) are whitespace-separated columns; empty lines and
comments (``#`` then white space: ``# text``) are skipped, and any other line starting with ``#``
is refused: Kaldi's lists have no comments, and read it as an entry whose id starts with ``#``.  The readers open regular files only (a named pipe or a
device is refused, never opened), read UTF-8 and refuse a line longer than :data:`MAX_LINE` bytes
before reading it whole (see :mod:`emkit.io.untrusted`).  Every writer here writes atomically (a
temporary file in the target directory, renamed when complete), so an error never leaves a partial
file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .key_files import Key, key_labels, read_key as _read_key_file, read_trial_columns
from .score_files import read_score_columns, score_text
from .untrusted import FeatureError, is_comment, show_key, show_path, text_lines

#: (FeatureError: what the readers raise, re-exported)
__all__ = ["read_id_map", "count_unlabelled", "read_id_lists", "Trials", "read_trials", "format_score",
           "write_scores", "read_scores", "check_writable", "read_key", "labels_from_key", "LABELS",
           "FeatureError"]

LABELS = ("target", "nontarget")
#: Longest line (bytes) of an id list, trial list or score file; a longer one is refused unread.
MAX_LINE = 1 << 20
#: Trials whose lines write_scores makes and writes at a time.
WRITE_TRIALS = 1 << 16


def check_writable(path) -> Path:
    """Fail early, before any work, if ``path`` cannot be written.

    A file is really created (and removed) in the directory, since ``os.access`` says yes to
    root even on a read-only file system; ``path`` itself is not touched.

    Parameters
    ----------
    path : str or path-like
        The file to be written later.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    FileNotFoundError
        Its directory does not exist.
    IsADirectoryError
        ``path`` is a directory.
    PermissionError
        No file can be created in its directory.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot write {str(path)!r}: directory {str(directory)!r} does "
                                "not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {str(path)!r}: no write permission in directory "
                              f"{str(directory)!r}")
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {str(path)!r}: it is a directory")
    try:  # os.access says yes to root everywhere: a file really made there tells (a read-only
        # file system, /sys, a full quota), before hours of training rather than after
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".emkit-probe-"):
            pass
    except OSError as exc:
        raise PermissionError(f"cannot write {str(path)!r}: cannot create a file in directory "
                              f"{str(directory)!r} ({exc.strerror or type(exc).__name__})") from None
    return path


def _rows(path, what: str):
    """(line number, fields) of the non-empty, non-comment lines of a text file (a regular file,
    lines of at most :data:`MAX_LINE` bytes; a line starting with '#' and not '# ' is refused:
    :func:`~emkit.io.untrusted.is_comment`)."""
    for number, line in text_lines(path, MAX_LINE, what):
        fields = line.split()
        if fields and not is_comment(fields[0], f"{os.fspath(path)} line {number}"):
            yield number, fields


def read_id_map(path) -> dict:
    """Read a two-column file ``id value`` (e.g. Kaldi's ``utt2spk``).

    Parameters
    ----------
    path : str or path-like
        A text file (see the module docstring for comments and limits).

    Returns
    -------
    dict of str to str
        ``{id: value}``, in file order.

    Raises
    ------
    FeatureError
        Not a regular file, not UTF-8, a line over :data:`MAX_LINE` bytes or starting with
        ``#`` but not ``# ``; a line without exactly 2 columns; an id listed twice; no entry.
    """
    out = {}
    for number, fields in _rows(path, "two-column list"):
        if len(fields) != 2:
            raise FeatureError(f"{show_path(path)} line {number}: expected 2 columns 'utterance-id "
                               f"label'; got {len(fields)}")
        if fields[0] in out:
            raise FeatureError(f"{show_path(path)} line {number}: {show_key(fields[0])} is listed "
                               "twice")
        out[fields[0]] = fields[1]
    if not out:
        raise FeatureError(f"{show_path(path)}: the list is empty")
    return out


def count_unlabelled(features, labels: dict, labels_path) -> int:
    """How many utterances of the features have no label.

    Parameters
    ----------
    features : container of str
        The features' utterance ids (a dict of utterances, a set...).
    labels : dict
        ``{utterance id: label}``, as :func:`read_id_map` reads ``labels_path``.
    labels_path : str or path-like
        The labels' file, named in the error message.

    Returns
    -------
    int
        The number of ids of ``features`` not in ``labels``.

    Raises
    ------
    FeatureError
        A labelled utterance absent from the features (a labels file of other data, or
        features missing).
    """
    missing = [u for u in labels if u not in features]
    if missing:
        raise FeatureError(f"{show_path(labels_path)}: utterance {show_key(missing[0])} is not in the "
                           f"features ({len(missing)} of {len(labels)} listed utterances are "
                           "missing): a labels file of other data, or utterances left out of the "
                           "features (by emkit features --keep-going, or by their removal from "
                           "wav.scp); remove their lines, or give their features")
    return len(features) - len(labels)


def read_id_lists(path) -> dict:
    """Read a file of lines ``key id1 id2 ...`` (e.g. Kaldi's ``spk2utt``).

    Parameters
    ----------
    path : str or path-like
        A text file (see the module docstring for comments and limits).

    Returns
    -------
    dict of str to list of str
        ``{key: [ids]}``, in file order.

    Raises
    ------
    FeatureError
        Not a regular file, not UTF-8, a line over :data:`MAX_LINE` bytes or starting with
        ``#`` but not ``# ``; a line of fewer than 2 columns; a key listed twice; no entry.
    """
    out = {}
    for number, fields in _rows(path, "list of ids"):
        if len(fields) < 2:
            raise FeatureError(f"{show_path(path)} line {number}: expected 'model-id utterance-id "
                               f"[utterance-id ...]'; got {show_key(' '.join(fields))}")
        if fields[0] in out:
            raise FeatureError(f"{show_path(path)} line {number}: model {show_key(fields[0])} is listed "
                               "twice")
        out[fields[0]] = fields[1:]
    if not out:
        raise FeatureError(f"{show_path(path)}: the list is empty")
    return out


@dataclass(frozen=True)
class Trials:
    """A trial list: ``models[i]`` against ``probes[i]``; ``labels[i]`` True for a target trial.

    ``len(trials)`` is the number of trials.

    Attributes
    ----------
    models : list of str
        The model id of each trial.
    probes : list of str
        The probe id of each trial.
    labels : ndarray of shape (n_trials,) or None
        Bool, True for a target trial; None when the list has no label column.
    lines : sequence of int or None
        The line of each trial in its file, when read from one (for messages); an
        ``array('q')`` from :func:`read_trials` (8 bytes a trial, not a Python int).
    """

    models: list
    probes: list
    labels: np.ndarray | None
    lines: Sequence[int] | None = None  # the line of each trial in its file, when read from one

    def __len__(self) -> int:
        return len(self.models)

    def where(self, k: int) -> str:
        """Trial ``k`` for a message: its line in the file, else its position.

        Parameters
        ----------
        k : int
            The trial's index, from 0.

        Returns
        -------
        str
            ``"line <n>"``, or ``"trial <k + 1>"`` when the lines are not known.
        """
        return f"line {self.lines[k]}" if self.lines else f"trial {k + 1}"


def read_trials(path, *, require_labels: bool = False) -> Trials:
    """Read a trial list of ``model-id probe-id [target|nontarget]`` lines.

    Parameters
    ----------
    path : str or path-like
        A text file (see the module docstring for comments and limits); all lines have a label
        (case-insensitive) or none does.
    require_labels : bool, keyword-only, default False
        Refuse a list without labels (a key).

    Returns
    -------
    Trials
        With its ``lines``; ``labels`` a bool array of shape (n_trials,) (True: target), or None
        when the lines have no label column.

    Raises
    ------
    FeatureError
        Not a regular file, not UTF-8, a line over :data:`MAX_LINE` bytes or starting with
        ``#`` but not ``# ``; a line of other than 2 or 3 columns (or not the first line's); a label
        other than target/nontarget; a model-probe pair listed twice (naming both lines); no
        trial; no labels when ``require_labels``.
    """
    path = os.fspath(path)
    models, probes, labels, lines = read_trial_columns(path, MAX_LINE)
    if require_labels and labels is None:
        raise FeatureError(f"{path}: trials need a third column 'target' or 'nontarget'")
    return Trials(models, probes, labels, lines)


def read_key(key_path) -> Key:
    """Read a key (a labelled trial list) for :func:`labels_from_key`, to label several score
    files with one reading of it.

    Parameters
    ----------
    key_path : str or path-like
        ``model-id probe-id target|nontarget`` lines.

    Returns
    -------
    Key
        The key's trials, held as int64 numbers of its distinct ids and bool labels.

    Raises
    ------
    FeatureError
        Not a labelled trial list (naming the line): a repeated pair, a bad label, no labels.
    """
    return _read_key_file(key_path, MAX_LINE)


def labels_from_key(scores_path, trials: Trials, key) -> np.ndarray:
    """The target/non-target label of every trial of a score file, looked up in a key.

    The key is read and matched in int64 numbers, not Python objects per trial (see
    :mod:`emkit.io.key_files`).

    Parameters
    ----------
    scores_path : str or path-like
        The score file ``trials`` was read from (named in messages).
    trials : Trials
        Its trials (:func:`read_scores`).
    key : str, path-like or Key
        The path of a labelled trial list, or a key :func:`read_key` read (to label several
        score files with one reading).

    Returns
    -------
    ndarray of shape (n_trials,)
        Bool, True for a target trial.

    Raises
    ------
    FeatureError
        A trial missing from the key (naming the score file and the key), or a key that is not
        a labelled trial list.
    """
    key = key if isinstance(key, Key) else read_key(key)
    return key_labels(scores_path, trials.models, trials.probes, key)


def format_score(value: float) -> str:
    """The shortest text that reads back as the same float64.

    Parameters
    ----------
    value : float

    Returns
    -------
    str
        ``repr(float(value))``.
    """
    return repr(float(value))


def write_scores(path, models, probes, scores, labels=None) -> None:
    """Write ``model probe score [target|nontarget]`` lines atomically.

    The text is made and written :data:`WRITE_TRIALS` trials at a time, so that it is never held
    whole; scores are written as :func:`format_score` writes them.

    Parameters
    ----------
    path : str or path-like
        The score file; replaced only once complete.
    models, probes : sequence of str
        The model and probe id of each trial, (n_trials,).
    scores : array-like of shape (n_trials,)
        Finite scores.
    labels : array-like of shape (n_trials,), optional
        Bools (True: target) that add the fourth column; None (default) leaves it out.

    Raises
    ------
    ValueError
        Lengths that differ, or a NaN or infinite score (nothing is written).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if not (len(models) == len(probes) == scores.shape[0]):
        raise ValueError(f"models, probes and scores must have one length; got {len(models)}, "
                         f"{len(probes)} and {scores.shape[0]}")
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:  # read_scores (and every score reader) would refuse the file
        k = int(bad[0])
        raise ValueError(f"scores must be finite; got {bad.size} NaN or infinite score(s), the "
                         f"first {scores[k]} for model {show_key(models[k])} and probe "
                         f"{show_key(probes[k])}; nothing was written to {os.fspath(path)!r}")
    with atomic_write(path) as f:
        for start in range(0, scores.shape[0], WRITE_TRIALS):
            f.write(score_text(models, probes, scores, labels, start, start + WRITE_TRIALS))


def read_scores(path):
    """Read a score file of ``model probe score [target|nontarget]`` lines.

    A score is ASCII text as Kaldi and BOSARIS write it (``-1.5``, ``2e-3``).  Each distinct
    model and probe id is one string object, which every trial of the lists refers to (see
    :mod:`emkit.io.score_files`).

    Parameters
    ----------
    path : str or path-like
        A text file (see the module docstring for comments and limits).

    Returns
    -------
    trials : Trials
        The trials, ``labels`` None when the file has no label column.
    scores : ndarray of shape (n_trials,)
        Float64, finite.

    Raises
    ------
    FeatureError
        Not a regular file, not UTF-8, a line over :data:`MAX_LINE` bytes or starting with
        ``#`` but not ``# ``; a score other Python ``float`` text would take (``1_0``, non-ASCII
        digits) or not finite, naming the line and column; a model-probe pair listed twice
        (naming both lines).
    """
    models, probes, scores, labels = read_score_columns(path, MAX_LINE)
    return Trials(models, probes, labels), scores
