"""Kaldi archives (``.ark``) and script files (``.scp``), read by emkit's own code (no kaldiio).

Binary matrix = key, a space, ``\\0B``, a type token (``FM ``, ``DM ``, ``FV ``, ``DV ``, or the
compressed ``CM ``, ``CM2 ``, ``CM3 ``), then for plain matrices two int32 sizes, each preceded by
a size byte (4), and the values row by row; vectors have one size and are read as one row.  Text
matrices are ``key [ row \\n row ]``, their numbers written in ASCII as Kaldi writes them
(:data:`~emkit.io.untrusted.ASCII_NUMBER`: not ``1_0``, not non-ASCII digits).  An ``.scp``
holds ``key path[:offset][range]`` lines; the range ``[r1:r2]`` or ``[r1:r2,c1:c2]`` is
inclusive, ``:`` alone takes all rows or columns, and it must lie inside the matrix but for
Kaldi's tolerance of 2 rows past the end (:mod:`emkit.io._kaldi_ranges`).

Untrusted files (see :mod:`emkit.io.untrusted`): every size a header declares is checked against
the bytes left in the file before it is read, one utterance is at most ``max_utterance_bytes``
(its float64 size), only regular files are opened, and messages never quote the file's bytes.
A relative path in an scp is taken from the current directory, as Kaldi does; where no such file
is there, from the scp's own directory.  An scp may name any regular file (absolute paths, ``..``,
symbolic links, as in Kaldi): give emkit an scp only from a source you would let read your files.  A UTF-8 byte-order mark at the start of
an scp or an archive is skipped.  Every matrix returned is a finite float64 ``(rows, cols)`` array
with ``rows, cols >= 1``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import struct

import numpy as np

from .._progress import Progress, logger
from ._message_text import MAX_KEY_BYTES, PATH_TAIL, show_path
from ._kaldi_plain import ArchiveWindow, read_plain_at
from ._kaldi_ranges import apply_range, split_range
from ._scp_extents import Extents
from ._kaldi_text import read_text_matrix
from .untrusted import (MAX_UTTERANCE_BYTES, FeatureError, as_features, check_declared, check_limit,
                        check_utterance_size, file_size, is_comment, open_regular, plausible_key,
                        read_values, show_key, show_path, text_lines)

__all__ = ["read_kaldi_ark", "read_kaldi_scp", "strip_specifier"]

_BOM = b"\xef\xbb\xbf"
_SPACE = b" \t\n\r"
_MAX_SCP_LINE = 65536
_CM_BLOCK = 1 << 16  # values of a CM matrix converted at a time
_PLAIN = {b"FM": ("<f4", 2), b"DM": ("<f8", 2), b"FV": ("<f4", 1), b"DV": ("<f8", 1)}
_TYPES = "FM, DM, FV, DV, CM, CM2 or CM3"


class _Reader:
    """An open regular file, its size, and the limit: what every object parser needs."""

    def __init__(self, f, limit: int):
        self.f, self.size, self.limit = f, file_size(f), limit

    def left(self) -> int:
        return self.size - self.f.tell()

    def exact(self, n: int, where: str, what: str = "matrix") -> bytes:
        check_declared(n, self.left(), where, what)
        return self.f.read(n)

    def int32(self, where: str) -> int:
        head = self.exact(5, where, "matrix header")
        if head[0] != 4:
            raise FeatureError(f"{where}: expected the size byte 4 before an int32 in the matrix "
                               "header")
        return struct.unpack("<i", head[1:])[0]


def _dims(rows: int, cols: int, where: str) -> None:
    if rows < 0 or cols < 0:
        raise FeatureError(f"{where}: the header declares a negative matrix size {rows} x {cols}")


def _plain(r: _Reader, token: bytes, where: str) -> np.ndarray:
    dtype, ndim = _PLAIN[token]
    rows = 1 if ndim == 1 else r.int32(where)
    cols = r.int32(where)
    _dims(rows, cols, where)
    itemsize = np.dtype(dtype).itemsize
    check_declared(rows * cols * itemsize, r.left(), where, "matrix")
    check_utterance_size((rows, cols), where, r.limit)
    return read_values(r.f, rows * cols, dtype, where, np.float64).reshape(rows, cols)


def _cm_table(percentiles: np.ndarray, v=None) -> np.ndarray:
    """Kaldi's ``CharToFloat``: float32 (cols, n) of the bytes ``v`` (cols, n) of each column
    from its (cols, 4) quantiles; of every byte value (cols, 256) without ``v``."""
    p0, p25, p75, p100 = (percentiles[:, k:k + 1] for k in range(4))
    v = np.arange(256, dtype=np.float32)[None, :] if v is None else v.astype(np.float32)
    low = p0 + (p25 - p0) * v * np.float32(1 / 64.0)
    mid = p25 + (p75 - p25) * (v - 64) * np.float32(1 / 128.0)
    high = p75 + (p100 - p75) * (v - 192) * np.float32(1 / 63.0)
    return np.where(v <= 64, low, np.where(v <= 192, mid, high))


def _compressed(r: _Reader, token: bytes, where: str) -> np.ndarray:
    min_value, value_range, rows, cols = struct.unpack("<ffii", r.exact(16, where, "header"))
    _dims(rows, cols, where)
    min_value, value_range = np.float32(min_value), np.float32(value_range)
    per_value = 2 if token == b"CM2" else 1
    needed = rows * cols * per_value + (8 * cols if token == b"CM" else 0)
    check_declared(needed, r.left(), where, "compressed matrix")
    check_utterance_size((rows, cols), where, r.limit)
    if token == b"CM":
        headers = np.frombuffer(r.f.read(8 * cols), dtype="<u2").reshape(cols, 4)
        scale = value_range * np.float32(1.52590218966964e-05)  # Kaldi's 1 / 65535
        percentiles = min_value + scale * headers.astype(np.float32)
        data = np.frombuffer(r.f.read(rows * cols), dtype=np.uint8).reshape(cols, rows)
        out = np.empty((rows, cols), dtype=np.float64)
        # a few columns at a time (stored column by column): their lookup tables, 256 values
        # per column, hold at most _CM_BLOCK values however few rows the matrix has
        step = max(1, _CM_BLOCK // max(rows, 256))
        for first in range(0, cols, step):  # one gather per block of columns
            quantiles, codes = percentiles[first:first + step], data[first:first + step]
            if rows < 256:  # fewer values than a table: the formula on the values themselves
                out[:, first:first + step] = _cm_table(quantiles, codes).T
            else:
                out[:, first:first + step] = np.take_along_axis(_cm_table(quantiles), codes, axis=1).T
        return out
    if token == b"CM2":
        data = np.frombuffer(r.f.read(2 * rows * cols), dtype="<u2").reshape(rows, cols)
        step = np.float32(value_range * (1.0 / 65535.0))
    else:
        data = np.frombuffer(r.f.read(rows * cols), dtype=np.uint8).reshape(rows, cols)
        step = np.float32(value_range * (1.0 / 255.0))
    values = data.astype(np.float32)
    values *= step
    values += min_value
    return values.astype(np.float64)


def _binary(r: _Reader, where: str) -> np.ndarray:
    """The binary object after ``\\0B``."""
    head = r.f.read(4)
    if head[:3] in (b"FM ", b"DM ", b"FV ", b"DV "):
        r.f.seek(-1, os.SEEK_CUR)
        return _plain(r, head[:2], where)
    if head[:3] == b"CM ":
        r.f.seek(-1, os.SEEK_CUR)
        return _compressed(r, b"CM", where)
    if head in (b"CM2 ", b"CM3 "):
        return _compressed(r, head[:3], where)
    if head[:1] == b"\4":  # the size byte of an int32 vector's length: no type token
        raise FeatureError(f"{where}: an int32 vector (such as alignments), not features "
                           f"(expected {_TYPES})")
    raise FeatureError(f"{where}: unsupported Kaldi object type (expected {_TYPES})")


def _object(r: _Reader, where: str) -> np.ndarray:
    """The matrix at the current position: binary (``\\0B...``) or text (``[ ... ]``)."""
    start = r.f.tell()
    head = r.f.read(2)
    if head == b"\0B":
        return _binary(r, where)
    r.f.seek(start)
    chunk = r.f.read(64)
    rest = chunk.lstrip(b" \t")
    if rest[:1] == b"[":
        r.f.seek(start + len(chunk) - len(rest))
        return read_text_matrix(r, where)
    raise FeatureError(f"{where}: no Kaldi matrix at byte {start} (expected the binary marker "
                       "'\\0B' or a text matrix '[')")


def strip_specifier(path, kind: str) -> str:
    """The file path of a Kaldi read specifier: ``ark,s,cs:path`` -> ``path``.

    Parameters
    ----------
    path : str or path-like
        A path, with or without an ``ark[,opts]:`` or ``scp[,opts]:`` prefix.
    kind : str
        What the path names (``"archive"``, ``"script file"``), for the error message.

    Returns
    -------
    str
        The path without its prefix (the path itself when it has none).

    Raises
    ------
    FeatureError
        A piped command (``... |``) or ``-`` (standard input): not supported.
    """
    text = os.fspath(path)
    match = re.match(r"^(ark|scp)(,[a-z]+)*:(.*)$", text)
    if match:
        text = match.group(3)
    if text.endswith("|") or text == "-":
        raise FeatureError(f"{show_path(text)}: piped commands and standard input are not "
                           f"supported; write the {kind} to a file first")
    return text


def _skip_space(f) -> bool:
    """Move past whitespace; False at the end of the file."""
    while True:
        start = f.tell()
        chunk = f.read(256)
        if not chunk:
            return False
        rest = chunk.lstrip(_SPACE)
        if rest:
            f.seek(start + len(chunk) - len(rest))
            return True


def read_kaldi_ark(path, *, max_utterance_bytes: int = MAX_UTTERANCE_BYTES) -> dict:
    """All matrices of a Kaldi archive (binary, text or compressed), in file order.

    The ``emkit`` logger says how far the reading of a large archive is (INFO, at most every
    30 s: megabytes read of all).

    Parameters
    ----------
    path : str or path-like
        The archive (a regular file; an ``ark:`` specifier prefix is allowed).
    max_utterance_bytes : int, keyword-only
        Largest float64 size of one matrix, in bytes (default 2 GiB); a larger one raises
        before anything is allocated.

    Returns
    -------
    dict of str to ndarray
        ``{key: matrix}``, each a finite float64 array of shape (rows, cols); a vector is one
        row.

    Raises
    ------
    FeatureError
        A file that is not a regular file or not an archive, a size it declares beyond the bytes
        present, a repeated key, NaN or infinity, a matrix over ``max_utterance_bytes``.
    """
    limit = check_limit(max_utterance_bytes)
    path = strip_specifier(path, "archive")
    out = {}
    with open_regular(path) as f:
        r = _Reader(f, limit)
        progress = Progress(f"reading {show_path(path)}", r.size // 10**6, "megabyte")
        if f.read(3) != _BOM:
            f.seek(0)
        window, position = ArchiveWindow(f, r.size, limit), f.tell()
        while True:
            position = window.read(position, out, progress)  # the plain entries, from memory
            f.seek(position)
            if not _skip_space(f):
                break
            _read_entry(r, path, out)  # any other, or one the window left: its error
            position = f.tell()
            progress.advance(position // 10**6 - progress.done)
    return out


def _read_entry(r: _Reader, path: str, out: dict) -> None:
    """Read the archive entry at the current position (past white space) into ``out``."""
    f = r.f
    start = f.tell()
    head = f.read(MAX_KEY_BYTES + 1)
    raw = re.match(rb"[^ \t\n\r]*", head).group(0)
    # a key is named in messages only once it looks like one: printable and followed by
    # a space (so that a file that is no archive is not quoted back as a "key")
    name = plausible_key(raw) if head[len(raw):len(raw) + 1] == b" " else None
    if name is None or len(raw) > MAX_KEY_BYTES:
        raise FeatureError(f"{path}: entry {len(out) + 1} (byte {start}): not a Kaldi "
                           f"archive entry (expected a key of at most {MAX_KEY_BYTES} "
                           "printable UTF-8 bytes, a space, then a matrix)")
    where = f"{path}: utterance {show_key(name)}"
    if name in out:
        raise FeatureError(f"{path}: utterance {show_key(name)} appears twice")
    f.seek(start + len(raw) + 1)
    out[name] = as_features(_object(r, where), where)


def _scp_entries(path):
    """``(line number, where, key, target, offset, ranges)`` of every entry of a script file, in
    order: a relative target is taken from the current directory, as Kaldi does, and where no
    such file is there, from the script file's own directory (an scp kept next to its archives)."""
    base = os.path.dirname(os.path.abspath(path))
    resolved = {}  # a relative name -> the path it resolves to (one look per archive, not per line)

    def resolve(target):
        if os.path.isabs(target):
            return target
        if target not in resolved:
            resolved[target] = target if os.path.exists(target) else os.path.join(base, target)
        return resolved[target]

    for number, line in text_lines(path, _MAX_SCP_LINE, "Kaldi script file"):
        parts = line.split(maxsplit=1)
        if not parts or is_comment(parts[0], f"{path} line {number}"):
            continue
        key = plausible_key(parts[0].encode())
        if len(parts) != 2 or key is None:
            raise FeatureError(f"{path} line {number}: expected 'key rxfilename' (a key, a "
                               "space, a file name)")
        spec = parts[1].strip()
        where = f"{path} line {number} (utterance {show_key(key)})"
        if spec.endswith("|"):
            raise FeatureError(f"{where}: piped commands are not supported (emkit runs no command "
                               "named in a list); run the pipeline first, e.g. Kaldi's copy-feats "
                               "scp:in.scp ark,scp:feats.ark,feats.scp, and give its output")
        target, ranges = split_range(spec, where)
        offset = 0
        m = re.match(r"^(.*):(\d+)$", target)
        if m:
            if len(m.group(2)) > 4000:  # Python refuses to convert more than 4300 digits
                raise FeatureError(f"{where}: the offset has {len(m.group(2))} digits (not a byte offset)")
            target, offset = m.group(1), int(m.group(2))
        yield number, where, key, resolve(target), offset, ranges


