"""The GMM M-steps (ML and MAP), computed from moments about a shift.

The reference forms ``E[x^2] - E[x]^2`` from raw sums, which loses every digit of a unit variance
once the data sit about 1e8 from the origin.  :class:`~emkit.GMMStats` from the E-step carry the
moments about the mean of the machine's means (``centred_moments``); the updates below are the
reference's formulas rewritten, exactly in real arithmetic, in terms of those moments, so they
give the reference's numbers at ordinary scales and keep their precision far from the origin.
Statistics without a shift (e.g. read from a file) use shift 0, i.e. the reference's formulas.
"""

from __future__ import annotations

import numpy as np

EPSILON = np.finfo(float).eps


def ml_gmm_m_step(machine, statistics, update_means=True, update_variances=False, update_weights=False,
                  mean_var_update_threshold=EPSILON):
    """Maximum-likelihood M-step (in place).  Update order: weights, means, variances.

    ``n_c`` is floored at ``mean_var_update_threshold``; weights are ``n_c / T`` (not renormalised);
    the variance is ``sum_pxx / n_c - mu_c**2`` with the machine's current means (the new ones when
    means are updated), evaluated from moments about a shift (see the module docstring).
    """
    new = {}
    n = np.asarray(statistics.n, dtype=np.float64)
    n_f = np.clip(n, mean_var_update_threshold, None)
    if update_weights:
        new["weights"] = n_f / statistics.t
    if not (update_means or update_variances):
        machine._update_parameters(new)
        return
    shift, px, pxx = statistics.centred_moments(second_order=update_variances)
    n_col, n_f_col = n[:, None], n_f[:, None]
    deficit = (1.0 - n / n_f)[:, None]  # 0 except where the occupancy was floored
    if update_means:
        e = px / n_f_col - shift * deficit  # sum_px / n_f - shift
        new["means"] = shift + e
    if update_variances:
        if update_means:
            # sum_pxx/n_f - mu^2 = sum r (x - mu)^2 / n_f + mu^2 (1 - n/n_f), mu = sum_px / n_f
            var = (pxx - 2.0 * e * px + n_col * e * e) / n_f_col
            if np.any(deficit):
                var = var + (shift + e) ** 2 * deficit
        else:
            # sum_pxx/n_f - m^2 = Q2/n_f + 2 m Q1/n_f - m^2 (1 - n/n_f), Q_k = sum r (x - m)^k
            m = np.asarray(machine.means, dtype=np.float64)
            d = m - shift
            q1 = px - n_col * d
            q2 = pxx - 2.0 * d * px + n_col * d * d
            var = q2 / n_f_col + 2.0 * m * q1 / n_f_col - m * m * deficit
        new["variances"] = var
    machine._update_parameters(new)


def map_gmm_m_step(machine, statistics, update_means=True, update_variances=False, update_weights=False,
                   reynolds_adaptation=True, relevance_factor=4, alpha=0.5,
                   mean_var_update_threshold=EPSILON):
    """MAP M-step (Reynolds et al. 2000) against ``machine.ubm`` (in place).

    ``alpha_c = n_c / (n_c + relevance_factor)`` with Reynolds adaptation, else the given
    ``alpha``.  Weights are renormalised.  The variance update follows Reynolds eq. 13:
    ``alpha E_c[x^2] + (1 - alpha)(var_ubm + mu_ubm^2) - mu^2`` (the reference added ``mu_ubm``
    instead of its square), evaluated from moments about a shift.  Gaussians with
    ``n_c < mean_var_update_threshold`` keep the prior.
    """
    ubm = machine.ubm
    if ubm is None:
        raise ValueError("A machine used for MAP must have a UBM.")
    new = {}
    n = np.asarray(statistics.n, dtype=np.float64)
    if reynolds_adaptation:
        alpha = n / (n + relevance_factor)
    elif not hasattr(alpha, "ndim"):
        alpha = np.full((machine.n_gaussians,), alpha)
    alpha = np.asarray(alpha, dtype=np.float64)
    weak = n < mean_var_update_threshold
    if update_weights:
        weights = alpha * (n / statistics.t) + (1 - alpha) * ubm.weights
        new["weights"] = weights / weights.sum()
    if not (update_means or update_variances):
        machine._update_parameters(new)
        return
    shift, px, pxx = statistics.centred_moments(second_order=update_variances)
    ubm_means = np.asarray(ubm.means, dtype=np.float64)
    a = alpha[:, None]
    if update_means:
        n_safe = np.where(weak, mean_var_update_threshold, n)[:, None]
        adapted = a * (shift + px / n_safe) + (1 - a) * ubm_means
        new["means"] = np.where(weak[:, None], ubm_means, adapted)
    if update_variances:
        ubm_vars = np.asarray(ubm.variances, dtype=np.float64)
        n1 = np.where(weak, 1.0, n)[:, None]
        data_var = pxx / n1 - (px / n1) ** 2  # E_c[x^2] - xbar^2, from the shifted moments
        if update_means:
            # with mu = alpha xbar + (1 - alpha) mu_ubm the squares combine into one term
            dx = (shift - ubm_means) + px / n1  # xbar - mu_ubm
            adapted = a * data_var + (1 - a) * ubm_vars + a * (1 - a) * dx * dx
            var = np.where(weak[:, None], ubm_vars, adapted)
        else:
            m = np.asarray(machine.means, dtype=np.float64)
            xm = (shift - m) + px / n1  # xbar - m
            um = ubm_means - m
            prior = ubm_vars + um * (um + 2.0 * m)  # var_ubm + mu_ubm^2 - m^2
            adapted = a * (data_var + xm * (xm + 2.0 * m)) + (1 - a) * prior
            var = np.where(weak[:, None], prior, adapted)
        new["variances"] = var
    machine._update_parameters(new)


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
