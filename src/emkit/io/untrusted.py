"""Rules and helpers shared by the readers of untrusted feature files (Kaldi, numpy, HDF5).

Every feature reader of emkit follows these rules, whatever the file claims:

* **Regular files only.**  A path is ``os.stat``-ed (symbolic links are followed, wherever they
  point) and refused unless it ends at a regular file: a named pipe (which would block ``open``
  forever), a device such as ``/dev/zero`` (an endless read), a socket or a directory is never
  opened.  Files are opened with ``O_NONBLOCK`` and checked again with ``fstat`` once open, so a
  file swapped for a pipe in between cannot block the reader either; every read (HDF5's and
  libsndfile's included) goes through that descriptor, never the path again
  (:func:`open_checked`).
* **Declared sizes are checked before anything is allocated.**  A size read from a header (Kaldi
  rows x cols, a ``.npy`` shape, a zip member's uncompressed size, an HDF5 dataset's shape) is
  compared with the bytes actually left in the file (in Python integers: no overflow) before the
  data are read; compressed data (``.npz`` members, filtered HDF5 datasets) may expand at most
  :data:`MAX_COMPRESSION_RATIO` times, and each gzip chunk of an HDF5 dataset is inflated by
  zlib, bounded, before HDF5 inflates it (:mod:`emkit.io.h5_chunks`).
* **No byte is returned twice over.**  The entries of a Kaldi script file read disjoint matrices
  of each file (segments cut from one matrix by ranges may overlap, up to 16 times its values),
  so a short list cannot return the same megabyte thousands of times.
* **A maximum size per utterance**, ``max_utterance_bytes`` (default
  :data:`MAX_UTTERANCE_BYTES`, 2 GiB), counted as the utterance's float64 size
  ``rows * cols * 8``: every reader takes it as a keyword argument.
* **Errors name the file and the utterance** (the key, when it looks like one) and never quote
  the file's bytes.  They are :class:`FeatureError`, a subclass of
  :class:`~emkit.io.errors.InvalidFileError` (a ``ValueError``); a missing top-level file is a
  ``FileNotFoundError``.
"""

from __future__ import annotations

import os
import re
import stat

import numpy as np

from .._describe import describe
from .errors import InvalidFileError

#: Default largest utterance any feature reader returns, as float64 bytes (rows * cols * 8).
MAX_UTTERANCE_BYTES = 2 * 1024**3
#: Largest expansion allowed for compressed data (.npz members, filtered HDF5 datasets).
MAX_COMPRESSION_RATIO = 100


class FeatureError(InvalidFileError):
    """A feature, list or score file cannot be used (format, content, a safety limit).

    The message names the file (and the utterance or line) and never quotes the file's bytes.
    """


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _subject(path, what: str) -> str:
    """How a message starts: ``"scp line 3: 'x.ark'"`` with ``what``, else the path itself."""
    return f"{what}: {show_path(path)}" if what else os.fspath(path)


def show_path(path, tail: int | None = None) -> str:
    """A path for a message: its ``repr``, so that control characters in a file name (an escape
    sequence) are shown escaped, never sent to the terminal.

    ``tail``: for a path read from a file (whose length the file decides), at most its last
    ``tail`` characters after ``...``, so that its file name survives a long folder.
    """
    path = os.fspath(path)
    if tail is not None and len(path) > tail:
        path = "..." + path[-tail:]
    return repr(path)


def check_regular(path, what: str = "") -> os.stat_result:
    """``os.stat`` of ``path`` if it is (a link to) a regular file; :class:`FeatureError` otherwise.

    A missing file raises ``FileNotFoundError``.  ``what`` prefixes the message (e.g. the scp line).
    """
    subject = _subject(path, what)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{subject}: no such file") from None
    except (OSError, ValueError) as exc:  # permission, a link loop, a NUL byte in the name
        raise FeatureError(f"{subject}: cannot access it "
                           f"({getattr(exc, 'strerror', None) or type(exc).__name__})") from None
    if not stat.S_ISREG(info.st_mode):
        raise FeatureError(_not_regular(subject, info.st_mode))
    return info


def _not_regular(subject: str, mode: int) -> str:
    return f"{subject} is {_kind(mode)}, not a regular file; emkit reads regular files only"


