"""The common Kaldi object, a plain binary matrix or vector (``FM``, ``DM``, ``FV``, ``DV``), read
from bytes held in memory: one match and one conversion per entry instead of a few dozen small
reads, seeks and checks.

These readers take an object only where every check of the general reader of
:mod:`emkit.io.kaldi` passes: a printable key not seen before (archives), sizes of at least 1
within ``max_utterance_bytes``, values that lie inside the file and the bytes held, and all
finite.  At anything else they return None and the general reader reads the object again from
its start: it alone raises, so errors and their messages are the same either way.
"""

from __future__ import annotations

import re

import numpy as np

from ._message_text import MAX_KEY_BYTES, plausible_key

#: Bytes of an archive held in memory at a time (a larger matrix is left to the general reader)
WINDOW = 1 << 20
# a plain object's header: the binary marker, type token, size byte 4 and int32 rows (matrices),
# size byte 4 and int32 columns
_OBJECT = rb"\0B(?P<type>[FD])(?:M \x04(?P<rows>....)|V )\x04(?P<cols>....)"
_HEADER = re.compile(_OBJECT, re.DOTALL)
# an archive entry: white space, a key of at most MAX_KEY_BYTES bytes, a space, then the header
_ENTRY = re.compile(rb"[ \t\n\r]*([^ \t\n\r]{1,%d}) " % MAX_KEY_BYTES + _OBJECT, re.DOTALL)
_LONGEST_HEADER = 15
# held before an entry is matched; more white space before its key than this leaves the entry
# at a window's edge to the general reader
_LONGEST_ENTRY_HEADER = 64 + MAX_KEY_BYTES + 1 + _LONGEST_HEADER
_DTYPES = {b"F": np.dtype("<f4"), b"D": np.dtype("<f8")}
# float64 values checked finite together: one numpy call for many small matrices
_CHECKED_AT_ONCE = 1 << 13


def _shape(match, limit: int):
    """``(dtype, rows, cols)`` of a header match, or None where the general reader would refuse
    the sizes (below 1, or over the limit as float64)."""
    kind, rows, cols = match.group("type", "rows", "cols")
    rows = 1 if rows is None else int.from_bytes(rows, "little", signed=True)
    cols = int.from_bytes(cols, "little", signed=True)
    if rows < 1 or cols < 1 or rows * cols * 8 > limit:
        return None
    return _DTYPES[kind], rows, cols


def _as_float64(values: np.ndarray) -> np.ndarray:
    """``values`` as float64, quietly: a float32 signalling NaN (a value of the file) makes the
    cast warn "invalid value"; it is refused by the finite check that follows, naming the file."""
    with np.errstate(invalid="ignore"):
        return values.astype(np.float64)


def _first_not_finite(pending: list):
    """The index in ``pending`` (``[(key, values, start)]``) of the first entry with a value
    that is not finite; None when all are (one check of all their values together)."""
    if np.isfinite(np.concatenate([values for _, values, _ in pending])).all():
        return None
    return next(i for i, (_, values, _) in enumerate(pending) if not np.isfinite(values).all())


