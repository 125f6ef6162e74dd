"""Kaldi's matrix ranges, the ``[...]`` that may end an scp entry, read by kaldi-table's rules.

``[r1:r2]`` (rows) or ``[r1:r2,c1:c2]`` (rows, columns), both ends inclusive; ``:`` alone takes
all the rows or all the columns (``[:,13:25]``, ``[0:99,:]``).  Columns must lie inside the
matrix.  The last row may lie up to 2 rows past the matrix's last (Kaldi's tolerance of 3 for
segments whose times were rounded to frames): the range is cut at the last row, with a warning,
as Kaldi does.
"""

from __future__ import annotations

import re

import numpy as np

from .._progress import logger
from .untrusted import FeatureError

#: rows past the end a range may name, as in Kaldi (``last row < rows + ROW_TOLERANCE``)
ROW_TOLERANCE = 3

_TRAILING_BRACKETS = re.compile(r"^(.*)\[([^\[\]]*)\]$")
_PART = re.compile(r"^(?::|(\d{1,9}):(\d{1,9}))$")  # ':' or 'first:last' (int32 values)
_FORMS = "[r1:r2] or [r1:r2,c1:c2], ':' alone for all rows or columns"


def split_range(spec: str, where: str):
    """``(file name, range)`` of an scp entry's rxfilename: the range None without one, else
    ``(rows, columns)``, each ``(first, last)`` or None for all."""
    match = _TRAILING_BRACKETS.match(spec)
    if match is None:
        return spec, None
    parts = [_PART.match(part) for part in match.group(2).split(",")]
    if len(parts) > 2 or None in parts:
        raise FeatureError(f"{where}: the entry ends in a '[...]' that is not a Kaldi matrix range "
                           f"(expected {_FORMS}; kaldiio's single rows and steps are not Kaldi's)")
    bounds = [None if part.group(1) is None else (int(part.group(1)), int(part.group(2)))
              for part in parts]
    return match.group(1), (bounds[0], bounds[1] if len(bounds) == 2 else None)


def _checked_rows(first: int, last: int, rows: int, where: str) -> int:
    """The last row to take: ``last`` cut to the matrix when within Kaldi's tolerance."""
    if first > last or first >= rows or last >= rows + ROW_TOLERANCE:
        raise FeatureError(f"{where}: the range selects rows {first}:{last} (inclusive) but the "
                           f"matrix has {rows} rows (Kaldi allows a last row up to "
                           f"{rows + ROW_TOLERANCE - 1}, cut to {rows - 1})")
    if last >= rows:
        logger.warning("%s: the range's rows %d:%d go past the matrix's %d rows: cut at row %d, "
                       "as Kaldi does", where, first, last, rows, rows - 1)
    return min(last, rows - 1)


def apply_range(matrix: np.ndarray, ranges, where: str) -> np.ndarray:
    """``matrix`` (rows, cols) cut to ``ranges`` from :func:`split_range` (a contiguous copy)."""
    if ranges is None:
        return matrix
    rows, cols = ranges
    if rows is not None:
        first = rows[0]
        matrix = matrix[first:_checked_rows(*rows, matrix.shape[0], where) + 1]
    if cols is not None:
        first, last = cols
        if first > last or last >= matrix.shape[1]:
            raise FeatureError(f"{where}: the range selects columns {first}:{last} (inclusive) but "
                               f"the matrix has {matrix.shape[1]} columns")
        matrix = matrix[:, first:last + 1]
    return np.ascontiguousarray(matrix)
