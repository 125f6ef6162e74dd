"""The GMM M-steps of :mod:`emkit._gmm_mstep` on the Python array API standard (device training).

Same formulas, from the same moments about a shift, on arrays of any namespace (PyTorch, CuPy,
``array-api-strict``), so that a device ``fit`` keeps its parameters on the device between
iterations (:class:`emkit._device_fit.DeviceGMM`).  No data-dependent branch: a term the numpy
code adds only when it is non-zero is added here always (adding 0.0 changes no value), so nothing
is read back to the host.  The numpy path keeps :mod:`emkit._gmm_mstep`.

``params`` is a dict of float64 arrays ``weights`` (C,), ``means`` (C, D), ``variances`` (C, D)
and ``thresholds`` (the variance floor: a 0-d, (D,) or (C, D) array); the M-steps return a new
dict (unchanged entries shared).
"""

from __future__ import annotations


def _floored(params, variances, xp):
    return xp.maximum(params["thresholds"], variances)  # the ``variances`` setter's floor


def ml_m_step(params, n, t, shift, px, pxx, xp, *, update_means=True, update_variances=False,
              update_weights=False, threshold):
    """:func:`emkit._gmm_mstep.ml_gmm_m_step`: ``n`` (C,), ``px``/``pxx`` (C, D) moments about
    ``shift`` (D,) (``pxx`` None without variances), ``t`` the number of frames."""
    new = dict(params)
    n_f = xp.maximum(n, xp.asarray(threshold, dtype=n.dtype, device=_dev(n)))
    if update_weights:
        new["weights"] = n_f / t
    if not (update_means or update_variances):
        return new
    n_col, n_f_col = n[:, None], n_f[:, None]
    deficit = (1.0 - n / n_f)[:, None]
    if update_means:
        e = px / n_f_col - shift * deficit
        new["means"] = shift + e
    if update_variances:
        if update_means:
            var = (pxx - 2.0 * e * px + n_col * e * e) / n_f_col
            var = var + (shift + e) ** 2 * deficit
        else:
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
    """:func:`emkit._gmm_mstep.map_gmm_m_step` against ``ubm`` (a dict like ``params``);
    ``relevance_factor`` None uses the fixed ``alpha`` (a float or a (C,) array of ``xp``)."""
    new = dict(params)
    if relevance_factor is not None:
        alpha = n / (n + relevance_factor)
    elif isinstance(alpha, (int, float)):
        alpha = xp.full(n.shape, float(alpha), dtype=n.dtype, device=_dev(n))
    weak = n < threshold
    if update_weights:
        weights = alpha * (n / t) + (1 - alpha) * ubm["weights"]
        new["weights"] = weights / xp.sum(weights)
    if not (update_means or update_variances):
        return new
    ubm_means = ubm["means"]
    a = alpha[:, None]
    if update_means:
        n_safe = xp.where(weak, xp.asarray(threshold, dtype=n.dtype, device=_dev(n)), n)[:, None]
        adapted = a * (shift + px / n_safe) + (1 - a) * ubm_means
        new["means"] = xp.where(weak[:, None], ubm_means, adapted)
    if update_variances:
        ubm_vars = ubm["variances"]
        n1 = xp.where(weak, xp.ones_like(n), n)[:, None]
        data_var = pxx / n1 - (px / n1) ** 2
        if update_means:
            dx = (shift - ubm_means) + px / n1
            adapted = a * data_var + (1 - a) * ubm_vars + a * (1 - a) * dx * dx
            var = xp.where(weak[:, None], ubm_vars, adapted)
        else:
            m = params["means"]
            xm = (shift - m) + px / n1
            um = ubm_means - m
            prior = ubm_vars + um * (um + 2.0 * m)
            adapted = a * (data_var + xm * (xm + 2.0 * m)) + (1 - a) * prior
            var = xp.where(weak[:, None], prior, adapted)
        new["variances"] = _floored(params, var, xp)
    return new


def _dev(x):
    from ._kernels._xp import device_of

    return device_of(x)
