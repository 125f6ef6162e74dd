"""Score normalisation: Z-norm, T-norm, ZT-norm, S-norm and adaptive S-norm.

bob.learn.em 2.x had ``znorm``, ``tnorm``, ``ztnorm`` and ``ztnorm_same_value``; 3.x dropped them.
Here every function works on score matrices computed by any system, with **models in rows and
probes in columns**:

===========================  ====================  ===========================================
argument                     shape                 content
===========================  ====================  ===========================================
``scores``                   (n_models, n_probes)  raw scores to normalise
``model_cohort_scores``      (n_models, n_zcohort) each model against the Z-cohort (impostor
                                                   probes)
``cohort_probe_scores``      (n_tcohort, n_probes) the T-cohort (impostor models) against each
                                                   probe
``cohort_cohort_scores``     (n_tcohort, n_zcohort) the T-cohort models against the Z-cohort
                                                   probes (ZT-norm only)
``same_speaker_mask``        (n_tcohort, n_zcohort) True where a T-cohort model and a Z-cohort
                                                   probe share an identity (ZT-norm only)
===========================  ====================  ===========================================

(When porting bob 2.x code, whose arguments were named ``rawscores_probes_vs_models`` etc., check
the orientation of its matrices.)  Means and standard deviations are taken
over the cohort axis; ``ddof`` is the standard deviation's delta degrees of freedom (1: the
unbiased estimate, the default).  Inputs are never modified.  :func:`cohort_scores` computes the
cohort matrices with any scoring callable (e.g. ``PLDA.log_likelihood_ratio``).
"""

from __future__ import annotations

import numbers

import numpy as np

from .._describe import describe

__all__ = ["znorm", "tnorm", "ztnorm", "snorm", "adaptive_snorm", "same_value_mask", "cohort_scores"]


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------


def _matrix(a, name: str, *, rows: int | None = None, cols: int | None = None,
            rows_of: str = "", cols_of: str = "") -> np.ndarray:
    if np.iscomplexobj(a):
        raise TypeError(f"{name} must be a real numeric 2-D array; got complex values")
    try:
        a = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a numeric 2-D array; got {type(a).__name__}") from None
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array; got shape {a.shape}")
    if rows is not None and a.shape[0] != rows:
        raise ValueError(f"{name} must have {rows} rows ({rows_of}); got shape {a.shape}")
    if cols is not None and a.shape[1] != cols:
        raise ValueError(f"{name} must have {cols} columns ({cols_of}); got shape {a.shape}")
    if not np.isfinite(a).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise ValueError(f"{name} contains NaN or infinity (first at index {bad})")
    return a


def _check_ddof(ddof) -> int:
    if isinstance(ddof, bool) or not isinstance(ddof, numbers.Integral) or ddof < 0:
        raise ValueError(f"ddof must be an integer >= 0; got {describe(ddof)}")
    return int(ddof)


def _stats(cohort: np.ndarray, axis: int, name: str, ddof: int, mask=None):
    """Scale exponent, mean and standard deviation of ``cohort`` along ``axis`` over the entries where
    ``mask`` is False (all entries without a mask), with clear errors for too small or constant
    cohorts.

    Returns ``(exponent, mean, std)``: ``mean`` and ``std`` are those of ``cohort / 2**exponent``,
    a power of two at most twice the largest usable magnitude of each row/column (applied by
    ``np.ldexp``: 2**1024, the scale of scores of 2**1023 and more, is no float64), so
    that neither the sums nor the squares overflow or underflow for scores near the ends of the float64 range
    (about 1e300 or 1e-300); normalise with :func:`_normalise`.
    """
    if cohort.shape[axis] == 0:
        raise ValueError(f"{name} has an empty cohort (shape {cohort.shape}): at least {ddof + 1} "
                         "cohort score(s) are needed per row/column")
    keep = np.ones(cohort.shape, dtype=bool) if mask is None else ~mask
    count = keep.sum(axis=axis)
    what = "row" if axis == 1 else "column"
    low = np.flatnonzero(count <= ddof)
    if low.size:
        raise ValueError(f"{name} {what} {int(low[0])} has {int(count[low[0]])} usable cohort score(s); "
                         f"at least {ddof + 1} are needed (ddof={ddof})")
    # a power of two: scaling is exact, so ordinary scores give bit-identical results
    exponent = np.frexp(np.where(keep, np.abs(cohort), 0.0).max(axis=axis))[1]
    scaled = np.where(keep, np.ldexp(cohort, -np.expand_dims(exponent, axis)), 0.0)  # in [-1, 1]
    mean = scaled.sum(axis=axis) / count
    centred = np.where(keep, scaled - np.expand_dims(mean, axis), 0.0)
    std = np.sqrt((centred * centred).sum(axis=axis) / (count - ddof))
    top = np.where(keep, scaled, -np.inf).max(axis=axis)
    spread = top - np.where(keep, scaled, np.inf).min(axis=axis)
    flat = np.flatnonzero((spread == 0) | (std == 0))  # equal scores can leave a rounding-sized std
    if flat.size:
        raise ValueError(f"{name} {what} {int(flat[0])} has a zero standard deviation (all its "
                         "usable cohort scores are equal): cannot normalise")
    return exponent, mean, std


