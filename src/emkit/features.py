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

Text files (id lists, trial lists, scores) are whitespace-separated columns; empty lines and
lines starting with ``#`` are skipped.  Every writer here writes atomically (a temporary file in
the target directory, renamed when complete), so an error never leaves a partial file.
"""

from __future__ import annotations

import io
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io.atomic import atomic_write

__all__ = ["FeatureError", "read_features", "read_feature_sources", "read_kaldi_ark",
           "read_kaldi_scp", "read_id_map", "read_id_lists", "Trials", "read_trials",
           "write_scores", "read_scores", "atomic_write", "check_writable"]

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
LABELS = ("target", "nontarget")


class FeatureError(ValueError):
    """An input file exists but cannot be used (format, content); the message names the file."""


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
# Kaldi
# ---------------------------------------------------------------------------------------------


def _read_exact(f, n: int, where: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise FeatureError(f"{where}: file ends in the middle of a matrix")
    return data


def _read_token(f, where: str) -> str:
    chars = bytearray()
    while True:
        c = f.read(1)
        if not c:
            raise FeatureError(f"{where}: file ends in the middle of a matrix header")
        if c == b" ":
            return chars.decode("latin-1")
        chars += c
        if len(chars) > 8:
            raise FeatureError(f"{where}: unknown Kaldi object type {bytes(chars)[:8]!r}")


def _read_int32(f, where: str) -> int:
    size = _read_exact(f, 1, where)
    if size != b"\x04":
        raise FeatureError(f"{where}: expected a 4-byte integer size, found size byte {size!r}")
    return struct.unpack("<i", _read_exact(f, 4, where))[0]


def _char_to_float(p0, p25, p75, p100, v):
    """Kaldi's ``CharToFloat`` of the "CM" format, vectorised: v (rows, cols) uint8."""
    v = v.astype(np.float32)
    low = p0 + (p25 - p0) * v * np.float32(1 / 64.0)
    mid = p25 + (p75 - p25) * (v - 64) * np.float32(1 / 128.0)
    high = p75 + (p100 - p75) * (v - 192) * np.float32(1 / 63.0)
    return np.where(v <= 64, low, np.where(v <= 192, mid, high))


def _read_compressed(f, token: str, where: str) -> np.ndarray:
    min_value, value_range, rows, cols = struct.unpack("<ffii", _read_exact(f, 16, where))
    if rows < 0 or cols < 0:
        raise FeatureError(f"{where}: negative matrix size {rows} x {cols}")
    min_value, value_range = np.float32(min_value), np.float32(value_range)
    if token == "CM":
        headers = np.frombuffer(_read_exact(f, 8 * cols, where), dtype="<u2").reshape(cols, 4)
        scale = value_range * np.float32(1.52590218966964e-05)  # Kaldi's 1 / 65535
        pct = min_value + scale * headers.astype(np.float32)
        data = np.frombuffer(_read_exact(f, rows * cols, where), dtype=np.uint8)
        data = data.reshape(cols, rows).T  # stored column by column
        return _char_to_float(pct[:, 0], pct[:, 1], pct[:, 2], pct[:, 3], data)
    if token == "CM2":
        data = np.frombuffer(_read_exact(f, 2 * rows * cols, where), dtype="<u2")
        data = data.reshape(rows, cols)
        return min_value + data.astype(np.float32) * np.float32(value_range * (1.0 / 65535.0))
    data = np.frombuffer(_read_exact(f, rows * cols, where), dtype=np.uint8).reshape(rows, cols)
    return min_value + data.astype(np.float32) * np.float32(value_range * (1.0 / 255.0))


_BINARY_TYPES = {"FM": ("<f4", 2), "DM": ("<f8", 2), "FV": ("<f4", 1), "DV": ("<f8", 1)}


def _read_binary_object(f, where: str) -> np.ndarray:
    """One binary Kaldi matrix/vector, the file positioned just after ``\\0B``."""
    token = _read_token(f, where)
    if token in ("CM", "CM2", "CM3"):
        return _read_compressed(f, token, where)
    if token not in _BINARY_TYPES:
        raise FeatureError(f"{where}: unsupported Kaldi object type {token!r} (expected FM, DM, "
                           "FV, DV, CM, CM2 or CM3)")
    dtype, ndim = _BINARY_TYPES[token]
    rows = 1 if ndim == 1 else _read_int32(f, where)
    cols = _read_int32(f, where)
    if rows < 0 or cols < 0:
        raise FeatureError(f"{where}: negative matrix size {rows} x {cols}")
    itemsize = np.dtype(dtype).itemsize
    data = np.frombuffer(_read_exact(f, rows * cols * itemsize, where), dtype=dtype)
    return data.reshape(rows, cols)


