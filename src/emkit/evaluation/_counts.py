"""The distinct scores of a set of trials, with how many target and non-target scores take each:
every threshold measure of :mod:`emkit.evaluation.metrics` (DET points, ROCCH, EER, minDCF,
min Cllr) is computed from them.

They cost about one sort of the scores: the target and the non-target scores are sorted apart,
then merged by a stable sort (two sorted runs, which numpy's stable sort merges in linear time),
so no ``argsort`` of all the scores is needed, and at most about five arrays of the scores' size
are held at once.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["ScoreCounts", "score_counts", "det_points", "pav_posterior"]


class ScoreCounts(NamedTuple):
    """``values`` (m,): the distinct scores, increasing; ``n_tar``, ``n_non`` (m,) int64: how many
    target and non-target scores equal each."""

    values: np.ndarray
    n_tar: np.ndarray
    n_non: np.ndarray


def score_counts(tar: np.ndarray, non: np.ndarray) -> ScoreCounts:
    """The :class:`ScoreCounts` of finite float64 scores ``tar`` (n_target,) and ``non``
    (n_nontarget,), both non-empty (neither is modified)."""
    tar = np.sort(tar)
    merged = np.concatenate([tar, non])
    merged[tar.size:].sort()
    merged.sort(kind="stable")  # two sorted runs: a linear merge
    new = np.empty(merged.size, dtype=bool)
    new[0] = True
    np.not_equal(merged[1:], merged[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    del new
    values = merged[starts]
    del merged
    n_non = np.empty_like(starts)  # the group sizes for now
    np.subtract(starts[1:], starts[:-1], out=n_non[:-1])
    n_non[-1] = tar.size + non.size - starts[-1]
    del starts
    # each target score falls in the group of the equal distinct value (0.0 and -0.0 together)
    n_tar = np.bincount(np.searchsorted(values, tar), minlength=values.size)
    n_non -= n_tar
    return ScoreCounts(values, n_tar, n_non)


def det_points(counts: ScoreCounts):
    """``(p_miss, p_fa, thresholds)`` of :func:`emkit.evaluation.metrics.det_curve`: the
    distinct scores from the lowest target score up to the lowest threshold that rejects every
    non-target (``inf`` when the top score is a non-target), in increasing order."""
    values, n_tar, n_non = counts
    total_tar, total_non = int(n_tar.sum()), int(n_non.sum())
    first = int(np.argmax(n_tar > 0))  # the highest threshold that accepts every target
    last = values.size - int(np.argmax(n_non[::-1] > 0))  # just above the top non-target
    # the counts below each threshold, cumulated into float64 (exact below 2**53) and divided
    # in place: the rates are count / total as numpy divides integers
    p_miss = np.zeros(last - first + 1)
    np.cumsum(n_tar[first:last], out=p_miss[1:])
    p_miss /= total_tar
    p_fa = np.zeros(last - first + 1)
    np.cumsum(n_non[first:last], out=p_fa[1:])
    p_fa += n_non[:first].sum()
    np.subtract(total_non, p_fa, out=p_fa)
    p_fa /= total_non
    thresholds = values[first:last + 1] if last < values.size else \
        np.append(values[first:], np.inf)
    return p_miss, p_fa, thresholds


def pav_posterior(counts: ScoreCounts) -> np.ndarray:
    """The target posterior of each distinct score (m,) by PAV (pool-adjacent-violators),
    weighted by the trials at each score: the isotonic regression of the fraction of targets.

    The same floats as scikit-learn's ``IsotonicRegression().fit_transform`` on the scores'
    ranks, whose arithmetic this follows (its averaging of one value, then its PAV function),
    without its sorts and interpolation.
    """
    weight = np.add(counts.n_tar, counts.n_non, dtype=np.float64)  # (exact below 2**53)
    fraction = counts.n_tar / weight
    fraction *= weight  # (y * w) / w: as IsotonicRegression averages the one value of each rank
    fraction /= weight
    return _isotonic_in_place(fraction, weight)


def _isotonic_in_place(y: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The weighted non-decreasing isotonic regression of ``y`` (m,) by ``weight`` (m,), both
    float64 and overwritten: scipy's PAV, which scikit-learn's ``isotonic_regression`` calls on
    copies of them (2 arrays of m floats), is given them to work in.  Before scipy 1.12 (no such
    PAV), the PAV that scikit-learn runs there, on them likewise."""
    try:
        from scipy.optimize._pava_pybind import pava
    except ImportError:
        return _sklearn_isotonic_in_place(y, weight)
    blocks = np.full(y.size + 1, -1, dtype=np.intp)  # (as scipy's isotonic_regression makes it)
    try:
        return pava(y, weight, blocks)[0]
    except TypeError:  # (a private function: its arguments changed, refused before any work)
        return _sklearn_isotonic_in_place(y, weight)


def _sklearn_isotonic_in_place(y: np.ndarray, weight: np.ndarray) -> np.ndarray:
    try:
        from sklearn._isotonic import _inplace_contiguous_isotonic_regression
    except ImportError:  # (a scikit-learn without it: its public function, on copies)
        from sklearn.isotonic import isotonic_regression

        return isotonic_regression(y, sample_weight=weight)
    _inplace_contiguous_isotonic_regression(y, weight)
    return y
