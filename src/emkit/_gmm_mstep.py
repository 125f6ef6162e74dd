"""The GMM M-steps (ML and MAP), computed from moments about a shift, on the Python array API.

The reference forms ``E[x^2] - E[x]^2`` from raw sums, which loses every digit of a unit variance
once the data sit about 1e8 from the origin.  :class:`~emkit.GMMStats` from the E-step carry the
moments about the mean of the machine's means (``centred_moments``); the updates below are the
reference's formulas rewritten, exactly in real arithmetic, in terms of those moments, so they
give the reference's numbers at ordinary scales and keep their precision far from the origin.
Statistics without a shift (e.g. read from a file) use shift 0, i.e. the reference's formulas.

:func:`ml_m_step` and :func:`map_m_step` hold the formulas once, for arrays of any namespace
``xp`` (numpy, PyTorch, CuPy, ``array-api-strict``): a device ``fit`` keeps its parameters on the
device between iterations (:class:`emkit._device_fit.DeviceGMM`).  They have no data-dependent
branch (a term that is zero except for floored occupancies is added always: adding 0.0 changes
no value), so nothing is read back to the host.  ``params`` is a dict of float64 arrays
``weights`` (C,), ``means`` (C, D), ``variances`` (C, D) and ``thresholds`` (the variance floor:
a 0-d, (D,) or (C, D) array); they return a new dict (unchanged entries shared).
:func:`ml_gmm_m_step` and :func:`map_gmm_m_step` are the reference's functions on a machine.
"""

from __future__ import annotations

import logging

import numpy as np

from ._kernels._xp import asarray_like

EPSILON = np.finfo(float).eps


def _floored(params, variances, xp):
    return xp.maximum(params["thresholds"], variances)  # the ``variances`` setter's floor


def check_occupancy_floor(n_min: float, threshold, update_means: bool, update_variances: bool) -> None:
    """Refuse an ML M-step whose floored occupancy ``max(n_c, threshold)`` is 0 for some Gaussian
    (``n_min``: the smallest ``n_c``): its mean and variance would be 0/0, NaN.  Only a threshold
    of 0 (or below) allows it; the default, EPS, keeps such a Gaussian at ``sum / EPS`` as the
    reference does."""
    if (update_means or update_variances) and not n_min > 0 and not float(threshold) > 0:
        raise ValueError(
            f"mean_var_update_threshold={float(threshold)!r}: a Gaussian received no responsibility "
            "(n_c = 0), so its maximum-likelihood mean and variance are 0/0; use a positive "
            "mean_var_update_threshold (the default, EPS, keeps such Gaussians at sum / EPS as the "
            "reference does)")


def ml_m_step(params, n, t, shift, px, pxx, xp, *, update_means=True, update_variances=False,
              update_weights=False, threshold):
    """Maximum-likelihood M-step: ``n`` (C,), ``px``/``pxx`` (C, D) moments about ``shift`` (D,)
    (``pxx`` None without variances), ``t`` the number of frames.

    ``n_c`` is floored at ``threshold``; weights are ``n_c / T`` (not renormalised); the variance
    is ``sum_pxx / n_c - mu_c**2`` with the current means (the new ones when means are updated).
    """
    new = dict(params)
    n_f = xp.maximum(n, asarray_like(threshold, n, xp, dtype=n.dtype))
    if update_weights:
        new["weights"] = n_f / t
    if not (update_means or update_variances):
        return new
    n_col, n_f_col = n[:, None], n_f[:, None]
    deficit = (1.0 - n / n_f)[:, None]  # 0 except where the occupancy was floored
    if update_means:
        e = px / n_f_col - shift * deficit  # sum_px / n_f - shift
        new["means"] = shift + e
    if update_variances:
        if update_means:
            # sum_pxx/n_f - mu^2 = sum r (x - mu)^2 / n_f + mu^2 (1 - n/n_f), mu = sum_px / n_f
            var = (pxx - 2.0 * e * px + n_col * e * e) / n_f_col
            var = var + (shift + e) ** 2 * deficit
        else:
            # sum_pxx/n_f - m^2 = Q2/n_f + 2 m Q1/n_f - m^2 (1 - n/n_f), Q_k = sum r (x - m)^k
            m = params["means"]
            d = m - shift
            q1 = px - n_col * d
            q2 = pxx - 2.0 * d * px + n_col * d * d
            var = q2 / n_f_col + 2.0 * m * q1 / n_f_col - m * m * deficit
        new["variances"] = _floored(params, var, xp)
    return new