def open_checked(path, what: str = "") -> int:
    """A descriptor open for reading on the regular file ``path`` that :func:`check_regular` has
    checked: the one file every later read of it sees, whatever the path names by then.

    A device is never opened (the check comes first).  The open is non-blocking, so that a named
    pipe put in the file's place after the check opens at once instead of waiting for a writer
    forever; the descriptor is then ``fstat``-ed and anything but a regular file refused (the
    :class:`FeatureError` of :func:`check_regular`).  Its blocking mode is restored before it is
    returned.  A file removed since the check is a ``FileNotFoundError`` naming it; other
    ``OSError`` of ``open`` (no permission) propagate.
    """
    check_regular(path, what)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(f"{_subject(path, what)}: no such file") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FeatureError(_not_regular(_subject(path, what), mode))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular(path, what: str = ""):
    """:func:`open_checked` as a buffered binary file object; an ``OSError`` of ``open`` other
    than a missing file is a :class:`FeatureError` naming the file."""
    try:
        fd = open_checked(path, what)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise FeatureError(f"{_subject(path, what)}: cannot open it ({exc.strerror})") from None
    return os.fdopen(fd, "rb")


_BOM = b"\xef\xbb\xbf"


def text_lines(path, max_line: int, what: str):
    """``(line number, text)`` of a UTF-8 text file (a regular file; a leading byte-order mark is
    skipped), each line read with at most ``max_line`` bytes: a longer line is refused before it
    is read whole, split or converted.  ``what`` names the kind of file in messages."""
    path = os.fspath(path)
    with open_regular(path) as f:
        number = 0
        while True:
            line = f.readline(max_line + 1)
            if not line:
                return
            number += 1
            if number == 1 and line.startswith(_BOM):
                line = line[len(_BOM):]
            if len(line) > max_line:
                raise FeatureError(f"{path} line {number}: longer than {max_line} bytes; not a "
                                   f"{what}")
            try:
                yield number, line.decode("utf-8")
            except UnicodeDecodeError:
                raise FeatureError(f"{path} line {number}: not UTF-8 text; not a {what}") from None


#: A number as Kaldi, BOSARIS and C's ``strtod`` write one: ASCII digits, an optional sign,
#: fraction and exponent.  Python's ``float`` also takes ``1_0``, non-ASCII digits (``\u0661``)
#: and surrounding white space; every text reader of numbers (score files, Kaldi text matrices,
#: segments times) accepts this pattern only.  Written so that a run of digits splits one way
#: only: ``[0-9]+\.?[0-9]*`` let a failed match try every split of the run (quadratic: a
#: 500,000-digit score followed by a letter took hours to refuse).
ASCII_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
#: What ``float`` reads as NaN or infinity (an error of its own: "must be finite")
NOT_FINITE = re.compile(r"[+-]?(?:inf|infinity|nan)", re.ASCII | re.IGNORECASE)


def number_advice(text: str) -> str:
    """How a number must be written, for a message refusing ``text`` (naming its first
    non-ASCII character, if any)."""
    foreign = next((c for c in text if not c.isascii()), None)
    why = f"; U+{ord(foreign):04X} is not ASCII" if foreign else ""
    return f"ASCII digits, an optional sign, '.' and exponent, e.g. -1.5e-3{why}"


def file_size(f) -> int:
    """Size in bytes of an open file."""
    return os.fstat(f.fileno()).st_size


def with_article(name: str) -> str:
    """``"a GMMMachine"``, ``"an ISVMachine"``: a class name after its article (for messages)."""
    return f"{'an' if name[:1] in tuple('AEIOU') else 'a'} {name}"


def show_key(key) -> str:
    """``repr`` of an utterance id for a message, shortened when long."""
    key = str(key)
    return repr(key if len(key) <= 80 else key[:77] + "...")


def is_comment(first: str, where: str, entry: str = "an id") -> bool:
    """Whether a line of an emkit list whose first field is ``first`` is a comment: ``#`` alone
    (the line ``# text``).  Any other first field starting with ``#`` is a :class:`FeatureError`
    naming ``where``: Kaldi's lists have no comments and read ``#utt1 spk1`` as an entry, which
    skipping would silently lose (a comment needs white space after its ``#``).  ``entry``: what
    the first field is ("an id", "a file name")."""
    if not first.startswith("#"):
        return False
    if first == "#":
        return True
    raise FeatureError(f"{where}: the line starts with {show_key(first)}: emkit refuses {entry} "
                       "starting with '#' rather than lose it as a comment (Kaldi has no comments: "
                       "it reads the line as an entry); rename it, or write a comment as '# text' "
                       "('#' then a space)")