def _normalise(s: np.ndarray, stats, axis: int, name: str) -> np.ndarray:
    """``(s - mean) / std`` with the cohort statistics of :func:`_stats` taken along ``axis``
    (1: one per row of ``s``, 0: one per column), in the cohort's scale; a ValueError naming
    ``name`` if a normalised score overflows float64."""
    exponent, mean, std = (np.expand_dims(v, axis) for v in stats)
    with np.errstate(over="ignore"):
        out = (np.ldexp(s, -exponent) - mean) / std
    if not np.isfinite(out).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(out))[0])
        raise ValueError(f"the normalised score at index {bad} overflows float64: the score is more "
                         f"than about 1e308 standard deviations of its cohort ({name}) away from the "
                         "cohort's mean")
    return out


# ---------------------------------------------------------------------------------------------
# normalisations
# ---------------------------------------------------------------------------------------------


def znorm(scores, model_cohort_scores, *, ddof: int = 1) -> np.ndarray:
    """Z-norm: ``(s[m, p] - mean_z[m]) / std_z[m]``, with the statistics of model ``m`` against
    the Z-cohort.

    Parameters
    ----------
    scores : array-like of shape (n_models, n_probes)
        Raw scores, models in rows.
    model_cohort_scores : array-like of shape (n_models, n_zcohort)
        Each model against the Z-cohort (impostor probes).
    ddof : int, default 1
        Delta degrees of freedom of the standard deviations (1: the unbiased estimate; 0: the
        maximum-likelihood one).

    Returns
    -------
    ndarray of shape (n_models, n_probes), float64

    Raises
    ------
    ValueError
        Non-finite scores, mismatched shapes, a cohort with at most ``ddof`` usable scores or
        with equal scores (zero standard deviation).
    """
    ddof = _check_ddof(ddof)
    s = _matrix(scores, "scores")
    z = _matrix(model_cohort_scores, "model_cohort_scores", rows=s.shape[0], rows_of="one per model")
    return _normalise(s, _stats(z, 1, "model_cohort_scores", ddof), 1, "model_cohort_scores")


def tnorm(scores, cohort_probe_scores, *, ddof: int = 1) -> np.ndarray:
    """T-norm: ``(s[m, p] - mean_t[p]) / std_t[p]``, with the statistics of the T-cohort models
    against probe ``p``.

    Parameters
    ----------
    scores : array-like of shape (n_models, n_probes)
        Raw scores, models in rows.
    cohort_probe_scores : array-like of shape (n_tcohort, n_probes)
        The T-cohort (impostor models) against each probe.
    ddof : int, default 1
        As in :func:`znorm`.

    Returns
    -------
    ndarray of shape (n_models, n_probes), float64

    Raises
    ------
    ValueError
        Non-finite scores, mismatched shapes, a cohort with at most ``ddof`` usable scores or
        with equal scores (zero standard deviation).
    """
    ddof = _check_ddof(ddof)
    s = _matrix(scores, "scores")
    t = _matrix(cohort_probe_scores, "cohort_probe_scores", cols=s.shape[1], cols_of="one per probe")
    return _normalise(s, _stats(t, 0, "cohort_probe_scores", ddof), 0, "cohort_probe_scores")