def scp_targets(path) -> list:
    """The existing files a Kaldi script file names, resolved as :func:`read_kaldi_scp` resolves
    them (for checks that an output is no input; lines the reader would refuse end the list)."""
    found = []
    with contextlib.suppress(FeatureError, OSError):
        for _, _, _, target, _, _ in _scp_entries(strip_specifier(path, "script file")):
            if target not in found and os.path.isfile(target):
                found.append(target)
    return found


def _shown_target(target: str) -> str:
    """A file name read from a script file, for a message: as it is when printable (else its
    repr), and only its last ``PATH_TAIL`` characters when longer (a line may hold 64 KiB)."""
    text = target if target.isprintable() else repr(target)
    return text if len(text) <= PATH_TAIL else "..." + text[-PATH_TAIL:]


def _shown_offset(offset: int) -> str:
    """An offset read from a script file (up to 4000 digits), shortened for a message."""
    digits = str(offset)
    return digits if len(digits) <= 40 else f"{digits[:20]}... ({len(digits)} digits)"


def _line_count(path) -> int:
    """Lines of a text file (a last line without a new line counted), read in bounded blocks."""
    count, last = 0, b"\n"
    with open_regular(path) as f:
        while block := f.read(1 << 16):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def read_kaldi_scp(path, *, max_utterance_bytes: int = MAX_UTTERANCE_BYTES) -> dict:
    """The matrices a Kaldi ``.scp`` file points to, in file order.

    The ``emkit`` logger says how far the reading is (INFO, at most every 30 s: lines of the
    script file read of all, counted first: a feats.scp of 10^6 entries takes minutes).

    Each line is ``key path[:offset][range]``; a relative path is taken from the current
    directory, or from the scp's own directory where the current one has no such file.

    Parameters
    ----------
    path : str or path-like
        The script file (a regular file; an ``scp:`` specifier prefix is allowed).
    max_utterance_bytes : int, keyword-only
        Largest float64 size of one matrix, in bytes (default 2 GiB); a larger one raises
        before anything is allocated.

    Returns
    -------
    dict of str to ndarray
        ``{key: matrix}``, each a finite float64 array of shape (rows, cols), cut to its range.

    Raises
    ------
    FeatureError
        A malformed line, a repeated key, a missing file, an offset past a file's end, a range
        outside its matrix, or any error of :func:`read_kaldi_ark` at the object pointed to.
    """
    limit = check_limit(max_utterance_bytes)
    path = strip_specifier(path, "script file")
    out, current, reader = {}, None, None
    read = {}  # the bytes of each file read so far, by (device, inode): no file is read twice over
    lines = _line_count(path) if logger.isEnabledFor(logging.INFO) else None  # (only to be shown)
    progress = Progress(f"reading {show_path(path)}", lines, "line")
    try:
        for number, where, key, target, offset, ranges in _scp_entries(path):
            if key in out:
                raise FeatureError(f"{where}: utterance {show_key(key)} appears twice")
            if target != current:
                if reader is not None:
                    reader.f.close()
                    reader = None
                try:
                    reader, current = _Reader(open_regular(target, where), limit), target
                except FileNotFoundError:
                    shown = show_path(target, tail=PATH_TAIL)
                    raise FeatureError(f"{where}: no such file {shown}") from None
                stat = os.fstat(reader.f.fileno())
                extents = read.setdefault((stat.st_dev, stat.st_ino), Extents())
            where = f"{where}: {_shown_target(target)}"
            if offset > reader.size:
                raise FeatureError(f"{where}: offset {_shown_offset(offset)} is beyond the end of "
                                   f"the file ({reader.size} bytes)")
            plain = read_plain_at(reader.f, offset, reader.size, limit)
            checked = plain is not None  # (finite, all of it)
            if not checked:  # any other object, or one read_plain_at left: its error
                reader.f.seek(offset)
                plain = _object(reader, where), reader.f.tell()
            whole, end = plain
            matrix = apply_range(whole, ranges, where)
            extents.add(offset, end, whole.size, matrix.size, ranges is None, where)
            out[key] = as_features(matrix, where, check_finite=not checked)
            progress.advance(number - progress.done)  # (comment lines counted with the next)
    finally:
        if reader is not None:
            reader.f.close()
    return out
