"""Evaluation of verification scores: EER, DCF, DET curves and Cllr.

Every function takes the scores of the **target** trials (same identity) and of the
**non-target** trials (different identities) as two 1-D arrays; larger scores mean "more
likely target".  Conventions used throughout:

- **Decision rule.** A trial is accepted as a target when ``score >= threshold``: at ``t``,
  ``P_miss(t)`` is the fraction of target scores ``< t``, ``P_fa(t)`` that of non-target scores
  ``>= t`` (ties are never split).  The operating points: every distinct score, and ``+inf``.
- **EER** is the ROCCH-EER (as in the BOSARIS toolkit): where the convex hull of the operating
  points in the (P_fa, P_miss) plane crosses ``P_miss = P_fa``; equivalently the largest Bayes
  error over priors, ``max_w min_t [w * P_miss(t) + (1 - w) * P_fa(t)]``.  Well defined with
  ties (a straight hull segment), at most 0.5: 0 for separated scores, 0.5 for equal ones.
- **DCF** (NIST): ``DCF(t) = C_miss * P_target * P_miss(t) + C_fa * (1 - P_target) * P_fa(t)``,
  normalised by the best trivial system's ``min(C_miss * P_target, C_fa * (1 - P_target))``.
  ``min_dcf`` (at most 1) is its minimum over thresholds; ``act_dcf`` (unbounded) its value at
  the Bayes threshold ``log(C_fa * (1 - P_target) / (C_miss * P_target))``, for scores that
  are calibrated natural-log likelihood ratios.
- **Cllr** (Brümmer): the cost in bits of natural-log likelihood-ratio scores,
  ``0.5 * (mean(log2(1 + exp(-tar))) + mean(log2(1 + exp(non))))``; ``min_cllr`` (at most 1,
  discrimination only) is Cllr after the optimal monotone (PAV, ties pooled) calibration.
"""

from __future__ import annotations

import itertools
import numbers
from collections import defaultdict
from typing import NamedTuple

import numpy as np

from .._describe import describe
from ._counts import ScoreCounts, det_points, pav_posterior, score_counts
from ._det_plot import plot_det_curves

__all__ = ["DETCurve", "det_curve", "rocch", "eer", "min_dcf", "act_dcf", "cllr", "min_cllr",
           "per_model", "plot_det_curves"]


class DETCurve(NamedTuple):
    """Operating points, in order of increasing threshold.

    Parameters
    ----------
    p_miss, p_fa, thresholds : ndarray of shape (n_points,)
        Miss rates (non-decreasing), false-alarm rates (non-increasing) and thresholds
        (increasing; accept when ``score >= threshold``; may end with ``inf``).
    """

    p_miss: np.ndarray
    p_fa: np.ndarray
    thresholds: np.ndarray


def _check_scores(scores, name: str) -> np.ndarray:
    arr = np.asarray(scores)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must be an array of real scores; got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of scores; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must contain at least one score; got an empty array")
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must contain only finite scores; got {int(bad.sum())} "
                         f"non-finite value(s), the first {arr[i]} at index {i}")
    return arr


def check_labels(labels, n_trials: int, name: str = "labels", per: str = "trial") -> np.ndarray:
    """``labels`` as a boolean (n_trials,) array: booleans, or numbers 0/1 (1 = target trial)."""
    arr = np.asarray(labels)
    if arr.shape != (n_trials,):
        raise ValueError(f"{name} must have shape ({n_trials},), one label per {per}; got "
                         f"{arr.shape}")
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold booleans or 0/1 (1 = target trial); got dtype "
                        f"{arr.dtype}")
    if not np.isin(arr, (0, 1)).all():
        values = np.unique(arr)
        shown = ", ".join(repr(v) for v in values[:5].tolist())
        shown += ", ..." if values.size > 5 else ""
        raise ValueError(f"{name} must hold booleans or 0/1 (1 = target trial); got the values "
                         f"{shown}")
    return arr.astype(bool)


def _check_pair(target_scores, nontarget_scores):
    return (_check_scores(target_scores, "target_scores"),
            _check_scores(nontarget_scores, "nontarget_scores"))


def _check_real(value, name: str, *, low=0.0, high=None, open_high=True) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; "
                        f"got {type(value).__name__}: {describe(value)}")
    v = float(value)
    ok = np.isfinite(v) and v > low and (high is None or (v < high if open_high else v <= high))
    if not ok:
        rng = f"in ({low}, {high})" if high is not None else f"> {low}"
        raise ValueError(f"{name} must be a finite number {rng}; got {describe(value)}")
    return v