def map_m_step(params, ubm, n, t, shift, px, pxx, xp, *, update_means=True,
               update_variances=False, update_weights=False, relevance_factor=4, alpha=0.5,
               threshold):
    """MAP M-step (Reynolds et al. 2000) against ``ubm`` (a dict like ``params``).

    ``alpha_c = n_c / (n_c + relevance_factor)``; with ``relevance_factor`` None, the fixed
    ``alpha`` (a float or a (C,) array of ``xp``).  Weights are renormalised.  The variance
    update follows Reynolds eq. 13: ``alpha E_c[x^2] + (1 - alpha)(var_ubm + mu_ubm^2) - mu^2``
    (the reference added ``mu_ubm`` instead of its square).  Gaussians with ``n_c < threshold``
    (or ``n_c = 0``) keep the prior.

    Where the reference's formulas are 0/0 (NaN), their limits are used: ``relevance_factor=0``
    gives ``alpha_c = 1`` also at ``n_c = 0`` (its value for every ``n_c > 0``), and ``n_c / t``
    is 0 when ``t = 0`` (``0 <= n_c <= t``), so statistics of no frame keep the prior's weights.
    When that leaves every weight 0 (``t = 0`` and ``alpha = 1``) a ``ValueError`` is raised.
    """
    new = dict(params)
    if relevance_factor is not None:
        alpha = n / (n + relevance_factor) if relevance_factor > 0 else xp.ones_like(n)
    elif isinstance(alpha, (int, float)):
        alpha = xp.full_like(n, float(alpha))
    weak = (n < threshold) | (n == 0)
    if update_weights:
        share = n / t if t > 0 else xp.zeros_like(n)
        weights = alpha * share + (1 - alpha) * ubm["weights"]
        total = xp.sum(weights)
        if t <= 0 and not float(total) > 0:  # read back only for statistics of no frame
            raise ValueError(
                "MAP weights need statistics of at least one frame when alpha is 1 "
                f"(map_relevance_factor=0 or map_alpha=1): got t = {t}")
        new["weights"] = weights / total
    if not (update_means or update_variances):
        return new
    ubm_means = ubm["means"]
    a = alpha[:, None]
    if update_means:
        n_safe = xp.where(weak, xp.ones_like(n), n)[:, None]  # weak ones: the prior, below
        adapted = a * (shift + px / n_safe) + (1 - a) * ubm_means
        new["means"] = xp.where(weak[:, None], ubm_means, adapted)
    if update_variances:
        ubm_vars = ubm["variances"]
        n1 = xp.where(weak, xp.ones_like(n), n)[:, None]
        data_var = pxx / n1 - (px / n1) ** 2  # E_c[x^2] - xbar^2, from the shifted moments
        if update_means:
            # with mu = alpha xbar + (1 - alpha) mu_ubm the squares combine into one term
            dx = (shift - ubm_means) + px / n1  # xbar - mu_ubm
            adapted = a * data_var + (1 - a) * ubm_vars + a * (1 - a) * dx * dx
            var = xp.where(weak[:, None], ubm_vars, adapted)
        else:
            m = params["means"]
            xm = (shift - m) + px / n1  # xbar - m
            um = ubm_means - m
            prior = ubm_vars + um * (um + 2.0 * m)  # var_ubm + mu_ubm^2 - m^2
            adapted = a * (data_var + xm * (xm + 2.0 * m)) + (1 - a) * prior
            var = xp.where(weak[:, None], prior, adapted)
        new["variances"] = _floored(params, var, xp)
    return new


# -- the reference's functions, on a machine and its statistics (numpy) ---------------------------
def _machine_params(machine) -> dict:
    return {"weights": np.asarray(machine.weights, dtype=np.float64),
            "means": np.asarray(machine.means, dtype=np.float64),
            "variances": np.asarray(machine.variances, dtype=np.float64),
            "thresholds": np.asarray(machine.variance_thresholds, dtype=np.float64)}


def _moments(statistics, update_means, update_variances):
    if not (update_means or update_variances):
        return None, None, None
    return statistics.centred_moments(second_order=update_variances)


def _store(machine, new, update_means, update_variances, update_weights) -> None:
    updated = [name for name, flag in (("weights", update_weights), ("means", update_means),
                                       ("variances", update_variances)) if flag]
    machine._update_parameters({name: new[name] for name in updated})


# The MAP-only keywords the reference's ``m_step`` passes to either M-step (its
# ``ml_gmm_m_step`` swallows them in ``**kwargs``), so code dispatching the same way keeps working.
MAP_ONLY_KEYWORDS = frozenset({"reynolds_adaptation", "relevance_factor", "alpha"})


