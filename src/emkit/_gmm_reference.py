"""The module-level functions of the reference's ``bob.learn.em.gmm`` module (re-exported by
:mod:`emkit.gmm`): thin wrappers of :class:`~emkit.GMMMachine`'s methods and M-steps."""

from __future__ import annotations

import numpy as np

from ._backend import is_dask_collection, tree_sum
from ._gmm_mstep import apply_m_step
from .stats import GMMStats, check_stats
from .utils import array_to_delayed_list, check_and_persist_dask_input

__all__ = ["array_to_delayed_list", "check_and_persist_dask_input", "e_step", "log_likelihood",
           "log_weighted_likelihood", "logaddexp_reduce", "m_step", "reduce_loglikelihood"]


def logaddexp_reduce(array, axis=0, keepdims=False):
    """``log(sum(exp(array)))`` along ``axis``, by pairwise ``numpy.logaddexp`` from ``-inf``.

    Parameters
    ----------
    array : array-like of shape (C, N)
        Log values, e.g. the weighted log-likelihoods of every Gaussian (rows) and sample.
    axis : int
        The axis reduced (0: the Gaussians).
    keepdims : bool
        Keep the reduced axis with length 1.

    Returns
    -------
    ndarray of shape (N,)
        (With ``keepdims``, (1, N).)  An empty axis gives ``-inf``.
    """
    return np.logaddexp.reduce(np.asarray(array), axis=axis, keepdims=keepdims, initial=-np.inf)


def reduce_loglikelihood(log_weighted_likelihoods):
    """Per-sample mixture log-likelihood from the per-Gaussian weighted log-likelihoods.

    Parameters
    ----------
    log_weighted_likelihoods : array-like or dask array of shape (C, N)
        As returned by :func:`log_weighted_likelihood`.

    Returns
    -------
    ndarray or dask array of shape (N,)
        :func:`logaddexp_reduce` over the Gaussians; lazy for a dask input.
    """
    if not is_dask_collection(log_weighted_likelihoods):
        return logaddexp_reduce(log_weighted_likelihoods)
    import dask.array as da

    return da.reduction(log_weighted_likelihoods, chunk=logaddexp_reduce,
                        aggregate=logaddexp_reduce, axis=0, dtype=float, keepdims=False)


def log_weighted_likelihood(data, machine):
    """``log w_c + log N(x_t | mu_c, var_c)`` of every Gaussian and sample.

    Parameters
    ----------
    data : array-like of shape (N, D)
    machine : GMMMachine

    Returns
    -------
    ndarray of shape (C, N)
        Gaussians first, as the reference.
    """
    return machine.log_weighted_likelihood(data)


def log_likelihood(data, machine):
    """Per-sample mixture log-likelihood.

    Parameters
    ----------
    data : array-like of shape (N, D)
    machine : GMMMachine

    Returns
    -------
    ndarray of shape (N,)
    """
    return machine.log_likelihood(data)


def e_step(data, machine) -> GMMStats:
    """Statistics of ``data`` given ``machine`` (``machine.acc_stats(data)``).

    Parameters
    ----------
    data : array-like of shape (N, D)
    machine : GMMMachine

    Returns
    -------
    GMMStats
    """
    return machine.acc_stats(data)


def m_step(statistics, machine):
    """Update ``machine`` in place from statistics, as its ``trainer`` and ``update_*`` say.

    Parameters
    ----------
    statistics : GMMStats or list of GMMStats
        Summed first; none of them is mutated.
    machine : GMMMachine

    Returns
    -------
    (GMMMachine, float)
        ``machine`` and the average log-likelihood of the statistics.

    Raises
    ------
    ValueError
        No statistics, statistics of another shape, or of no sample.
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
