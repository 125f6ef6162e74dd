"""ISV/JFA training: the training set, the passes over it, and the ISV and JFA schedules.

:func:`prepare_training_set` turns the inputs of ``fit`` into a :class:`TrainingSet` (in memory:
stacked once by :meth:`GMMStats.stack` into blocks, :mod:`._blocks`; dask: a bag of pairs,
:mod:`._dask`).  Each EM iteration is one pass (:func:`session_pass`) of the E-step of
:mod:`._estep` over the blocks, spread over threads (or summed by
:func:`emkit._backend.map_reduce` for dask), then an M-step from the accumulators.
:func:`train_isv` and :func:`train_jfa` are the reference's schedules, run through
:func:`emkit._checkpoint.resumable_em` (resumable from ``machine.checkpoint``); they read the
machine's parameters and :class:`~._constants.Constants` and store new parameters through the
machine's own ``_set_param``.
"""

from __future__ import annotations

import numpy as np

from .._backend import cached_in_memory, is_bag, is_delayed, map_reduce, n_threads, thread_map
from .._backend._staging import configured_device
from .._checkpoint import resumable_em
from .._fitted import fitted_value
from .._kernels import factor_analysis as kfa
from ..stats import as_stats_sequence
from ._blocks import TrainingSet, in_memory
from ._constants import Constants
from ._dask import (delayed_training_set, is_nested, prepare_bag, prepare_nested,
                    stacked_on_workers)
from ._estep import (SessionAccumulator, SessionParams, block_terms, class_totals_chunk,
                     session_chunk)
from ._labels import check_lengths, encode_labels, label_list

#: Threads for a pass over in-memory sessions (None: the CPUs this process may use).  The blocks
#: of sessions go to the threads as they come (one BLAS thread each) and their terms are added in
#: block order, so the numbers do not depend on the thread count.  On the 2-core development
#: machine (ISV benchmark size, best of repeated runs), a pass took ~10 ms on two threads and
#: ~15 ms on one when idle; with another process keeping a core busy, two threads were about as
#: fast as one (ISV) or faster (JFA).  Dask inputs are spread by dask's scheduler.
SESSION_THREADS = None

#: Elements of the (sessions, C*D) blocks (8 MB of float64: the second product over a block finds
#: it in the cache).
BLOCK_ELEMENTS = 1_000_000


def session_threads() -> int:
    return n_threads() if SESSION_THREADS is None else SESSION_THREADS