def _check_costs(p_target, c_miss, c_fa):
    return (_check_real(p_target, "p_target", high=1.0), _check_real(c_miss, "c_miss"),
            _check_real(c_fa, "c_fa"))


def det_curve(target_scores, nontarget_scores) -> DETCurve:
    """Miss and false-alarm rates at every threshold that matters.

    The points run from the highest threshold that accepts every target (``P_miss = 0``: the
    lowest target score) to the lowest one that rejects every non-target (``P_fa = 0``; ``inf``
    when the top score is a non-target).  Points outside that range are dominated and left out.
    Every distinct score in that range is a point (ties are kept together); the rates are
    ``count / n`` in float64, the values scikit-learn's ``det_curve`` gives.

    Parameters
    ----------
    target_scores, nontarget_scores : array-like of shape (n_target,) and (n_nontarget,)
        Finite real scores of the target and non-target trials (else ``ValueError``).

    Returns
    -------
    DETCurve
        ``(p_miss, p_fa, thresholds)``, each of shape (n_points,).
    """
    return DETCurve(*det_points(score_counts(*_check_pair(target_scores, nontarget_scores))))


def _rocch(counts: ScoreCounts, posterior) -> DETCurve:
    """The ROCCH vertices from the counts and their PAV posterior: the hull's vertices are the
    boundaries between the PAV blocks."""
    values, n_tar, n_non = counts
    total_tar, total_non = int(n_tar.sum()), int(n_non.sum())
    starts = np.flatnonzero(np.r_[True, posterior[1:] != posterior[:-1]])
    # the counts below each vertex (none below the first, at the lowest score): the blocks'
    # counts cumulated, not every score's
    tar_below = _sums_before(np.add.reduceat(n_tar, starts))
    non_below = _sums_before(np.add.reduceat(n_non, starts))
    p_miss = np.append(tar_below / total_tar, 1.0)
    p_fa = np.append((total_non - non_below) / total_non, 0.0)
    return DETCurve(p_miss, p_fa, np.append(values[starts], np.inf))


def _sums_before(counts: np.ndarray) -> np.ndarray:
    """``[0, c0, c0 + c1, ...]``: the sum of the ``counts`` (n,) before each (n,)."""
    below = np.zeros_like(counts)
    np.cumsum(counts[:-1], out=below[1:])
    return below


def rocch(target_scores, nontarget_scores) -> DETCurve:
    """Vertices of the ROC convex hull, in order of increasing threshold.

    The first vertex accepts everything (``P_miss = 0, P_fa = 1``), the last one nothing
    (``inf``: ``P_miss = 1, P_fa = 0``).  Found with PAV: the hull's vertices are the
    boundaries between the PAV blocks of the target posterior.

    Parameters
    ----------
    target_scores, nontarget_scores : array-like of shape (n_target,) and (n_nontarget,)

    Returns
    -------
    DETCurve
        The hull's vertices, each array of shape (n_vertices,).
    """
    counts = score_counts(*_check_pair(target_scores, nontarget_scores))
    return _rocch(counts, pav_posterior(counts))


def _eer(hull: DETCurve) -> float:
    p_miss, p_fa, _ = hull
    k = int(np.argmax(p_miss >= p_fa))  # first vertex on or past the diagonal; k >= 1
    d1 = p_fa[k - 1] - p_miss[k - 1]    # > 0
    d2 = p_miss[k] - p_fa[k]            # >= 0
    return float((p_miss[k - 1] * d2 + p_miss[k] * d1) / (d1 + d2))


def eer(target_scores, nontarget_scores) -> float:
    """Equal error rate (ROCCH-EER, see the module docstring).

    Parameters
    ----------
    target_scores, nontarget_scores : array-like of shape (n_target,) and (n_nontarget,)

    Returns
    -------
    float in [0, 0.5]

    Examples
    --------
    >>> eer([1.0, 2.0], [0.0, 1.0])   # hull through (P_fa, P_miss) = (0.5, 0) and (0, 0.5)
    0.25
    """
    return _eer(rocch(target_scores, nontarget_scores))


def _normalised_dcf(p_miss, p_fa, p_target, c_miss, c_fa):
    c_default = min(c_miss * p_target, c_fa * (1.0 - p_target))
    return (c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa) / c_default


