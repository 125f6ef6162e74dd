"""Reading features, id lists and trial lists; writing and reading score files.

Features are named matrices (one per utterance, ``(n_frames, n_features)``), read from:

``.npy``
    One 2-D array: one utterance, named after the file (``spk1_utt3.npy`` -> ``spk1_utt3``).
``.npz``
    One utterance per array, named by its key.  A file whose only array is ``arr_0``
    (``np.savez(path, X)``) is one utterance named after the file.
``.h5``, ``.hdf5``, ``.hdf``
    One utterance per 2-D numeric dataset, named by its path in the file without the leading
    ``/`` (``spk1/utt3``).  A file whose only dataset is ``array`` (bob's convention) is one
    utterance named after the file.
``.ark`` (or ``ark:PATH``)
    A Kaldi archive, binary (``FM``/``DM`` float matrices, ``FV``/``DV`` vectors read as one
    row, and the compressed ``CM``/``CM2``/``CM3`` matrices) or text (``key [ rows ]``).
``.scp`` (or ``scp:PATH``)
    A Kaldi script file: ``key path.ark:offset`` lines, optionally with a row range
    ``[first:last]`` or row and column ranges ``[r1:r2,c1:c2]`` (inclusive, as in Kaldi);
    ``key path`` without an offset reads the first matrix of ``path``.  Piped commands
    (``cmd |``) are not supported.

Every matrix is returned as float64.  Kaldi's binary format is read by emkit's own code (no
kaldiio): after the key and a space, ``\\0B``, a type token (``FM `` ...), and for plain
matrices two int32 sizes, each preceded by a size byte (4), then the values row by row.

Feature files are treated as untrusted (:mod:`emkit.io.untrusted`): regular files only (no pipes
or devices, also when an scp points to one), every size a header declares checked against the
bytes present before anything is allocated, at most ``max_utterance_bytes`` (default 2 GiB as
float64) per utterance, no pickles, and errors (:class:`FeatureError`, an
:class:`~emkit.io.errors.InvalidFileError`) that name the file and the utterance without quoting
the file's bytes.  An scp may name any regular file, as in Kaldi: use scp files you trust.

Text files (id lists, trial lists, scores) are whitespace-separated columns; empty lines and
lines starting with ``#`` are skipped.  Every writer here writes atomically (a temporary file in
the target directory, renamed when complete), so an error never leaves a partial file.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io.atomic import atomic_write
from .io.errors import InvalidFileError  # noqa: F401  (importable from here too)
from .io.kaldi import read_kaldi_ark, read_kaldi_scp
from .io.kaldi import strip_specifier as _strip_specifier
from .io.numpy_files import read_npy, read_npz
from .io.untrusted import (MAX_UTTERANCE_BYTES, FeatureError, as_features, check_limit,
                           check_regular, open_regular, show_key)

__all__ = ["FeatureError", "read_features", "read_feature_sources", "read_kaldi_ark",
           "read_kaldi_scp", "read_id_map", "read_id_lists", "Trials", "read_trials",
           "write_scores", "read_scores", "atomic_write", "check_writable"]

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
LABELS = ("target", "nontarget")


# ---------------------------------------------------------------------------------------------
# atomic output
# ---------------------------------------------------------------------------------------------


def check_writable(path) -> Path:
    """Fail early (``PermissionError``/``FileNotFoundError``) if ``path`` cannot be created."""
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
    return path


# ---------------------------------------------------------------------------------------------
# feature files (the readers live in emkit.io: kaldi, numpy_files, hdf5_features, untrusted)
# ---------------------------------------------------------------------------------------------


def _read_npy(path: Path, limit: int) -> dict:
    return {path.stem: read_npy(path, max_utterance_bytes=limit, float64=True,
                                where=f"{path}: utterance {path.stem!r}")}


def _read_npz(path: Path, limit: int) -> dict:
    arrays = read_npz(path, max_utterance_bytes=limit, float64=True)
    if list(arrays) == ["arr_0"]:
        return {path.stem: arrays["arr_0"]}
    return arrays


def _read_h5(path: Path, limit: int) -> dict:
    from .io.hdf5_features import read_hdf5_features

    return read_hdf5_features(path, max_utterance_bytes=limit)


def _sniff(path: Path) -> str:
    with open_regular(path) as f:
        head = f.read(8)
    if head.startswith(_NPY_MAGIC):
        return "npy"
    if head.startswith(_ZIP_MAGIC):
        return "npz"
    if head.startswith(_HDF5_MAGIC):
        return "h5"
    return ""


_SUFFIXES = {".npy": "npy", ".npz": "npz", ".h5": "h5", ".hdf5": "h5", ".hdf": "h5", ".ark": "ark",
             ".scp": "scp"}
_READERS = {"npy": _read_npy, "npz": _read_npz, "h5": _read_h5,
            "ark": lambda p, limit: read_kaldi_ark(p, max_utterance_bytes=limit),
            "scp": lambda p, limit: read_kaldi_scp(p, max_utterance_bytes=limit)}


def read_features(path, *, n_features: int | None = None,
                  max_utterance_bytes: int = MAX_UTTERANCE_BYTES) -> dict:
    """Utterances of one feature file as ``{id: (n_frames, n_features) float64 array}``.

    The format comes from the extension (or an ``ark:``/``scp:`` prefix; otherwise the file's
    first bytes): see the module docstring.  ``n_features``, when given, is checked for every
    utterance.  Every utterance has at least one frame and one feature, finite values, and at
    most ``max_utterance_bytes`` as float64 (``rows * cols * 8``; default 2 GiB).  Raises
    ``FileNotFoundError`` for a missing file and :class:`FeatureError` (an
    :class:`~emkit.io.errors.InvalidFileError`) for an unreadable, inconsistent or oversized
    one, naming the file and the utterance, never quoting the file's bytes.
    """
    limit = check_limit(max_utterance_bytes)
    text = os.fspath(path)
    kind = ""
    m = re.match(r"^(ark|scp)(,[a-z]+)*:", text)
    if m:
        kind = m.group(1)
        text = _strip_specifier(text, "archive")
    p = Path(text)
    if not os.path.lexists(text):
        raise FileNotFoundError(f"no such feature file: {text!r}")
    try:
        check_regular(text)
    except FileNotFoundError:  # a dangling symbolic link
        raise FeatureError(f"{text}: a symbolic link to a missing file") from None
    kind = kind or _SUFFIXES.get(p.suffix.lower(), "") or _sniff(p)
    if kind not in _READERS:
        raise FeatureError(f"{text}: unknown feature format (expected .npy, .npz, .h5/.hdf5, .ark "
                           "or .scp)")
    raw = _READERS[kind](p, limit)
    if not raw:
        raise FeatureError(f"{text}: contains no feature matrix")
    checked = kind in ("ark", "scp")  # the Kaldi readers return finite float64 already
    return {key: as_features(value, f"{text}: utterance {show_key(key)}", n_features,
                             check_finite=not checked)
            for key, value in raw.items()}


def read_feature_sources(paths, *, n_features: int | None = None,
                         max_utterance_bytes: int = MAX_UTTERANCE_BYTES) -> dict:
    """Utterances of several feature files, merged; an id found in two files is an error.

    All utterances must have one feature dimension (``n_features`` when given, otherwise that of
    the first utterance read).  ``max_utterance_bytes``: see :func:`read_features`.
    """
    merged, origin = {}, {}
    found = n_features
    for path in paths:
        for key, array in read_features(path, n_features=n_features,
                                        max_utterance_bytes=max_utterance_bytes).items():
            if key in merged:
                raise FeatureError(f"utterance {key!r} is in both {origin[key]} and "
                                   f"{os.fspath(path)}")
            if found is None:
                found = array.shape[1]
            elif array.shape[1] != found:
                first = next(iter(origin.values()))
                raise FeatureError(f"{os.fspath(path)}: utterance {key!r} has {array.shape[1]} "
                                   f"features per frame, but those of {first} have {found}")
            merged[key] = array
            origin[key] = os.fspath(path)
    if not merged:
        raise FeatureError("no feature file given")
    return merged


# ---------------------------------------------------------------------------------------------
# id lists, trials and scores
# ---------------------------------------------------------------------------------------------


#: Files of a directory read as features (not ``.scp``: its archives would be read twice).
DIRECTORY_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5", ".hdf", ".ark")


def list_feature_directory(path) -> list:
    """The feature files directly in directory ``path`` (not recursive), sorted by name.

    Files whose extension is one of :data:`DIRECTORY_SUFFIXES` (case-insensitive); hidden files
    (``.name``) are skipped.  A directory without any is a :class:`FeatureError`.
    """
    path = os.fspath(path)
    names = sorted(entry.name for entry in os.scandir(path)
                   if not entry.name.startswith(".") and entry.is_file()
                   and os.path.splitext(entry.name)[1].lower() in DIRECTORY_SUFFIXES)
    if not names:
        raise FeatureError(f"{path}: the directory holds no feature file (expected "
                           f"{', '.join(DIRECTORY_SUFFIXES)} files; subdirectories are not read)")
    return [os.path.join(path, name) for name in names]


def _rows(path):
    """(line number, fields) of the non-empty, non-comment lines of a text file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                fields = line.split()
                if fields and not fields[0].startswith("#"):
                    yield number, fields
    except UnicodeDecodeError:
        raise FeatureError(f"{path}: not a UTF-8 text file") from None