def plausible_key(raw: bytes) -> str | None:
    """The id as text if ``raw`` looks like an utterance id (UTF-8, printable), else None.

    Messages name an utterance by such an id only, so that a file that is not an archive at all
    does not get its first bytes quoted back as a "key".
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text and len(raw) <= 1024 and text.isprintable() else None


def check_declared(needed: int, available: int, where: str, what: str = "data") -> None:
    """Refuse a header that declares more bytes than the file has left."""
    if needed > available:
        raise FeatureError(f"{where}: the file ends in the middle of the {what}: its header "
                           f"declares {needed} bytes but only {available} remain")


def check_utterance_size(shape, where: str, max_utterance_bytes: int) -> None:
    """Refuse an utterance whose float64 size ``prod(shape) * 8`` exceeds the limit."""
    n_bytes = 8
    for n in shape:
        n_bytes *= int(n)
    if n_bytes > max_utterance_bytes:
        dims = " x ".join(str(int(n)) for n in shape)
        raise FeatureError(f"{where}: a {dims} matrix ({n_bytes} bytes as float64) exceeds "
                           f"max_utterance_bytes={max_utterance_bytes}; raise the limit if the "
                           "file is trusted")


def check_limit(max_utterance_bytes) -> int:
    if (isinstance(max_utterance_bytes, bool)
            or not isinstance(max_utterance_bytes, (int, np.integer)) or max_utterance_bytes < 8):
        raise ValueError("max_utterance_bytes must be an integer >= 8 (bytes); got "
                         f"{describe(max_utterance_bytes)}")
    return int(max_utterance_bytes)


_CHUNK = 1 << 20


def _fill(f, view, where: str) -> None:
    done = 0
    while done < len(view):
        n = f.readinto(view[done:])
        if not n:
            raise FeatureError(f"{where}: the data end early")
        done += n


def read_values(f, count: int, dtype, where: str, out_dtype=None) -> np.ndarray:
    """``count`` values of ``dtype`` from ``f`` (their size already checked) as a 1-D array.

    The result has ``out_dtype`` (default: ``dtype`` in native byte order); a conversion is done
    1 MiB at a time, so that at most the result plus 1 MiB is allocated.
    """
    dtype = np.dtype(dtype)
    out_dtype = np.dtype(out_dtype if out_dtype is not None else dtype.newbyteorder("="))
    out = np.empty(count, dtype=out_dtype)
    if dtype == out_dtype:
        _fill(f, memoryview(out).cast("B"), where)
        return out
    per = max(1, _CHUNK // dtype.itemsize)
    buffer = bytearray(min(per, count) * dtype.itemsize)
    for start in range(0, count, per):
        n = min(per, count - start)
        _fill(f, memoryview(buffer)[:n * dtype.itemsize], where)
        out[start:start + n] = np.frombuffer(buffer, dtype=dtype, count=n)
    return out


def as_features(array, where: str, n_features: int | None = None, *,
                check_finite: bool = True) -> np.ndarray:
    """``array`` as a finite float64 ``(n_frames, n_features)`` matrix with at least one of each.

    ``check_finite=False`` skips the scan for NaN/inf (for arrays already checked).
    """
    array = np.asarray(array)
    if array.dtype.kind not in "fiu" or array.ndim != 2:
        raise FeatureError(f"{where} must be a 2-D numeric array (n_frames, n_features); got "
                           f"shape {array.shape} and dtype {array.dtype}")
    if array.shape[0] == 0:
        raise FeatureError(f"{where} has no frames (shape {array.shape})")
    if array.shape[1] == 0:
        raise FeatureError(f"{where} has no features per frame (shape {array.shape})")
    if n_features is not None and array.shape[1] != n_features:
        raise FeatureError(f"{where} has {array.shape[1]} features per frame; the model "
                           f"expects {n_features}")
    array = np.ascontiguousarray(array, dtype=np.float64)
    if check_finite and not np.isfinite(array).all():
        raise FeatureError(f"{where} contains NaN or infinite values")
    return array
