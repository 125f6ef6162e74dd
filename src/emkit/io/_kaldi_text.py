"""Kaldi text matrices, ``[ row \\n row ]``, read for :mod:`emkit.io.kaldi`.

Numbers must be written in ASCII as Kaldi writes them (:data:`~emkit.io.untrusted.ASCII_NUMBER`:
not ``1_0``, not non-ASCII digits); a refused row is named by its line in the file, found only
once reading has failed.  ``r`` is the archive reader: its open file ``r.f`` and its size limit
``r.limit``.
"""

from __future__ import annotations

import re
from array import array

import numpy as np

from .untrusted import (ASCII_NUMBER, NOT_FINITE, FeatureError, check_utterance_size,
                        number_advice, show_key)

_PIECE = 1 << 16  # bytes of a text matrix read and converted at a time


#: The bytes of a row of numbers (ASCII_NUMBER, NOT_FINITE and white space): a row holding any
#: other byte ('_', a non-ASCII digit) is refused without asking float(), which takes "1_0"
_NUMBER_BYTES = b"0123456789+-.eE" + b"infatyINFATY" + b" \t\n\r\x0b\x0c"


def _line_at(f, offset: int) -> int:
    """The line number (from 1) of byte ``offset`` of the open file ``f`` (for a message)."""
    position, newlines, done = f.tell(), 0, 0
    f.seek(0)
    while done < offset:
        chunk = f.read(min(1 << 20, offset - done))
        if not chunk:
            break
        newlines, done = newlines + chunk.count(b"\n"), done + len(chunk)
    f.seek(position)
    return newlines + 1


def _row_error(r, text: bytes, offset: int, where: str, row: int) -> FeatureError:
    """The error for a row of a text matrix (``text``, at byte ``offset``) that holds something
    else than numbers: its line in the file, and the token when Python would read it as a number
    (``1_0``, non-ASCII digits); other tokens are not quoted (the file's bytes are not echoed)."""
    for match in re.finditer(rb"\S+", text):
        token = match.group(0).decode("utf-8", "replace")
        if ASCII_NUMBER.fullmatch(token) or NOT_FINITE.fullmatch(token):
            continue
        line = _line_at(r.f, offset + match.start())
        where = f"{where}, line {line}: row {row} of the text matrix"
        try:
            float(token)
        except ValueError:
            return FeatureError(f"{where} holds something that is not a number")
        return FeatureError(f"{where} holds {show_key(token)}, not a number as Kaldi writes one "
                            f"({number_advice(token)})")
    return FeatureError(f"{where}: row {row} of the text matrix holds something that is not a "
                        "number")


def _start_of_row(r, first: int, stop: int, row: int) -> int:
    """The byte offset of the line of row ``row`` (from 0) of the text matrix whose rows lie
    between bytes ``first`` and ``stop``: rows are the lines that hold a number."""
    r.f.seek(first)
    done, line_start, rows_seen, has_number = first, first, 0, False
    while done < stop:
        block = r.f.read(min(_PIECE, stop - done))
        if not block:
            break
        position = 0
        while True:
            newline = block.find(b"\n", position)
            has_number = has_number or bool(block[position:None if newline < 0 else newline].strip())
            if newline < 0:
                break
            if has_number:
                if rows_seen == row:
                    return line_start
                rows_seen += 1
            has_number, line_start, position = False, done + newline + 1, newline + 1
        done += len(block)
    return line_start  # the last row, ended by the ']'


def _non_finite_error(r, first: int, stop: int, matrix: np.ndarray, where: str) -> FeatureError:
    """The error for a text matrix (rows between bytes ``first`` and ``stop``) holding NaN or an
    infinity (``nan``, ``inf``, or a number beyond float64 such as ``1e999``): the line, row and
    column of the first, the line found by reading the rows again (only now: reads that succeed
    pay for none of this)."""
    index = int(np.argmin(np.isfinite(matrix).ravel()))
    row, column = divmod(index, matrix.shape[1])
    position = r.f.tell()
    line = _line_at(r.f, _start_of_row(r, first, stop, row))
    r.f.seek(position)
    return FeatureError(f"{where}, line {line}: row {row + 1} of the text matrix contains NaN or "
                        f"infinite values (column {column + 1} is {matrix.flat[index]})")


def _add_numbers(values: array, text: bytes, count: int, r, where: str, row: int,
                 offset: int) -> int:
    """Append the numbers of ``text`` (part of row ``row``, at byte ``offset`` of the file) to
    ``values``; the row's new count."""
    tokens = text.split()
    if not text.translate(None, _NUMBER_BYTES):
        try:
            values.extend(map(float, tokens))
            return count + len(tokens)
        except ValueError:
            pass
    raise _row_error(r, text, offset, where, row)


def read_text_matrix(r, where: str) -> np.ndarray:
    """A text matrix; the file is positioned at its ``[``.

    Read :data:`_PIECE` bytes at a time into one growing buffer of float64 (8 bytes a value,
    whatever the number of rows), the size checked after every piece: a huge matrix is refused
    before it is all read, a token longer than a piece is not a number.
    """
    r.f.read(1)
    first = r.f.tell()
    values, rows, cols = array("d"), 0, None
    count, carry = 0, b""  # the values of the row being read, and its last, unfinished token
    while True:
        start = r.f.tell()
        block = r.f.read(_PIECE)
        if not block:
            raise FeatureError(f"{where}: the file ends before the closing ']' of a text matrix")
        end = block.find(b"]")
        if end >= 0:  # the next entry starts after the ']'
            r.f.seek(start + end + 1)
            block = block[:end] + b"\n"
        offset = start - len(carry)  # of the line being read
        lines = (carry + block).split(b"\n")
        last = lines.pop()  # the row going on into the next piece ("" when a line ends here)
        cut = len(last) - re.match(rb"\S*", last[::-1]).end()
        last, carry = last[:cut], last[cut:]
        if len(carry) >= _PIECE:
            raise FeatureError(f"{where}: row {rows + 1} of the text matrix holds something that "
                               "is not a number")
        for line in lines:
            count = _add_numbers(values, line, count, r, where, rows + 1, offset)
            offset += len(line) + 1
            if count:
                if cols is not None and count != cols:
                    raise FeatureError(f"{where}: rows of a text matrix have different lengths "
                                       f"({cols} and {count} values)")
                rows, cols, count = rows + 1, count, 0
                check_utterance_size((rows, cols), where, r.limit)
        count = _add_numbers(values, last, count, r, where, rows + 1, offset)
        check_utterance_size((rows + 1, cols or count), where, r.limit)  # a long row going on
        if end >= 0:
            matrix = np.array(values, dtype=np.float64).reshape(rows, cols or 0)
            if not np.isfinite(matrix).all():
                raise _non_finite_error(r, first, start + end, matrix, where)
            return matrix
