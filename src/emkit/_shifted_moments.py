"""Moments of statistics about a shift, kept beside the raw sums of :class:`emkit.stats.GMMStats`.

``px = sum_t r (x_t - s)`` and ``pxx = sum_t r (x_t - s)**2`` keep the variance's precision for
data far from the origin, where ``E[x^2] - E[x]^2`` of the raw sums loses it.
"""

from __future__ import annotations

import numpy as np


class _Shifted:
    """Moments about ``shift`` (D,): ``px = sum r (x - s)``, ``pxx = sum r (x - s)**2`` (C, D) (or
    None)."""

    __slots__ = ("shift", "px", "pxx")

    def __init__(self, shift, px, pxx):
        self.shift, self.px, self.pxx = shift, px, pxx

    def raw(self, n):
        """The raw sums ``(sum r x, sum r x**2 or None)`` for the occupancies ``n`` (C,)."""
        n = np.asarray(n)[:, None]
        sum_px = self.px + n * self.shift
        if self.pxx is None:
            return sum_px, None
        return sum_px, self.pxx + 2.0 * self.shift * self.px + n * (self.shift * self.shift)

    def copy(self):
        return _Shifted(self.shift.copy(), self.px.copy(), None if self.pxx is None else self.pxx.copy())

    def __getstate__(self):
        return (self.shift, self.px, self.pxx)

    def __setstate__(self, state):
        self.shift, self.px, self.pxx = state