def ztnorm(scores, model_cohort_scores, cohort_probe_scores, cohort_cohort_scores,
           same_speaker_mask=None, *, ddof: int = 1) -> np.ndarray:
    """ZT-norm: Z-norm the raw scores and the T-cohort's scores, then T-norm with the latter.

    1. ``zs = znorm(scores, model_cohort_scores)``;
    2. ``zt = znorm(cohort_probe_scores, cohort_cohort_scores)``: each T-cohort model is
       Z-normalised with its scores against the Z-cohort, leaving out the entries where
       ``same_speaker_mask`` (n_tcohort, n_zcohort) is True (same identity: not impostor trials);
    3. ``tnorm(zs, zt)``.

    Parameters
    ----------
    scores : array-like of shape (n_models, n_probes)
        Raw scores, models in rows.
    model_cohort_scores : array-like of shape (n_models, n_zcohort)
        Each model against the Z-cohort (impostor probes).
    cohort_probe_scores : array-like of shape (n_tcohort, n_probes)
        The T-cohort (impostor models) against each probe.
    cohort_cohort_scores : array-like of shape (n_tcohort, n_zcohort)
        The T-cohort models against the Z-cohort probes.
    same_speaker_mask : bool ndarray of shape (n_tcohort, n_zcohort), optional
        True where a T-cohort model and a Z-cohort probe share an identity (left out); see
        :func:`same_value_mask`.  None: every entry is used.
    ddof : int, default 1
        As in :func:`znorm`, in all three steps.

    Returns
    -------
    ndarray of shape (n_models, n_probes), float64

    Raises
    ------
    ValueError
        Non-finite scores, mismatched shapes, a cohort with at most ``ddof`` usable scores or
        with equal scores (zero standard deviation).
    TypeError
        A ``same_speaker_mask`` that is not boolean.
    """
    ddof = _check_ddof(ddof)
    s = _matrix(scores, "scores")
    z = _matrix(model_cohort_scores, "model_cohort_scores", rows=s.shape[0], rows_of="one per model")
    t = _matrix(cohort_probe_scores, "cohort_probe_scores", cols=s.shape[1], cols_of="one per probe")
    tz = _matrix(cohort_cohort_scores, "cohort_cohort_scores", rows=t.shape[0], cols=z.shape[1],
                 rows_of="one per T-cohort model, as in cohort_probe_scores",
                 cols_of="one per Z-cohort probe, as in model_cohort_scores")
    mask = None
    if same_speaker_mask is not None:
        mask = np.asarray(same_speaker_mask)
        if mask.dtype != bool:
            raise TypeError(f"same_speaker_mask must be a boolean array; got dtype {mask.dtype}")
        if mask.shape != tz.shape:
            raise ValueError(f"same_speaker_mask must have the shape of cohort_cohort_scores {tz.shape}; "
                             f"got {mask.shape}")
    zs = _normalise(s, _stats(z, 1, "model_cohort_scores", ddof), 1, "model_cohort_scores")
    zt = _normalise(t, _stats(tz, 1, "cohort_cohort_scores", ddof, mask), 1, "cohort_cohort_scores")
    name = "cohort_probe_scores (after Z-norm)"
    return _normalise(zs, _stats(zt, 0, name, ddof), 0, name)


def snorm(scores, model_cohort_scores, cohort_probe_scores, *, ddof: int = 1) -> np.ndarray:
    """Symmetric normalisation: the average of Z-norm and T-norm,
    ``((s - mean_m) / std_m + (s - mean_p) / std_p) / 2``.

    Parameters
    ----------
    scores : array-like of shape (n_models, n_probes)
        Raw scores, models in rows.
    model_cohort_scores : array-like of shape (n_models, n_cohort)
        The models against the cohort.
    cohort_probe_scores : array-like of shape (n_cohort, n_probes)
        The cohort against the probes (the two cohorts may differ in size).
    ddof : int, default 1
        As in :func:`znorm`.

    Returns
    -------
    ndarray of shape (n_models, n_probes), float64

    Raises
    ------
    ValueError
        Non-finite scores, mismatched shapes, a cohort with at most ``ddof`` usable scores or
        with equal scores (zero standard deviation).
    """
    return adaptive_snorm(scores, model_cohort_scores, cohort_probe_scores, top_n=None, ddof=ddof)


def _top_n(a: np.ndarray, n: int, axis: int) -> np.ndarray:
    size = a.shape[axis]
    if n >= size:
        return a
    return np.take(np.partition(a, size - n, axis=axis), np.arange(size - n, size), axis=axis)