_NUMBER_LINE = re.compile(rb"[^\s\]\[]+")


def _read_text_object(f, first: bytes, where: str) -> np.ndarray:
    """A text Kaldi matrix ``[ r1 \\n r2 ]`` (or vector ``[ v ]``).

    ``first`` is the rest of the key's line.
    """
    text = first.strip()
    if not text.startswith(b"["):
        raise FeatureError(f"{where}: expected '[' or a binary marker after the key, found "
                           f"{text[:20]!r}")
    rows, line = [], text[1:]
    while True:
        done = b"]" in line
        values = _NUMBER_LINE.findall(line.split(b"]")[0])
        if values:
            try:
                rows.append([float(v) for v in values])
            except ValueError:
                raise FeatureError(f"{where}: not a number in a text matrix: "
                                   f"{line.strip()[:40]!r}") from None
        if done:
            break
        line = f.readline()
        if not line:
            raise FeatureError(f"{where}: file ends before the closing ']' of a text matrix")
    if len({len(r) for r in rows}) > 1:
        raise FeatureError(f"{where}: rows of a text matrix have different lengths")
    return np.array(rows, dtype=np.float64).reshape(len(rows), -1 if rows else 0)


def _read_object(f, where: str) -> np.ndarray:
    """The matrix at the current position (binary ``\\0B...`` or text ``[...]``)."""
    head = f.read(2)
    if head == b"\0B":
        return _read_binary_object(f, where)
    return _read_text_object(f, head + f.readline(), where)


def _strip_specifier(path, kind: str) -> str:
    """``ark,s,cs:path`` -> ``path``; refuses pipes and ``-`` (standard input)."""
    text = os.fspath(path)
    match = re.match(r"^(ark|scp)(,[a-z]+)*:(.*)$", text)
    if match:
        text = match.group(3)
    if text.endswith("|") or text == "-":
        raise FeatureError(f"{text!r}: piped commands and standard input are not supported; write "
                           f"the {kind} to a file first")
    return text


def read_kaldi_ark(path) -> dict:
    """All matrices of a Kaldi archive (binary or text): ``{key: float64 array}``, in file order."""
    path = _strip_specifier(path, "archive")
    out = {}
    with open(path, "rb") as f:
        while True:
            key = bytearray()
            c = f.read(1)
            while c in (b"\n", b"\r", b" ", b"\t"):
                c = f.read(1)
            if not c:
                break
            while c and c not in (b" ", b"\t", b"\n"):
                key += c
                c = f.read(1)
            name = key.decode("utf-8", errors="replace")
            where = f"{path}: utterance {name!r}"
            if c != b" ":
                raise FeatureError(f"{where}: expected a space and a matrix after the key")
            if name in out:
                raise FeatureError(f"{path}: utterance {name!r} appears twice")
            out[name] = np.asarray(_read_object(f, where), dtype=np.float64)
    return out


_SCP_RANGE = re.compile(r"^(.*?)(?:\[(\d+):(\d+)(?:,(\d+):(\d+))?\])?$")


def read_kaldi_scp(path) -> dict:
    """The matrices a Kaldi ``.scp`` file points to, as ``{key: float64 array}`` in file order."""
    path = _strip_specifier(path, "script file")
    base = os.path.dirname(os.path.abspath(path))
    out, handles = {}, {}
    try:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                parts = line.split(maxsplit=1)
                if len(parts) != 2:
                    raise FeatureError(f"{path} line {number}: expected 'key rxfilename'; got "
                                       f"{line.strip()!r}")
                key, spec = parts[0], parts[1].strip()
                where = f"{path} line {number} (utterance {key!r})"
                if spec.endswith("|"):
                    raise FeatureError(f"{where}: piped commands are not supported")
                target, r1, r2, c1, c2 = _SCP_RANGE.match(spec).groups()
                offset = None
                m = re.match(r"^(.*):(\d+)$", target)
                if m:
                    target, offset = m.group(1), int(m.group(2))
                target = target if os.path.isabs(target) else os.path.join(base, target)
                if target not in handles:
                    if not os.path.exists(target):
                        raise FeatureError(f"{where}: no such file {target!r}")
                    handles[target] = open(target, "rb")
                f = handles[target]
                f.seek(offset or 0)
                if key in out:
                    raise FeatureError(f"{where}: utterance {key!r} appears twice")
                matrix = _read_object(f, where)
                if r1 is not None:
                    matrix = matrix[int(r1):int(r2) + 1]
                if c1 is not None:
                    matrix = matrix[:, int(c1):int(c2) + 1]
                out[key] = np.asarray(matrix, dtype=np.float64)
    finally:
        for handle in handles.values():
            handle.close()
    return out