def _min_dcf(points, p_target, c_miss, c_fa):
    """(min normalised DCF, its threshold) over the DET ``points`` of :func:`det_points`."""
    p_miss, p_fa, thr = points
    dcf = _normalised_dcf(p_miss, p_fa, p_target, c_miss, c_fa)
    best = int(np.argmin(dcf))
    return float(min(dcf[best], 1.0)), float(thr[best])  # trivial systems cost 1; guard rounding


def min_dcf(target_scores, nontarget_scores, p_target, c_miss=1.0, c_fa=1.0, *,
            return_threshold=False):
    """Minimum normalised detection cost over all thresholds (see the module docstring).

    Parameters
    ----------
    target_scores, nontarget_scores : array-like of shape (n_target,) and (n_nontarget,)
    p_target : float in (0, 1)
        Prior probability of a target trial, e.g. 0.01 or 0.001.
    c_miss, c_fa : float > 0
        Costs of a miss and of a false alarm.
    return_threshold : bool
        Also return the threshold reaching the minimum (the lowest one if several do;
        accept when ``score >= threshold``; may be ``inf``).

    Returns
    -------
    float in [0, 1], or (float, float) with the threshold.
    """
    p_target, c_miss, c_fa = _check_costs(p_target, c_miss, c_fa)
    value, threshold = _min_dcf(det_curve(target_scores, nontarget_scores), p_target, c_miss,
                                c_fa)
    return (value, threshold) if return_threshold else value


def act_dcf(target_scores, nontarget_scores, p_target, c_miss=1.0, c_fa=1.0) -> float:
    """Normalised detection cost of calibrated log-likelihood-ratio scores.

    Decisions at the Bayes threshold ``log(c_fa * (1 - p_target) / (c_miss * p_target))``
    (accept when ``score >= threshold``).

    Parameters
    ----------
    target_scores, nontarget_scores : array-like of shape (n_target,) and (n_nontarget,)
    p_target, c_miss, c_fa : float
        Target prior in (0, 1) and the costs (> 0), as in :func:`min_dcf`.

    Returns
    -------
    float >= 0 (above 1 for badly calibrated scores)
    """
    p_target, c_miss, c_fa = _check_costs(p_target, c_miss, c_fa)
    tar, non = _check_pair(target_scores, nontarget_scores)
    threshold = np.log(c_fa * (1.0 - p_target)) - np.log(c_miss * p_target)
    p_miss = np.count_nonzero(tar < threshold) / tar.size
    p_fa = np.count_nonzero(non >= threshold) / non.size
    return float(_normalised_dcf(p_miss, p_fa, p_target, c_miss, c_fa))


def cllr(target_scores, nontarget_scores) -> float:
    """Log-likelihood-ratio cost in bits; scores are natural-log likelihood ratios.

    Parameters
    ----------
    target_scores, nontarget_scores : array-like of shape (n_target,) and (n_nontarget,)

    Returns
    -------
    float >= 0
        0 for perfect, confident scores; 1 for the uninformative ``llr = 0``; unbounded.
    """
    tar, non = _check_pair(target_scores, nontarget_scores)
    costs = np.logaddexp(0.0, -tar), np.logaddexp(0.0, non)
    # averaged in units of 2^k ~ the largest cost (exact), so that huge scores cannot overflow
    k = np.frexp(max(c.max() for c in costs))[1]
    bits = 0.5 * sum(np.mean(np.ldexp(c, -k)) for c in costs) / np.log(2.0)
    with np.errstate(over="ignore"):  # inf only when Cllr itself is beyond float64 (~1.8e308)
        return float(np.ldexp(bits, k))


def _min_cllr(counts: ScoreCounts, p) -> float:
    """min Cllr from the counts and their PAV posterior ``p`` (see :func:`min_cllr`)."""
    _, n_tar, n_non = counts
    total_tar, total_non = int(n_tar.sum()), int(n_non.sum())
    odds_ratio = total_tar / total_non
    # A PAV block holding a target has p > 0, one holding a non-target p < 1, so the masked
    # divisions are safe; the blocks left out contribute exactly zero cost.
    t, n = n_tar > 0, n_non > 0
    # log2(1 + (1 - p) / p * odds) and log2(1 + p / (1 - p) / odds), computed in place: one
    # masked copy of p at a time beside the result, not four
    tar_odds = _masked(p, t, complement=True)
    tar_odds /= _masked(p, t)
    tar_odds *= odds_ratio
    tar_bits = n_tar[t] @ _log2_of_one_plus(tar_odds)
    non_odds = _masked(p, n)
    non_odds /= _masked(p, n, complement=True)
    non_odds /= odds_ratio
    non_bits = n_non[n] @ _log2_of_one_plus(non_odds)
    return float(min(0.5 * (tar_bits / total_tar + non_bits / total_non), 1.0))


