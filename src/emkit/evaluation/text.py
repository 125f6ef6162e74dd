"""Evaluation measures as text, for the tables the command line and the recipe report print.

Pure Python (no numpy), so that the command line can import it freely.
"""

from __future__ import annotations

import math

__all__ = ["format_measure", "aligned"]

#: Magnitude from which a measure is written in scientific notation.
LARGE = 1e6


def format_measure(value, decimals: int) -> str:
    """A measure as text: fixed decimals, or scientific notation where those would not fit.

    Parameters
    ----------
    value : float
    decimals : int
        Fixed decimals (``"0.123"``); scientific notation with three significant digits
        (``"1.00e+300"``) for a magnitude of :data:`LARGE` or more (a Cllr of badly calibrated
        scores may be 1e300) or one that would print as zero.

    Returns
    -------
    str
        ``0``, ``inf`` and ``nan`` print as ``0.000``, ``inf`` and ``nan``.
    """
    value = float(value)
    if not math.isfinite(value) or value == 0 or 10.0 ** -decimals <= abs(value) < LARGE:
        return f"{value:.{decimals}f}"
    return f"{value:.2e}"


def aligned(rows, widths) -> list:
    """The lines of a table, cells one space apart, the first left-aligned, others right-aligned.

    Parameters
    ----------
    rows : sequence of lists of str
        The cells of each row; a row may have fewer cells than ``widths``.
    widths : sequence of int
        Least width of each column (a column is as wide as its widest cell).

    Returns
    -------
    list of str
    """
    widths = [max([w] + [len(row[i]) for row in rows if len(row) > i])
              for i, w in enumerate(widths)]
    return [" ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                     for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
