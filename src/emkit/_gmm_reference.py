"""The module-level functions of the reference's ``bob.learn.em.gmm`` module (re-exported by
:mod:`emkit.gmm`): thin wrappers of :class:`~emkit.GMMMachine`'s methods and M-steps."""

from __future__ import annotations

from ._backend import tree_sum
from ._gmm_mstep import apply_m_step
from .stats import GMMStats, check_stats


def log_weighted_likelihood(data, machine):
    """``log w_c + log N(x_t | mu_c, var_c)`` with shape **(C, N)** (Gaussians first)."""
    return machine.log_weighted_likelihood(data)


def log_likelihood(data, machine):
    """Per-sample mixture log-likelihood, shape (N,)."""
    return machine.log_likelihood(data)


def e_step(data, machine) -> GMMStats:
    """Statistics of ``data`` (N, D) given ``machine``: one :class:`GMMStats`."""
    return machine.acc_stats(data)


def m_step(statistics, machine):
    """Update ``machine`` in place from a list of statistics (summed first, none of them mutated).

    Returns ``(machine, average log-likelihood of the statistics)``.
    """
    if isinstance(statistics, GMMStats):
        statistics = [statistics]
    statistics = list(statistics)
    if not statistics:
        raise ValueError("statistics is empty: m_step needs at least one GMMStats")
    shape = machine.shape  # (the machine's (C, D); unset means raise NotFittedError)
    for i, s in enumerate(statistics):
        check_stats(s, f"statistics[{i}]", shape, second_order=machine.update_variances,
                    shape_of="the GMM machine")
    stats = tree_sum(statistics)
    if stats.t == 0:
        raise ValueError("m_step needs statistics of at least one sample; got t = 0")
    apply_m_step(machine, stats)
    return machine, float(stats.log_likelihood / stats.t)