def _masked(p: np.ndarray, mask: np.ndarray, complement: bool = False) -> np.ndarray:
    """A new array of ``p[mask]``, or of ``1 - p[mask]``."""
    out = p[mask]
    return np.subtract(1.0, out, out=out) if complement else out


def _log2_of_one_plus(x: np.ndarray) -> np.ndarray:
    """``log2(1 + x)``, in place."""
    x += 1.0
    return np.log2(x, out=x)


def min_cllr(target_scores, nontarget_scores) -> float:
    """Cllr after the optimal monotone (PAV) calibration of the scores.

    The PAV posteriors are turned into log-likelihood ratios by removing the empirical prior
    log-odds ``log(n_target / n_nontarget)``.  Tied scores get one calibrated value.

    Parameters
    ----------
    target_scores, nontarget_scores : array-like of shape (n_target,) and (n_nontarget,)

    Returns
    -------
    float in [0, 1]
    """
    counts = score_counts(*_check_pair(target_scores, nontarget_scores))
    return _min_cllr(counts, pav_posterior(counts))


def per_model(models, scores, labels, p_targets=(0.01,), c_miss=1.0, c_fa=1.0) -> list:
    """EER and minDCF of each model's trials, models in order of first appearance.

    Parameters
    ----------
    models, scores : array-like of shape (n_trials,)
        The model of each trial, and its score.
    labels : array-like of shape (n_trials,), bool or 0/1
        True (1) for a target trial.
    p_targets : sequence of float
        The target priors of the minDCFs.
    c_miss, c_fa : float
        Their costs (see :func:`min_dcf`).

    Returns
    -------
    list of dict
        One per model: ``model``, ``targets`` and ``nontargets`` (counts), ``eer`` and
        ``min_dcf`` (``{p_target: value}``), both None when the model has trials of one class.
    """
    scores = _check_scores(scores, "scores")
    if not isinstance(models, (list, tuple)):  # (a list of 10^7 ids is not made an array)
        models = np.asarray(models)
    shape = models.shape if isinstance(models, np.ndarray) else (len(models),)
    if shape != scores.shape:
        raise ValueError(f"models must have shape {scores.shape}, one model per score; got "
                         f"{shape}")
    labels = check_labels(labels, scores.size, "labels", per="score of scores")
    costs = {p: _check_costs(p, c_miss, c_fa) for p in p_targets}  # (before any work)
    # each model's trials, in file order, by one stable sort of the models' numbers (numbered in
    # order of first appearance): a mask per model made this O(n_models * n_trials)
    ids = defaultdict(itertools.count().__next__)
    keys = models.tolist() if isinstance(models, np.ndarray) else models
    numbers = np.fromiter(map(ids.__getitem__, keys), np.int64, len(keys))
    order = np.argsort(numbers, kind="stable")
    bounds = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(numbers, minlength=len(ids)), out=bounds[1:])
    rows = []
    for k, model in enumerate(ids):
        own = order[bounds[k]:bounds[k + 1]]
        own_scores, own_labels = scores[own], labels[own]
        tar, non = own_scores[own_labels], own_scores[~own_labels]
        row = {"model": model, "targets": tar.size, "nontargets": non.size, "eer": None,
               "min_dcf": None}
        if tar.size and non.size:
            row["eer"], row["min_dcf"] = _eer_and_min_dcfs(tar, non, costs)
        rows.append(row)
    return rows


def _eer_and_min_dcfs(tar: np.ndarray, non: np.ndarray, costs: dict):
    """``(eer, {p_target: min_dcf})`` of checked scores from one sort of them (``eer`` and
    ``min_dcf`` sort them each); ``costs``: ``{p_target: (p_target, c_miss, c_fa)}``."""
    counts = score_counts(tar, non)
    points = det_points(counts)
    min_dcfs = {p: _min_dcf(points, *cost)[0] for p, cost in costs.items()}
    return _eer(_rocch(counts, pav_posterior(counts))), min_dcfs
