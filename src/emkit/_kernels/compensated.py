"""Compensated (error-free) float64 arithmetic: the second-order statistics of a batch centred on
the UBM means without the cancellation of the plain formula.

``S - 2 F m + n m**2`` subtracts terms each about ``n m**2``: far from the origin
(``|m| >> sigma``) the plain difference loses ``log10(m**2 / sigma**2)`` digits.  Dekker's and
Knuth's transformations give each product and sum with its rounding error, and the sums over the
batch are exact splits (the extraction of Rump et al.'s AccSum).
"""

from __future__ import annotations

import numpy as np

__all__ = ["centred_second_moments", "centre_in_blocks"]


_SPLITTER = 134217729.0  # 2**27 + 1 (Dekker's split of a float64 into two 26-bit halves)


def _two_product(a, b):
    """``(p, e)`` with ``p = fl(a * b)`` and ``p + e == a * b`` exactly (Dekker; no FMA in numpy)."""
    p = a * b
    ah = a * _SPLITTER
    ah = ah - (ah - a)
    al = a - ah
    bh = b * _SPLITTER
    bh = bh - (bh - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _two_sum(a, b):
    """``(s, e)`` with ``s = fl(a + b)`` and ``s + e == a + b`` exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _split_sum(A):
    """``(hi, lo)`` (A.shape[1:]) with ``hi + lo`` the sum of ``A`` over axis 0 to about one
    rounding of the result (and ``hi`` exact): each entry is split into a high part on a common
    grid, whose sum is exact, and a small remainder (the extraction of Rump et al.'s AccSum)."""
    sigma = _grid(np.abs(A).max(axis=0), len(A))
    hi = (A + sigma) - sigma
    return hi.sum(axis=0), (A - hi).sum(axis=0)


def _grid(top, length: int):
    """The grid of :func:`_split_sum` for ``length`` entries of largest magnitude ``top``."""
    # a power of two >= 2 * S * max|A|: the high parts are multiples of its ulp, their sum exact
    _, exponent = np.frexp(top * (2.0 * length))
    return np.ldexp(1.0, exponent) * 1.5  # 1.5 * 2**e: A + sigma stays in [2**e, 2**(e+1))


def centred_second_moments(S, F, n, m):
    """``sum_s (S_s - 2 F_s m + n_s m**2)`` (C, D): the second-order statistics of a batch centred on
    ``m`` (C, D), from the raw sums ``S`` (B, C, D), ``F`` (B, C, D), ``n`` (B, C).

    The three terms are each about ``n m**2``: far from the origin (``|m| >> sigma``) their plain
    difference loses ``log10(m**2 / sigma**2)`` digits (all of them at 1e8).  Here the sums over the
    batch are exact splits (:func:`_split_sum`) and the products and differences are evaluated with
    their rounding errors (error-free transformations), so the result is as accurate as the
    statistics themselves, for about the cost of the plain formula.
    """
    return _centred_from_sums(*_split_sum(S), *_split_sum(F), *_split_sum(n), m)


#: Largest binary exponent of the statistics that Dekker's split takes as they are: it multiplies
#: by 2**27 + 1, which overflows above 2**997 (sums of counts near 1e300 reach that).
_LARGEST_EXPONENT = 960


def _centred_from_sums(S_hi, S_lo, F_hi, F_lo, n_hi, n_lo, m):
    """:func:`centred_second_moments` from the split sums; statistics too large to split are
    scaled down by a power of two (exact) and the result scaled back up."""
    top = max(np.abs(A).max(initial=0.0) for A in (S_hi, F_hi, n_hi))
    excess = int(np.frexp(top)[1]) - _LARGEST_EXPONENT if np.isfinite(top) else 0
    if excess <= 0:
        return _centred_from_scaled_sums(S_hi, S_lo, F_hi, F_lo, n_hi, n_lo, m)
    scaled = (np.ldexp(A, -excess) for A in (S_hi, S_lo, F_hi, F_lo, n_hi, n_lo))
    return np.ldexp(_centred_from_scaled_sums(*scaled, m), excess)


def _centred_from_scaled_sums(S_hi, S_lo, F_hi, F_lo, n_hi, n_lo, m):
    n_hi, n_lo = n_hi[:, None], n_lo[:, None]
    m2 = 2.0 * m  # exact
    p2, e2 = _two_product(F_hi, m2)  # 2 m F
    q, eq = _two_product(m, m)  # m**2
    p3, e3 = _two_product(n_hi, q)  # n m**2
    s1, r1 = _two_sum(S_hi, -p2)
    s2, r2 = _two_sum(s1, p3)
    small = (S_lo - m2 * F_lo) + (n_lo * q + n_hi * eq)
    return s2 + ((r1 + r2) + ((e3 - e2) + small))


def centre_in_blocks(blocks, m):
    """``(n (B, C), F - n m (B, C, D), centred_second_moments(S, F, n, m))`` of a batch that
    ``blocks()`` gives as a new iterator over consecutive blocks of its rows ``(n, F, S)`` at
    every call: read twice (the largest entries, then the sums), so that only the result and
    one block are held, not the batch's ``F`` and ``S`` and their split copies.  Bit for bit the
    whole batch's :func:`centred_second_moments` (numpy sums over axis 0 row after row, in
    order, as :func:`_add_rows` does; the maxima and the grids are exact)."""
    rows, top_F, top_S = [], None, None
    for n, F, S in blocks():
        rows.append(n)
        top_F = _running_max(top_F, F)
        top_S = _running_max(top_S, S)
    n = np.concatenate(rows)
    grid_F, grid_S = _grid(top_F, len(n)), _grid(top_S, len(n))
    fnorm = np.empty((len(n), *np.shape(m)))
    sums, start = [None] * 4, 0
    for n_block, F, S in blocks():
        fnorm[start : start + len(F)] = F - n_block[:, :, None] * m
        start += len(F)
        for k, (A, grid) in enumerate(((S, grid_S), (F, grid_F))):
            hi = (A + grid) - grid
            sums[2 * k] = _add_rows(sums[2 * k], hi)
            sums[2 * k + 1] = _add_rows(sums[2 * k + 1], A - hi)
    if start != len(n):
        raise RuntimeError(f"the batch's rows changed between two reads: {len(n)}, then {start}")
    return n, fnorm, _centred_from_sums(*sums, *_split_sum(n), m)


def _running_max(top, A):
    block = np.abs(A).max(axis=0)
    return block if top is None else np.maximum(top, block, out=top)


def _add_rows(total, A):
    """``total`` plus the rows of ``A`` one after the other (``A.sum(axis=0)`` when ``total`` is
    None): in numpy's order, so that a sum in blocks is the sum of the whole."""
    if total is None:
        total, A = A[0].copy(), A[1:]
    for row in A:
        total += row
    return total