def read_id_map(path) -> dict:
    """A two-column file ``id value`` (e.g. Kaldi's ``utt2spk``) as an ordered dict."""
    out = {}
    for number, fields in _rows(path):
        if len(fields) != 2:
            raise FeatureError(f"{os.fspath(path)} line {number}: expected 2 columns 'utterance-id "
                               f"label'; got {len(fields)}")
        if fields[0] in out:
            raise FeatureError(f"{os.fspath(path)} line {number}: {fields[0]!r} is listed twice")
        out[fields[0]] = fields[1]
    if not out:
        raise FeatureError(f"{os.fspath(path)}: the list is empty")
    return out


def read_id_lists(path) -> dict:
    """A file of lines ``key id1 id2 ...`` (e.g. Kaldi's ``spk2utt``) as ``{key: [ids]}``."""
    out = {}
    for number, fields in _rows(path):
        if len(fields) < 2:
            raise FeatureError(f"{os.fspath(path)} line {number}: expected 'model-id utterance-id "
                               f"[utterance-id ...]'; got {' '.join(fields)!r}")
        if fields[0] in out:
            raise FeatureError(f"{os.fspath(path)} line {number}: model {fields[0]!r} is listed "
                               "twice")
        out[fields[0]] = fields[1:]
    if not out:
        raise FeatureError(f"{os.fspath(path)}: the list is empty")
    return out


