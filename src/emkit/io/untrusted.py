"""Rules and helpers shared by the readers of untrusted feature files (Kaldi, numpy, HDF5).

Every feature reader of emkit follows these rules, whatever the file claims:

* **Regular files only.**  A path is ``os.stat``-ed (symbolic links are followed, wherever they
  point) and refused unless it ends at a regular file: a named pipe (which would block ``open``
  forever), a device such as ``/dev/zero`` (an endless read), a socket or a directory is never
  opened.  Files are opened with ``O_NONBLOCK`` and checked again with ``fstat`` once open, so a
  file swapped for a pipe in between cannot block the reader either; every read (HDF5's and
  libsndfile's included) goes through that descriptor, never the path again
  (:func:`open_checked`).  A file emkit wrote itself (a recipe's step stamp, the demo's raw
  scores; spill files have their own opener, ``emkit._backend._spill_open``) is read with
  ``follow_links=False``: ``os.lstat``-ed and opened with ``O_NOFOLLOW``, so that a
  link put in its place is refused rather than read wherever it points.
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

import errno
import os
import stat

import numpy as np

from ._message_text import (ASCII_NUMBER, NOT_FINITE, message_subject, not_regular_message,
                            number_advice, plausible_key, show_key, show_path, with_article)
from ._size_checks import check_declared, check_limit, check_utterance_size
from .errors import FeatureError

__all__ = ["MAX_UTTERANCE_BYTES", "MAX_COMPRESSION_RATIO", "check_regular", "open_checked",
           "open_regular", "text_lines", "file_size", "is_comment", "read_values", "as_features",
           # from emkit.io.errors and emkit.io._size_checks
           "FeatureError", "check_declared", "check_utterance_size", "check_limit",
           # from emkit.io._message_text
           "show_path", "show_key", "with_article", "plausible_key", "number_advice",
           "ASCII_NUMBER", "NOT_FINITE"]

#: Default largest utterance any feature reader returns, as float64 bytes (rows * cols * 8).
MAX_UTTERANCE_BYTES = 2 * 1024**3
#: Largest expansion allowed for compressed data (.npz members, filtered HDF5 datasets).
MAX_COMPRESSION_RATIO = 100


def check_regular(path, what: str = "", *, follow_links: bool = True) -> os.stat_result:
    """Check that a path is (a link to) a regular file.

    Parameters
    ----------
    path : str or path-like
    what : str, default ""
        Prefixes the message (e.g. the scp line naming the path); "": the path itself.
    follow_links : bool, default True
        False: ``os.lstat``, and a symbolic link is refused too (a file emkit wrote itself, which
        nothing should have replaced by a link to elsewhere).

    Returns
    -------
    os.stat_result
        The file's status (links followed unless ``follow_links`` is False).

    Raises
    ------
    FileNotFoundError
        No such file.
    FeatureError
        A directory, named pipe, device or socket, or a path that cannot be accessed
        (permission, a link loop, a NUL byte).
    """
    subject = message_subject(path, what)
    try:
        info = os.stat(path) if follow_links else os.lstat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{subject}: no such file") from None
    except (OSError, ValueError) as exc:  # permission, a link loop, a NUL byte in the name
        raise FeatureError(f"{subject}: cannot access it "
                           f"({getattr(exc, 'strerror', None) or type(exc).__name__})") from None
    if not stat.S_ISREG(info.st_mode):
        raise FeatureError(not_regular_message(subject, info.st_mode))
    return info


def open_checked(path, what: str = "", *, follow_links: bool = True) -> int:
    """A descriptor open for reading on a regular file that :func:`check_regular` has checked.

    It is the one file every later read sees, whatever the path names by then.  A device is never
    opened (the check comes first).  The open is non-blocking, so that a named pipe put in the
    file's place after the check opens at once instead of waiting for a writer forever (and
    ``O_NOCTTY``: a terminal put there never becomes the process's controlling one); the
    descriptor is then ``fstat``-ed and anything but a regular file refused.  Its blocking mode is
    restored before it is returned.

    Parameters
    ----------
    path : str or path-like
    what : str, default ""
        Prefixes the message (e.g. the scp line naming the path); "": the path itself.
    follow_links : bool, default True
        False: a symbolic link is refused (``O_NOFOLLOW``: one put in the file's place after the
        check too).

    Returns
    -------
    int
        The descriptor; the caller closes it.

    Raises
    ------
    FileNotFoundError
        No such file (or removed since the check), named.
    FeatureError
        As :func:`check_regular`, before or after the open.
    OSError
        Other errors of ``open`` (no permission).
    """
    check_regular(path, what, follow_links=follow_links)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    subject = message_subject(path, what)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(f"{subject}: no such file") from None
    except OSError as exc:
        if not follow_links and exc.errno == errno.ELOOP:  # a link swapped in since the check
            raise FeatureError(not_regular_message(subject, stat.S_IFLNK)) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FeatureError(not_regular_message(subject, mode))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular(path, what: str = "", *, follow_links: bool = True):
    """:func:`open_checked` as a buffered binary file object.

    Parameters
    ----------
    path : str or path-like
    what : str, default ""
        Prefixes the message (e.g. the scp line naming the path); "": the path itself.
    follow_links : bool, default True
        As :func:`open_checked`.

    Returns
    -------
    io.BufferedReader
        Open for reading; the caller closes it (a ``with`` block).

    Raises
    ------
    FileNotFoundError
        No such file.
    FeatureError
        As :func:`check_regular`, or any other ``OSError`` of ``open``, naming the file.
    """
    try:
        fd = open_checked(path, what, follow_links=follow_links)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise FeatureError(f"{message_subject(path, what)}: cannot open it "
                           f"({exc.strerror})") from None
    return os.fdopen(fd, "rb")


_BOM = b"\xef\xbb\xbf"


def text_lines(path, max_line: int, what: str):
    """The lines of a UTF-8 text file, numbered, each read with at most ``max_line`` bytes.

    A longer line is refused before it is read whole, split or converted; a leading byte-order
    mark is skipped.

    Parameters
    ----------
    path : str or path-like
        A regular file (:func:`open_regular`).
    max_line : int
        The longest line accepted, in bytes.
    what : str
        The kind of file, for messages ("trial list"...).

    Yields
    ------
    number : int
        The line's number, from 1.
    text : str
        The line, with its line end.

    Raises
    ------
    FeatureError
        A line longer than ``max_line`` bytes, or not UTF-8; as :func:`open_regular`.
    """
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


def file_size(f) -> int:
    """The size of an open file.

    Parameters
    ----------
    f : file object
        Open, with a ``fileno``.

    Returns
    -------
    int
        Bytes (``os.fstat``).
    """
    return os.fstat(f.fileno()).st_size


def is_comment(first: str, where: str, entry: str = "an id") -> bool:
    """Whether a line of an emkit list is a comment: its first field is ``#`` alone (``# text``).

    Any other first field starting with ``#`` is refused: Kaldi's lists have no comments and read
    ``#utt1 spk1`` as an entry, which skipping would silently lose (a comment needs white space
    after its ``#``).

    Parameters
    ----------
    first : str
        The line's first field.
    where : str
        The file and line, for the message.
    entry : str, default "an id"
        What the first field is, for the message ("an id", "a file name").

    Returns
    -------
    bool

    Raises
    ------
    FeatureError
        A first field that starts with ``#`` and is not ``#``.
    """
    if not first.startswith("#"):
        return False
    if first == "#":
        return True
    raise FeatureError(f"{where}: the line starts with {show_key(first)}: emkit refuses {entry} "
                       "starting with '#' rather than lose it as a comment (Kaldi has no comments: "
                       "it reads the line as an entry); rename it, or write a comment as '# text' "
                       "('#' then a space)")


_CHUNK = 1 << 20


def _fill(f, view, where: str) -> None:
    done = 0
    while done < len(view):
        n = f.readinto(view[done:])
        if not n:
            raise FeatureError(f"{where}: the data end early")
        done += n


def read_values(f, count: int, dtype, where: str, out_dtype=None) -> np.ndarray:
    """Read values of a dtype from a binary file (their size already checked) as a 1-D array.

    A conversion is done 1 MiB at a time, so that at most the result plus 1 MiB is allocated.

    Parameters
    ----------
    f : binary file object
    count : int
        The number of values.
    dtype : numpy.dtype or str
        Their dtype in the file (byte order included).
    where : str
        The file (and utterance), for the message.
    out_dtype : numpy.dtype, str or None, default None
        The result's dtype; None: ``dtype`` in native byte order.

    Returns
    -------
    ndarray of shape (count,)

    Raises
    ------
    FeatureError
        The file ends before ``count`` values.
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
        with np.errstate(invalid="ignore"):  # (a signalling NaN: refused by the caller's check)
            out[start:start + n] = np.frombuffer(buffer, dtype=dtype, count=n)
    return out


def as_features(array, where: str, n_features: int | None = None, *,
                check_finite: bool = True) -> np.ndarray:
    """An array as a finite float64 feature matrix, with at least one frame and one feature.

    Parameters
    ----------
    array : array-like of shape (n_frames, n_features)
        Integer or float values.
    where : str
        The file and utterance, for messages.
    n_features : int or None, default None
        The number of features required; None: any.
    check_finite : bool, keyword-only, default True
        Scan for NaN and infinity (False: for arrays already checked).

    Returns
    -------
    ndarray of shape (n_frames, n_features)
        C-contiguous float64 (``array`` itself when it is already so).

    Raises
    ------
    FeatureError
        Not a 2-D numeric array, no frame or no feature, another number of features than
        ``n_features``, or NaN or infinity.
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