def block_size(C: int, D: int) -> int:
    return max(1, BLOCK_ELEMENTS // (C * D))


# ---------------------------------------------------------------------------------------------
# the training set
# ---------------------------------------------------------------------------------------------


def prepare_training_set(X, y, shape, threads: int = 1) -> TrainingSet:
    """Validate ``X``/``y`` of ``fit`` and turn them into a :class:`TrainingSet`.

    In memory, the number of blocks is a multiple of ``threads`` (balanced passes).
    """
    if is_bag(X):
        data = prepare_bag(X, y)
        return stacked_on_workers(data, shape, block_size(*shape)) if cached_in_memory(X) else data
    X = as_stats_sequence(X)  # numpy object arrays (1-D, or 2-D per class) as lists
    if not isinstance(X, (list, tuple)):
        raise TypeError(
            "X must be a list of GMMStats (one per session), a list of dask.delayed GMMStats, or a dask "
            f"bag of GMMStats (with y) or of (label, GMMStats) pairs (y=None); got {type(X).__name__}"
        )
    if len(X) == 0:
        raise ValueError("X is empty: expected the statistics of at least one session")
    y = label_list(y)
    step = block_size(*shape)
    if is_nested(X, y):
        return prepare_nested(X, y, shape, threads, step)
    check_lengths(len(X), len(y))
    codes, classes = encode_labels(y)
    if any(is_delayed(s) for s in X):
        return delayed_training_set(X, codes, classes)
    return in_memory(X, codes, classes, shape, threads, step)


def session_params(c: Constants, n_classes, class_offsets=None, accumulate=True, totals=False):
    """:class:`SessionParams` of a pass with the constants ``c``; ``class_offsets`` (K, CD) are
    the ``o_k`` of the statistics' centring ``m + o_k`` (JFA: ``V y_k``), None for zero."""
    offset_proj = (None if class_offsets is None
                   else kfa.block_projections(class_offsets, c.U_over_var, c.shape[0]))
    return SessionParams(
        shape=c.shape, U_over_var=c.U_over_var, uprod=c.uprod, W_mean=c.W_mean,
        n_classes=n_classes, step=block_size(*c.shape), offset_proj=offset_proj,
        accumulate=accumulate, totals=totals,
    )


def session_pass(data: TrainingSet, params: SessionParams) -> SessionAccumulator:
    """The E-step over all sessions: a :class:`SessionAccumulator`.

    In memory, the blocks are spread over threads (:data:`SESSION_THREADS`) as they come, and
    their terms added in block order: the result does not depend on the number of threads, and a
    thread slowed down by other processes simply takes fewer blocks.
    """
    rows = data.rows
    if not isinstance(rows, list):
        return map_reduce(session_chunk, rows, params)
    dev = configured_device()
    if dev is not None:  # emkit.set_config(device=...): see ._device and docs/gpu.md
        from ._device import session_pass as device_pass

        return device_pass(data, params, dev)
    terms = thread_map(lambda block: block_terms(block, params), rows, session_threads())
    acc = SessionAccumulator.zeros(params)
    for block, block_sums in zip(rows, terms):
        acc.add_block(block, block_sums)
    return acc


def class_totals(data: TrainingSet, shape):
    """Per-class sums of the statistics (summed while stacking, or one pass over the sessions)."""
    if data.totals is not None:
        return data.totals
    return map_reduce(class_totals_chunk, data.rows, shape, data.n_classes, block_size(*shape))


def u_accumulator(c: Constants, acc: SessionAccumulator, class_offsets=None) -> np.ndarray:
    """``sum_h (F_h - N_h (m + o_k)) x_h^T`` (CD, r_U) from a :class:`SessionAccumulator`, with
    the per-class offsets ``o_k`` (K, CD) or (C, D, K) (None for zero)."""
    (C, D), r = c.shape, acc.G.shape[2]
    g = acc.G.sum(axis=0)  # sum_h N_h x_h, (C, r)
    A2 = acc.A2F - (c.means[:, :, None] * g[:, None, :]).reshape(C * D, r)
    if class_offsets is not None:
        A2 -= kfa.offset_outer_products(class_offsets, acc.G)
    return A2


def fit_em(machine, X, e_step, m_step, *, state, name, quantity, phase=0):
    """``machine.em_iterations`` of ``m_step(e_step())``, resumable from ``machine.checkpoint``:
    ``state`` names the parameters (of "U", "V", "D") saved after every iteration."""
    return resumable_em(
        machine,
        X,
        initialize=lambda: None,  # the parameters exist already (_create_missing)
        get_state=lambda: {k: fitted_value(machine, k) for k in state},
        set_state=lambda arrays: [machine._store(k, np.array(arrays[k], dtype=np.float64))
                                  for k in state],
        phase=phase,
        e_step=e_step,
        m_step=m_step,
        max_iterations=machine.em_iterations,
        convergence_threshold=None,  # the reference runs a fixed number of iterations
        name=name,
        quantity=quantity,
    )


# ---------------------------------------------------------------------------------------------
# the schedules
# ---------------------------------------------------------------------------------------------


def _supervectors(machine):
    """(C, D) and the mean and variance supervectors (without keeping the constants alive: they
    are rebuilt after every update)."""
    c = machine._constants()
    return c.shape, c.m, c.var


def train_isv(machine, data: TrainingSet, X):
    """ISV (McCool et al. 2013 / bob 2.x): every iteration computes the session factors x at
    z = 0, then the class offsets z, then the U update with the new z; D stays fixed.
    Returns the :class:`~emkit._em.EMResult`."""
    (C, D), m, var = _supervectors(machine)
    class_level = {}  # from the first pass (which sums the class totals along)

    def e_step():
        first = not class_level
        # the class totals: from the stacking (in memory), else summed along the first pass
        params = session_params(machine._constants(), data.n_classes,
                                totals=first and data.totals is None)
        acc = session_pass(data, params)
        if first:  # class-level arrays in the (C, D, K) layout of kfa.gaussian_major
            totals = data.totals if data.totals is not None else acc.totals
            N = totals.n.T[:, None, :]  # (C, 1, K)
            F = kfa.gaussian_major(totals.F, C)
            class_level["centred"] = F - N * m.reshape(C, D, 1)  # F_k - N_k m
            # D and N are fixed: D z_k = gain * (centred_k - sum_{h in k} N_h U x_h)
            class_level["gain"] = kfa.diagonal_gain(N, machine.D.reshape(C, D, 1),
                                                    var.reshape(C, D, 1))
        return acc

    def m_step(acc):
        c = machine._constants()
        offsets = kfa.per_gaussian_products(
            c.U, acc.G, C, gaussian_major=True, out=class_level.get("offsets")
        )
        class_level["offsets"] = offsets  # a buffer, reused by the next iterations
        np.subtract(class_level["centred"], offsets, out=offsets)  # centred_k - sum N_h U x_h
        offsets *= class_level["gain"]  # D z_k
        A2 = u_accumulator(c, acc, class_offsets=offsets)
        return machine._set_param("U", kfa.update_subspace(acc.A1, A2, c.U))

    return fit_em(machine, X, e_step, m_step, state=("U",), name="ISV U training",
                  quantity="relative change of U")


def train_jfa(machine, data: TrainingSet, X):
    """JFA (bob 2.x's ``train_jfa``): ``em_iterations`` of V (x = z = 0), then of U (with the
    final y), then of D (with the final y and x).  Returns the last phase's EMResult."""
    (C, D), m, var = _supervectors(machine)
    totals = class_totals(data, (C, D))
    N_sv = np.repeat(totals.n, D, axis=1)
    centred_y = totals.F - N_sv * m  # x = z = 0 throughout the V phase
    every = ("U", "V", "D")

    def class_y():
        c = machine._constants()
        return kfa.latent_posterior(totals.n, centred_y, c.V_over_var, c.vprod)

    def v_step(_):
        y, cov = class_y()
        A1, A2 = kfa.accumulate_subspace(totals.n, centred_y, y, cov)
        return machine._set_param("V", kfa.update_subspace(A1, A2, machine.V))

    fit_em(machine, X, lambda: None, v_step, state=every, phase=0, name="JFA V training",
           quantity="relative change of V")
    latent_y, _ = class_y()
    Vy = latent_y @ machine.V.T  # the class offsets of the U phase, (K, CD)

    def u_e_step():
        return session_pass(data, session_params(machine._constants(), data.n_classes, Vy))

    def u_m_step(acc):
        A2 = u_accumulator(machine._constants(), acc, Vy)
        return machine._set_param("U", kfa.update_subspace(acc.A1, A2, machine.U))

    fit_em(machine, X, u_e_step, u_m_step, state=every, phase=1, name="JFA U training",
           quantity="relative change of U")
    params = session_params(machine._constants(), data.n_classes, Vy, accumulate=False)
    G = session_pass(data, params).G
    centred_z = totals.F - N_sv * (m + Vy) - kfa.per_gaussian_products(machine.U, G, C)

    def d_step(_):
        z, cov = kfa.diagonal_posterior(N_sv, centred_z, machine.D, var)
        A2 = np.einsum("kd,kd->d", centred_z, z)
        cov += z * z  # in place: (K, CD) arrays
        cov *= N_sv
        A1 = cov.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.where(A1 != 0, A2 / A1, machine.D)
        return machine._set_param("D", new)

    return fit_em(machine, X, lambda: None, d_step, state=every, phase=2, name="JFA D training",
                  quantity="relative change of D")