@dataclass(frozen=True)
class Trials:
    """A trial list: ``models[i]`` against ``probes[i]``; ``labels[i]`` True for a target trial.

    ``labels`` is None when the list has no third column.
    """

    models: list
    probes: list
    labels: np.ndarray | None

    def __len__(self) -> int:
        return len(self.models)


def _parse_label(text: str, where: str) -> bool:
    low = text.lower()
    if low not in LABELS:
        raise FeatureError(f"{where}: the label must be 'target' or 'nontarget'; got {text!r}")
    return low == "target"


def _check_repeat(seen: dict, fields, number: int, where: str) -> None:
    """A model-probe pair may appear once in a trial list or score file (it would count twice)."""
    pair = tuple(fields[:2])
    if pair in seen:
        raise FeatureError(f"{where}: trial {' '.join(pair)!r} repeats line {seen[pair]} (each "
                           "model-probe pair must appear once)")
    seen[pair] = number


def read_trials(path, *, require_labels: bool = False) -> Trials:
    """Read ``model-id probe-id [target|nontarget]`` lines (all with labels or none).

    A model-probe pair listed twice is a :class:`FeatureError` naming both lines.
    """
    path = os.fspath(path)
    models, probes, labels = [], [], []
    n_columns = None
    seen = {}
    for number, fields in _rows(path):
        where = f"{path} line {number}"
        if len(fields) not in (2, 3) or (n_columns is not None and len(fields) != n_columns):
            expected = "2 or 3" if n_columns is None else str(n_columns)
            raise FeatureError(f"{where}: expected {expected} columns 'model-id probe-id "
                               f"[target|nontarget]'; got {len(fields)}")
        n_columns = len(fields)
        _check_repeat(seen, fields, number, where)
        models.append(fields[0])
        probes.append(fields[1])
        if n_columns == 3:
            labels.append(_parse_label(fields[2], where))
    if not models:
        raise FeatureError(f"{path}: the trial list is empty")
    if require_labels and n_columns != 3:
        raise FeatureError(f"{path}: trials need a third column 'target' or 'nontarget'")
    return Trials(models, probes, np.array(labels, dtype=bool) if n_columns == 3 else None)


def format_score(value: float) -> str:
    """The shortest text that reads back as the same float64."""
    return repr(float(value))


def write_scores(path, models, probes, scores, labels=None) -> None:
    """Write ``model probe score [target|nontarget]`` lines atomically."""
    scores = np.asarray(scores, dtype=np.float64)
    if not (len(models) == len(probes) == scores.shape[0]):
        raise ValueError(f"models, probes and scores must have one length; got {len(models)}, "
                         f"{len(probes)} and {scores.shape[0]}")
    buffer = io.StringIO()
    for i, (m, p) in enumerate(zip(models, probes, strict=True)):
        line = f"{m} {p} {format_score(scores[i])}"
        if labels is not None:
            line += " target" if labels[i] else " nontarget"
        buffer.write(line + "\n")
    with atomic_write(path) as f:
        f.write(buffer.getvalue())


def read_scores(path):
    """Read a score file: ``(Trials, scores float64 array)``; labels None when absent.

    A model-probe pair listed twice is a :class:`FeatureError` naming both lines.
    """
    path = os.fspath(path)
    models, probes, scores, labels = [], [], [], []
    n_columns = None
    seen = {}
    for number, fields in _rows(path):
        where = f"{path} line {number}"
        if len(fields) not in (3, 4) or (n_columns is not None and len(fields) != n_columns):
            raise FeatureError(f"{where}: expected 'model-id probe-id score [target|nontarget]'; "
                               f"got {len(fields)} columns")
        n_columns = len(fields)
        _check_repeat(seen, fields, number, where)
        try:
            value = float(fields[2])
        except ValueError:
            raise FeatureError(f"{where}: the score must be a number; got {fields[2]!r}") from None
        if not np.isfinite(value):
            raise FeatureError(f"{where}: the score must be finite; got {fields[2]!r}")
        models.append(fields[0])
        probes.append(fields[1])
        scores.append(value)
        if n_columns == 4:
            labels.append(_parse_label(fields[3], where))
    if not models:
        raise FeatureError(f"{path}: the score file is empty")
    trials = Trials(models, probes, np.array(labels, dtype=bool) if n_columns == 4 else None)
    return trials, np.array(scores, dtype=np.float64)
