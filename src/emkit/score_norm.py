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

__all__ = ["znorm", "tnorm", "ztnorm", "snorm", "adaptive_snorm", "same_value_mask", "cohort_scores"]


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------


def _matrix(a, name: str, *, rows: int | None = None, cols: int | None = None,
            rows_of: str = "", cols_of: str = "") -> np.ndarray:
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
        raise ValueError(f"ddof must be an integer >= 0; got {ddof!r}")
    return int(ddof)


def _stats(cohort: np.ndarray, axis: int, name: str, ddof: int, mask=None):
    """Mean and standard deviation of ``cohort`` along ``axis`` over the entries where ``mask`` is
    False (all entries without a mask), with clear errors for too small or constant cohorts."""
    if cohort.shape[axis] == 0:
        raise ValueError(f"{name} has an empty cohort (shape {cohort.shape}): at least {ddof + 1} "
                         "cohort score(s) are needed per row/column")
    keep = np.ones(cohort.shape, dtype=bool) if mask is None else ~mask
    count = keep.sum(axis=axis)
    low = np.flatnonzero(count <= ddof)
    if low.size:
        what = "row" if axis == 1 else "column"
        raise ValueError(f"{name} {what} {int(low[0])} has {int(count[low[0]])} usable cohort score(s); "
                         f"at least {ddof + 1} are needed (ddof={ddof})")
    total = np.where(keep, cohort, 0.0).sum(axis=axis)
    mean = total / count
    centred = np.where(keep, cohort - np.expand_dims(mean, axis), 0.0)
    std = np.sqrt((centred * centred).sum(axis=axis) / (count - ddof))
    flat = np.flatnonzero(std == 0)
    if flat.size:
        what = "row" if axis == 1 else "column"
        raise ValueError(f"{name} {what} {int(flat[0])} has a zero standard deviation: cannot normalise")
    return mean, std


# ---------------------------------------------------------------------------------------------
# normalisations
# ---------------------------------------------------------------------------------------------


def znorm(scores, model_cohort_scores, *, ddof: int = 1) -> np.ndarray:
    """Z-norm: ``(s[m, p] - mean_z[m]) / std_z[m]`` with the statistics of model ``m`` against the
    Z-cohort, ``model_cohort_scores`` (n_models, n_zcohort).  Returns (n_models, n_probes)."""
    ddof = _check_ddof(ddof)
    s = _matrix(scores, "scores")
    z = _matrix(model_cohort_scores, "model_cohort_scores", rows=s.shape[0], rows_of="one per model")
    mean, std = _stats(z, 1, "model_cohort_scores", ddof)
    return (s - mean[:, None]) / std[:, None]


def tnorm(scores, cohort_probe_scores, *, ddof: int = 1) -> np.ndarray:
    """T-norm: ``(s[m, p] - mean_t[p]) / std_t[p]`` with the statistics of the T-cohort models
    against probe ``p``, ``cohort_probe_scores`` (n_tcohort, n_probes)."""
    ddof = _check_ddof(ddof)
    s = _matrix(scores, "scores")
    t = _matrix(cohort_probe_scores, "cohort_probe_scores", cols=s.shape[1], cols_of="one per probe")
    mean, std = _stats(t, 0, "cohort_probe_scores", ddof)
    return (s - mean[None, :]) / std[None, :]


def ztnorm(scores, model_cohort_scores, cohort_probe_scores, cohort_cohort_scores,
           same_speaker_mask=None, *, ddof: int = 1) -> np.ndarray:
    """ZT-norm: Z-norm the raw scores and the T-cohort's scores, then T-norm with the latter.

    1. ``zs = znorm(scores, model_cohort_scores)``;
    2. ``zt = znorm(cohort_probe_scores, cohort_cohort_scores)``: each T-cohort model is
       Z-normalised with its scores against the Z-cohort, leaving out the entries where
       ``same_speaker_mask`` (n_tcohort, n_zcohort) is True (same identity: not impostor trials);
    3. ``tnorm(zs, zt)``.
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
    mean_z, std_z = _stats(z, 1, "model_cohort_scores", ddof)
    zs = (s - mean_z[:, None]) / std_z[:, None]
    mean_tz, std_tz = _stats(tz, 1, "cohort_cohort_scores", ddof, mask)
    zt = (t - mean_tz[:, None]) / std_tz[:, None]
    mean_t, std_t = _stats(zt, 0, "cohort_probe_scores (after Z-norm)", ddof)
    return (zs - mean_t[None, :]) / std_t[None, :]


def snorm(scores, model_cohort_scores, cohort_probe_scores, *, ddof: int = 1) -> np.ndarray:
    """Symmetric normalisation: the average of Z-norm and T-norm,
    ``((s - mean_m) / std_m + (s - mean_p) / std_p) / 2``."""
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
    (plain S-norm); ``top_n`` larger than a cohort uses all of it."""
    ddof = _check_ddof(ddof)
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, numbers.Integral)
                              or top_n <= ddof):
        raise ValueError(f"top_n must be None or an integer > ddof ({ddof}); got {top_n!r}")
    s = _matrix(scores, "scores")
    z = _matrix(model_cohort_scores, "model_cohort_scores", rows=s.shape[0], rows_of="one per model")
    t = _matrix(cohort_probe_scores, "cohort_probe_scores", cols=s.shape[1], cols_of="one per probe")
    if top_n is not None and z.shape[1] and t.shape[0]:
        z, t = _top_n(z, int(top_n), 1), _top_n(t, int(top_n), 0)
    mean_m, std_m = _stats(z, 1, "model_cohort_scores", ddof)
    mean_p, std_p = _stats(t, 0, "cohort_probe_scores", ddof)
    return 0.5 * ((s - mean_m[:, None]) / std_m[:, None] + (s - mean_p[None, :]) / std_p[None, :])


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def same_value_mask(cohort_model_ids, cohort_probe_ids) -> np.ndarray:
    """Boolean (n_tcohort, n_zcohort) matrix, True where the identities are equal: the
    ``same_speaker_mask`` of :func:`ztnorm` (bob 2.x's ``ztnorm_same_value``)."""
    a = np.asarray(cohort_model_ids)
    b = np.asarray(cohort_probe_ids)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError("cohort_model_ids and cohort_probe_ids must be 1-D; "
                         f"got shapes {a.shape} and {b.shape}")
    return a[:, None] == b[None, :]


def cohort_scores(score, models, probes, cohort_models=None, cohort_probes=None) -> dict:
    """The score matrices the normalisations need, from one scoring callable.

    ``score(models, probes)`` must return an (n_models, n_probes) array, e.g.
    ``plda.log_likelihood_ratio`` or ``lambda m, p: linear_scoring(m, ubm, p)``.  ``cohort_models``
    is the T-cohort (scored against ``probes``), ``cohort_probes`` the Z-cohort (scored by
    ``models``).  Returns a dict with ``"scores"`` and, when the cohorts are given,
    ``"model_cohort_scores"``, ``"cohort_probe_scores"`` and ``"cohort_cohort_scores"``, named as
    the arguments of the normalisation functions (``ztnorm(**cohort_scores(...))`` works).
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
