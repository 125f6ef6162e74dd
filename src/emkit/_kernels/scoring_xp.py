"""MAP adaptation of a batch of utterances and linear scoring, on the Python array API standard.

Both take *stacked* statistics (one row per utterance: ``n`` (S, C), ``sum_px`` (S, C, D)) and run
unchanged on numpy, PyTorch, CuPy and ``array-api-strict`` arrays:

- :func:`map_adapt_means`: Reynolds relevance MAP of the UBM's means for every utterance at once,
  the update of :func:`emkit._gmm_mstep.map_gmm_m_step` (``update_means`` only) applied to each
  row: ``alpha_c = n_c / (n_c + r)``, ``mu_c = alpha_c sum_px_c / n_c + (1 - alpha_c) m_c``, the
  prior kept where ``n_c < threshold``.
- :func:`linear_scores`: :func:`emkit.linear_scoring` as one matrix product,
  ``score[j, i] = sum_{c,d} (M_j - m)/var * (F_i - N_i (m + o_i))``.
"""

from __future__ import annotations

import numpy as np

from . import _xp

EPSILON = float(np.finfo(float).eps)


def map_adapt_means(n, sum_px, ubm_means, relevance_factor=4.0, alpha=None,
                    threshold: float = EPSILON):
    """MAP-adapted means (S, C, D) of S utterances from their statistics ``n`` (S, C) and
    ``sum_px`` (S, C, D) and the prior means ``ubm_means`` (C, D).

    ``relevance_factor`` r gives ``alpha = n / (n + r)``; with ``relevance_factor=None`` the fixed
    ``alpha`` (a number or (C,)) is used.  Gaussians with ``n < threshold`` (or ``n = 0``) keep
    the prior; ``relevance_factor=0`` gives ``alpha = 1`` (its limit at ``n = 0``, not 0/0).
    """
    xp = _xp.namespace(n, sum_px, ubm_means)
    if relevance_factor is not None:
        a = n / (n + relevance_factor) if relevance_factor > 0 else xp.ones_like(n)
    else:
        a = xp.broadcast_to(_xp.asarray_like(alpha, n, xp, dtype=n.dtype), n.shape)
    weak = (n < threshold) | (n == 0)
    n_safe = xp.where(weak, xp.ones_like(n), n)[:, :, None]  # weak ones: the prior, below
    a = a[:, :, None]
    adapted = a * (sum_px / n_safe) + (1 - a) * ubm_means
    return xp.where(weak[:, :, None], xp.broadcast_to(ubm_means, adapted.shape), adapted)


def linear_scores(models, ubm_means, ubm_variances, n, sum_px, t, offsets=None,
                  frame_length_normalization: bool = False):
    """Scores (M, P) of models ``models`` (M, C, D) against probes with statistics ``n`` (P, C),
    ``sum_px`` (P, C, D) and frame counts ``t`` (P,); ``offsets``: channel offsets broadcastable
    to (P, C, D) or None."""
    xp = _xp.namespace(models, ubm_means, ubm_variances, n, sum_px, t, offsets)
    M, C, D = models.shape
    P = n.shape[0]
    a = xp.reshape((models - ubm_means) / ubm_variances, (M, C * D))
    centre = ubm_means if offsets is None else ubm_means + offsets
    b = xp.reshape(sum_px - n[:, :, None] * centre, (P, C * D))
    if frame_length_normalization:
        empty = xp.abs(t) <= EPSILON
        safe_t = xp.where(empty, xp.ones_like(t), t)
        b = xp.where(empty[:, None], xp.zeros_like(b), b / safe_t[:, None])
    return a @ xp.matrix_transpose(b)