def ml_gmm_m_step(machine, statistics, update_means=True, update_variances=False, update_weights=False,
                  mean_var_update_threshold=EPSILON, **kwargs):
    """Maximum-likelihood M-step (in place): weights, then means, then variances.

    The weights are not renormalised, as the reference; a variance update uses the old means
    when ``update_means`` is False (as the reference).

    Parameters
    ----------
    machine : GMMMachine
        Updated in place.
    statistics : GMMStats
        Summed statistics of shape (C, D) (not modified).
    update_means, update_variances, update_weights : bool
        Which parameters to update (means only by default, as the reference).
    mean_var_update_threshold : float
        Floor of the occupancies ``n_c`` (a Gaussian with none stays at ``sum / threshold``, as
        the reference; 0 then is a ``ValueError``, not NaN).
    **kwargs
        Only the MAP M-step's ``reynolds_adaptation``, ``relevance_factor`` and ``alpha``, which
        are accepted and ignored (as the reference, so one call can serve either M-step); any
        other keyword is a ``TypeError``.
    """
    unknown = sorted(set(kwargs) - MAP_ONLY_KEYWORDS)
    if unknown:
        raise TypeError(f"ml_gmm_m_step() got unexpected keyword argument(s) {unknown}; it accepts "
                        f"(and ignores) only the MAP keywords {sorted(MAP_ONLY_KEYWORDS)}")
    n = np.asarray(statistics.n, dtype=np.float64)
    check_occupancy_floor(float(n.min(initial=np.inf)), mean_var_update_threshold, update_means,
                          update_variances)
    shift, px, pxx = _moments(statistics, update_means, update_variances)
    new = ml_m_step(_machine_params(machine), n, statistics.t, shift, px, pxx, np,
                    update_means=update_means, update_variances=update_variances,
                    update_weights=update_weights, threshold=mean_var_update_threshold)
    _store(machine, new, update_means, update_variances, update_weights)


def map_gmm_m_step(machine, statistics, update_means=True, update_variances=False, update_weights=False,
                   reynolds_adaptation=True, relevance_factor=4, alpha=0.5,
                   mean_var_update_threshold=EPSILON):
    """MAP M-step against ``machine.ubm`` (in place).

    Weights are renormalised.  The variance update follows Reynolds et al. (2000), eq. 13: its
    prior term adds the squared UBM mean (the reference added the mean itself).

    Parameters
    ----------
    machine : GMMMachine
        Updated in place.
    statistics : GMMStats
        Summed statistics of shape (C, D) (not modified).
    update_means, update_variances, update_weights : bool
        Which parameters to update (means only by default, as the reference).
    reynolds_adaptation : bool, default True
        ``alpha_c = n_c / (n_c + relevance_factor)``; False: the given ``alpha``.
    relevance_factor : float, default 4
    alpha : float or array-like of shape (C,), default 0.5
        The adaptation coefficient without Reynolds adaptation.
    mean_var_update_threshold : float
        Gaussians with ``n_c`` below it (or 0) keep the prior.

    Raises
    ------
    ValueError
        ``machine`` has no UBM.
    """
    ubm = machine.ubm
    if ubm is None:
        raise ValueError("A machine used for MAP must have a UBM.")
    n = np.asarray(statistics.n, dtype=np.float64)
    if not reynolds_adaptation:
        alpha = np.asarray(alpha, dtype=np.float64)
        alpha = np.full(n.shape, float(alpha)) if alpha.ndim == 0 else alpha
    shift, px, pxx = _moments(statistics, update_means, update_variances)
    new = map_m_step(_machine_params(machine), _machine_params(ubm), n, statistics.t, shift, px,
                     pxx, np, update_means=update_means, update_variances=update_variances,
                     update_weights=update_weights,
                     relevance_factor=relevance_factor if reynolds_adaptation else None,
                     alpha=alpha, threshold=mean_var_update_threshold)
    _store(machine, new, update_means, update_variances, update_weights)


def apply_m_step(machine, statistics) -> None:
    """The M-step ``machine`` is configured for (its ``trainer``, ``update_*``, MAP settings), in place."""
    common = dict(update_means=machine.update_means, update_variances=machine.update_variances,
                  update_weights=machine.update_weights,
                  mean_var_update_threshold=machine.mean_var_update_threshold)
    if machine.trainer == "map":
        map_gmm_m_step(machine, statistics, reynolds_adaptation=machine.map_relevance_factor is not None,
                       relevance_factor=machine.map_relevance_factor, alpha=machine.map_alpha, **common)
    else:
        ml_gmm_m_step(machine, statistics, **common)


def collapsed_gaussians(machine, relative: float = 1e-10) -> int:
    """How many Gaussians of ``machine`` collapsed onto single points (one frame each, or repeated
    frames): every variance at the floor or below ``relative`` times the mixture's variance of
    that feature (a rounding error of zero).  Their likelihoods are meaningless (about -1e15 a
    frame off the point with the default floor; all of them collapsed, scores of about 1e18)."""
    weights = np.asarray(machine.weights, dtype=np.float64)
    means, variances = np.asarray(machine.means), np.asarray(machine.variances)
    weights = weights / weights.sum()
    total = weights @ (variances + (means - weights @ means) ** 2)  # (D,)
    limit = np.maximum(np.asarray(machine.variance_thresholds), relative * total)
    return int(np.all(variances <= limit, axis=-1).sum())


def warn_if_collapsed(machine) -> None:
    """Log a warning naming how many Gaussians of a trained ``machine`` collapsed."""
    collapsed = collapsed_gaussians(machine)
    if collapsed:
        logging.getLogger("emkit").warning(
            "GMM: %d of %d Gaussians collapsed onto single points (variances of zero but for "
            "rounding): their likelihoods are meaningless; train fewer Gaussians or on more "
            "(distinct) data",
            collapsed, machine.n_gaussians)