class ArchiveWindow:
    """Plain entries of an archive read from a window of ``WINDOW`` bytes of its file.

    Parameters
    ----------
    f : binary file object
        The archive, open (a regular file).
    size : int
        Its size in bytes.
    limit : int
        ``max_utterance_bytes``.
    """

    def __init__(self, f, size: int, limit: int):
        self.f, self.size, self.limit = f, size, limit
        self.start, self.held = 0, b""  # the window: the file's bytes from `start`

    def _hold(self, first: int, stop: int) -> None:
        """Make the window hold bytes ``first`` to ``stop`` where the file has them and
        they fit (else it holds what it can from ``first``)."""
        end = self.start + len(self.held)
        if self.start <= first and stop <= end:
            return
        if first == self.start and self.held:  # already as far as a window goes
            return
        self.f.seek(first)
        self.start, self.held = first, self.f.read(min(WINDOW, self.size - first))

    def read(self, position: int, out: dict, progress) -> int:
        """Read the plain entries from byte ``position`` on into ``out``, up to the first that is
        not one (or the end).

        Parameters
        ----------
        position : int
            Where an entry (or white space before it) starts.
        out : dict
            ``{key: matrix}`` read so far; the entries read are added.
        progress : emkit._progress.Progress
            Advanced at each megabyte reached.

        Returns
        -------
        int
            The byte where the entry not read starts (the file's size at its end).
        """
        pending, n_pending = [], 0  # entries read since the last finite check
        while position < self.size:
            entry = self._entry(position, out)
            if entry is None:
                break
            key, values, shape, end = entry
            out[key] = values.reshape(shape)
            pending.append((key, values, position))
            n_pending, position = n_pending + values.size, end
            if n_pending >= _CHECKED_AT_ONCE or position // 10**6 != progress.done:
                if (bad := self._check(pending, out)) is not None:
                    return bad
                pending, n_pending = [], 0
                progress.advance(position // 10**6 - progress.done)
        bad = self._check(pending, out) if pending else None
        return position if bad is None else bad

    @staticmethod
    def _check(pending: list, out: dict):
        """None when the values of the entries pending are all finite; else the start of the
        first entry that has one not finite, dropped from ``out`` with those after it (the
        general reader reads it again, and raises)."""
        first = _first_not_finite(pending)
        if first is None:
            return None
        for key, _, _ in pending[first:]:
            del out[key]
        return pending[first][2]

    def _entry(self, position: int, out: dict):
        """``(key, values, shape, end)`` of the entry at ``position`` (its float64 values, not
        yet checked finite), or None."""
        if position + _LONGEST_ENTRY_HEADER > self.start + len(self.held):  # (else held)
            self._hold(position, min(position + _LONGEST_ENTRY_HEADER, self.size))
        match = _ENTRY.match(self.held, position - self.start)
        if match is None:
            return None
        key = plausible_key(match.group(1))
        shape = _shape(match, self.limit)
        if key is None or key in out or shape is None:
            return None
        dtype, rows, cols = shape
        stop = self.start + match.end() + rows * cols * dtype.itemsize
        if stop > self.start + len(self.held):  # values past the window: move it to the entry
            if stop > self.size or stop - position > WINDOW:
                return None
            self._hold(position, stop)
            held = self.start <= position and stop <= self.start + len(self.held)
            return self._entry(position, out) if held else None
        values = _as_float64(np.frombuffer(self.held, dtype, rows * cols, match.end()))
        return key, values, (rows, cols), stop


def read_plain_at(f, offset: int, size: int, limit: int):
    """The plain object at byte ``offset`` of a file (as a script file points to one).

    Parameters
    ----------
    f : binary file object
        Open, a regular file.
    offset : int
        Where the object starts (``\\0B``), at most ``size``.
    size : int
        The file's size in bytes.
    limit : int
        ``max_utterance_bytes``.

    Returns
    -------
    tuple or None
        ``(matrix, end)``: the finite float64 (rows, cols) matrix and the byte after it; None
        where the object is not such a matrix of at most ``WINDOW`` bytes.
    """
    f.seek(offset)
    head = f.read(_LONGEST_HEADER)
    match = _HEADER.match(head)
    shape = match and _shape(match, limit)
    if not shape:
        return None
    dtype, rows, cols = shape
    start = offset + match.end()
    n_bytes = rows * cols * dtype.itemsize
    if start + n_bytes > size or n_bytes > WINDOW:
        return None
    f.seek(start)
    data = f.read(n_bytes)
    if len(data) != n_bytes:
        return None
    values = _as_float64(np.frombuffer(data, dtype))
    if not np.isfinite(values).all():
        return None
    return values.reshape(rows, cols), start + n_bytes