# ---------------------------------------------------------------------------------------------
# numpy and HDF5
# ---------------------------------------------------------------------------------------------


def _read_npy(path: Path) -> dict:
    array = np.load(path, allow_pickle=False)
    return {path.stem: array}


def _read_npz(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        arrays = {key: z[key] for key in z.files}
    if list(arrays) == ["arr_0"]:
        return {path.stem: arrays["arr_0"]}
    return arrays


def _read_h5(path: Path) -> dict:
    from .io.h5 import open_for_reading  # the io package is where h5py lives

    found = {}
    with open_for_reading(path) as f:
        for marker in ("emkit_class", "writer_class"):  # a model, not features
            if marker in f.attrs:
                kind = f.attrs[marker]
                kind = kind.decode() if isinstance(kind, bytes) else str(kind)
                raise FeatureError(f"{path}: holds a model ({kind}), not features")

        def visit(name, obj):
            if hasattr(obj, "shape") and hasattr(obj, "dtype"):  # a dataset, not a group
                found[name] = obj

        f.visititems(visit)
        if list(found) == ["array"]:
            return {path.stem: found["array"][()]}
        return {name: ds[()] for name, ds in found.items()
                if ds.ndim == 2 and ds.dtype.kind in "fiu"}


def _sniff(path: Path) -> str:
    with open(path, "rb") as f:
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


def read_features(path, *, n_features: int | None = None) -> dict:
    """Utterances of one feature file as ``{id: (n_frames, n_features) float64 array}``.

    The format comes from the extension (or an ``ark:``/``scp:`` prefix; otherwise the file's
    first bytes): see the module docstring.  ``n_features``, when given, is checked for every
    utterance.  Raises ``FileNotFoundError`` for a missing file and :class:`FeatureError` for
    an unreadable or inconsistent one.
    """
    text = os.fspath(path)
    kind = ""
    m = re.match(r"^(ark|scp)(,[a-z]+)*:", text)
    if m:
        kind = m.group(1)
        text = _strip_specifier(text, "archive")
    p = Path(text)
    if not p.is_file():
        raise FileNotFoundError(f"no such feature file: {text!r}")
    kind = kind or _SUFFIXES.get(p.suffix.lower(), "") or _sniff(p)
    readers = {"npy": _read_npy, "npz": _read_npz, "h5": _read_h5,
               "ark": read_kaldi_ark, "scp": read_kaldi_scp}
    if kind not in readers:
        raise FeatureError(f"{text}: unknown feature format (expected .npy, .npz, .h5/.hdf5, .ark "
                           "or .scp)")
    try:
        raw = readers[kind](p)
    except FeatureError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise FeatureError(f"{text}: cannot read it as {kind} features ({exc})") from None
    if not raw:
        raise FeatureError(f"{text}: contains no feature matrix")
    out = {}
    for key, value in raw.items():
        array = np.asarray(value)
        where = f"{text}: utterance {key!r}"
        if array.dtype.kind not in "fiu" or array.ndim != 2:
            raise FeatureError(f"{where} must be a 2-D numeric array (n_frames, n_features); got "
                               f"shape {array.shape} and dtype {array.dtype}")
        if array.shape[0] == 0:
            raise FeatureError(f"{where} has no frames")
        if n_features is not None and array.shape[1] != n_features:
            raise FeatureError(f"{where} has {array.shape[1]} features per frame; the model "
                               f"expects {n_features}")
        array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise FeatureError(f"{where} contains NaN or infinite values")
        out[key] = array
    return out


def read_feature_sources(paths, *, n_features: int | None = None) -> dict:
    """Utterances of several feature files, merged; an id found in two files is an error.

    All utterances must have one feature dimension (``n_features`` when given, otherwise that of
    the first utterance read).
    """
    merged, origin = {}, {}
    found = n_features
    for path in paths:
        for key, array in read_features(path, n_features=n_features).items():
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