def adaptive_snorm(scores, model_cohort_scores, cohort_probe_scores, top_n: int | None = 200, *,
                   ddof: int = 1) -> np.ndarray:
    """Adaptive S-norm (Matejka et al., 2017): S-norm with, for each model (each probe), the
    statistics of its ``top_n`` highest cohort scores only.  ``top_n=None`` uses the whole cohort
    (plain S-norm); ``top_n`` larger than a cohort uses all of it.

    Parameters
    ----------
    scores : array-like of shape (n_models, n_probes)
        Raw scores, models in rows.
    model_cohort_scores : array-like of shape (n_models, n_cohort)
        The models against the cohort.
    cohort_probe_scores : array-like of shape (n_cohort, n_probes)
        The cohort against the probes.
    top_n : int or None, default 200
        Number of highest cohort scores kept per model and per probe (must exceed ``ddof``).
    ddof : int, default 1
        As in :func:`znorm`.

    Returns
    -------
    ndarray of shape (n_models, n_probes), float64

    Raises
    ------
    ValueError
        Non-finite scores, mismatched shapes, a cohort with at most ``ddof`` usable scores or
        with equal scores (zero standard deviation).
    """
    ddof = _check_ddof(ddof)
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, numbers.Integral)
                              or top_n <= ddof):
        raise ValueError(f"top_n must be None or an integer > ddof ({ddof}); got {describe(top_n)}")
    s = _matrix(scores, "scores")
    z = _matrix(model_cohort_scores, "model_cohort_scores", rows=s.shape[0], rows_of="one per model")
    t = _matrix(cohort_probe_scores, "cohort_probe_scores", cols=s.shape[1], cols_of="one per probe")
    names = ["model_cohort_scores", "cohort_probe_scores"]
    if top_n is not None and z.shape[1] and t.shape[0]:
        z, t = _top_n(z, int(top_n), 1), _top_n(t, int(top_n), 0)
        names = [f"{name} (its top {int(top_n)})" for name in names]  # (equal there, not in all)
    by_model = _normalise(s, _stats(z, 1, names[0], ddof), 1, names[0])
    by_probe = _normalise(s, _stats(t, 0, names[1], ddof), 0, names[1])
    return 0.5 * by_model + 0.5 * by_probe


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def same_value_mask(cohort_model_ids, cohort_probe_ids) -> np.ndarray:
    """The ``same_speaker_mask`` of :func:`ztnorm` (bob 2.x's ``ztnorm_same_value``).

    Parameters
    ----------
    cohort_model_ids : array-like of shape (n_tcohort,)
        Identity of each T-cohort model.
    cohort_probe_ids : array-like of shape (n_zcohort,)
        Identity of each Z-cohort probe.

    Returns
    -------
    ndarray of shape (n_tcohort, n_zcohort), bool
        True where the identities are equal.
    """
    a = np.asarray(cohort_model_ids)
    b = np.asarray(cohort_probe_ids)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError("cohort_model_ids and cohort_probe_ids must be 1-D; "
                         f"got shapes {a.shape} and {b.shape}")
    return a[:, None] == b[None, :]


def cohort_scores(score, models, probes, cohort_models=None, cohort_probes=None) -> dict:
    """The score matrices the normalisations need, from one scoring callable.

    Parameters
    ----------
    score : callable
        ``score(models, probes)`` returns an (n_models, n_probes) array, e.g.
        ``plda.log_likelihood_ratio`` or ``lambda m, p: linear_scoring(m, ubm, p)``.
    models, probes
        What ``score`` takes: the enrolled models and the probes.
    cohort_models : optional
        The T-cohort (scored against ``probes``).
    cohort_probes : optional
        The Z-cohort (scored by ``models``).

    Returns
    -------
    dict of str to ndarray
        ``"scores"`` (n_models, n_probes) and, when the cohorts are given,
        ``"model_cohort_scores"``, ``"cohort_probe_scores"`` and ``"cohort_cohort_scores"``,
        named as the arguments of the normalisations (``ztnorm(**cohort_scores(...))`` works).

    Raises
    ------
    ValueError
        ``score`` returned something that is not 2-D.
    """
    out = {"scores": _checked_call(score, models, probes, "models", "probes")}
    if cohort_probes is not None:
        out["model_cohort_scores"] = _checked_call(score, models, cohort_probes, "models", "cohort_probes")
    if cohort_models is not None:
        out["cohort_probe_scores"] = _checked_call(score, cohort_models, probes, "cohort_models", "probes")
    if cohort_models is not None and cohort_probes is not None:
        out["cohort_cohort_scores"] = _checked_call(score, cohort_models, cohort_probes,
                                                    "cohort_models", "cohort_probes")
    return out


def _checked_call(score, a, b, name_a, name_b) -> np.ndarray:
    result = np.asarray(score(a, b), dtype=np.float64)
    if result.ndim != 2:
        raise ValueError(f"score({name_a}, {name_b}) must return a 2-D (n_models, n_probes) array; "
                         f"got shape {result.shape}")
    return result
