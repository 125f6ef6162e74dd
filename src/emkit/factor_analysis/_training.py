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

import dataclasses
import threading

import numpy as np

from .._backend import is_bag, is_cached, is_delayed, map_reduce, n_threads, thread_map
from .._backend._staging import configured_device, synced
from .._caller_warnings import warn_at_caller
from .._checkpoint import resumable_em
from .._fitted import fitted_value
from .._kernels import factor_analysis as kfa
from .._progress import Progress
from ..stats import as_stats_sequence
from ._blocks import NO_ITEM, ClassTotals, SessionBlock, TrainingSet, in_memory, split
from ._constants import Constants
from ._dask import (delayed_training_set, is_nested, prepare_bag, prepare_nested,
                    stack_partition, stacked_on_workers)
from ._estep import (ClassRows, SessionAccumulator, SessionParams, block_posterior,
                     class_totals_chunk, session_chunk, streamed_pass)
from ._labels import check_lengths, encode_labels, label_list
from ._mstep import (by_gaussians, class_projections, d_update, isv_class_level, jfa_d_terms,
                     u_update)

#: Threads for a pass over in-memory sessions (None: the CPUs this process may use).  The blocks
#: of sessions go to the threads as they come (one BLAS thread each) and their terms are added in
#: block order, so the numbers do not depend on the thread count.  On the 2-core development
#: machine (ISV benchmark size, best of repeated runs), a pass took ~10 ms on two threads and
#: ~15 ms on one when idle; with another process keeping a core busy, two threads were about as
#: fast as one (ISV) or faster (JFA).  Dask inputs are spread by dask's scheduler.
SESSION_THREADS = None

#: Elements of the (sessions, C*D) blocks (views of the stacked statistics, not copies): 64 MB of
#: float64, a few hundred sessions at C*D = 30720, so that the products of a block (its linear
#: terms, precisions and second moments) run near the BLAS rate of one thread; the posterior
#: stacks of a block are bounded separately (:data:`._estep.POSTERIOR_BYTES`).
BLOCK_ELEMENTS = 8_000_000


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
        if is_cached(X):
            return stacked_on_workers(X, y, shape, block_size(*shape))
        return prepare_bag(X, y)
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
    """:class:`SessionParams` of a pass with the constants ``c``; ``class_offsets`` (K, CD), or
    (C, D, K) (:func:`~emkit._kernels.factor_analysis.gaussian_major`), are the ``o_k`` of the
    statistics' centring ``m + o_k`` (JFA: ``V y_k``), None for zero."""
    offset_proj = None
    if class_offsets is not None:
        if class_offsets.ndim == 2:
            class_offsets = kfa.gaussian_major(class_offsets, c.shape[0])
        offset_proj = class_projections(class_offsets, c.U_over_var, c.shape, session_threads())
    return SessionParams(
        shape=c.shape, U_over_var=c.U_over_var, uprod=c.uprod, W_mean=c.W_mean,
        n_products=c.n_products,
        n_classes=n_classes, step=block_size(*c.shape), offset_proj=offset_proj,
        accumulate=accumulate, totals=totals,
    )


def session_pass(data: TrainingSet, params: SessionParams,
                 what: str | None = None) -> SessionAccumulator:
    """The E-step over all sessions: a :class:`SessionAccumulator`.

    In memory, the blocks are spread over threads (:data:`SESSION_THREADS`) as they come, and
    their terms added in block order: the result does not depend on the number of threads, and a
    thread slowed down by other processes simply takes fewer blocks.  ``what``: the name of the
    pass in the progress lines of the ``emkit`` logger (INFO, at most every 30 s: sessions done
    of all in memory, queued block by block on a device; partitions done of a dask bag's); None:
    none.
    """
    rows = data.rows
    if not isinstance(rows, list):  # the workers need neither uprod nor the (S, r) factors back
        progress = None if what is None else Progress(what, rows.npartitions, "partition")
        acc = map_reduce(partition_pass, rows, dataclasses.replace(params, uprod=None),
                         numbered=True, progress=progress)
        if isinstance(acc.G, ClassRows):
            acc = dataclasses.replace(acc, G=acc.G.dense(data.n_classes))
        return acc
    progress = None if what is None else Progress(
        what, sum(len(block.n) for block in data.rows), "session")
    dev = configured_device()
    if dev is not None:  # emkit.set_config(device=...): see ._device and docs/gpu.md
        from ._device import session_pass as device_pass

        return device_pass(data, params, dev, progress)
    return _blocks_pass(data, params, progress=progress)


def partition_pass(piece, p: SessionParams, partition: int | None = None) -> SessionAccumulator:
    """The E-step of a dask partition: :func:`_blocks_pass` on one thread (A1 packed, without the
    factors x, with a copy of the class totals when ``p.totals``) over the partition stacked on
    the workers (a list of :class:`TrainingSet`, :func:`._dask.stacked_on_workers`), or over its
    pairs stacked now (a partition not cached; ``partition``: its number, for errors);
    :func:`._estep.streamed_pass` over the blocks of a spilled one, read as they come;
    :func:`._estep.session_chunk` on a device."""
    from .._device_infer import device

    if device() is not None:
        return session_chunk(piece, p)  # (A1 (C, r, r): added to packed ones by __add__)
    items = iter(piece)
    first = next(items, NO_ITEM)
    if first is NO_ITEM:
        return SessionAccumulator.zeros(p)
    if isinstance(first, SessionBlock):  # a spilled partition's blocks, read one at a time
        items, first = _then(first, items), None  # (no block held through the pass)
        return streamed_pass(items, p)
    items = [first, *items]
    if not isinstance(items[0], TrainingSet):
        items = stack_partition(items, p.shape, p.n_classes, p.step, partition=partition)
    total = None
    for training_set in items:
        classes = np.flatnonzero(training_set.counts)
        acc = _blocks_pass(training_set, p, threads=1, classes=classes)
        totals = training_set.totals if p.totals else None
        if totals is not None:
            totals = ClassTotals(totals.n.copy(), totals.F.copy(), totals.counts.copy())
        G = acc.G if acc.G is None else ClassRows(classes, acc.G)
        acc = SessionAccumulator(acc.A1, acc.A2F, G, totals)
        total = acc if total is None else total + acc
    return total


def _then(first, rest):
    """``first``, then the items of ``rest``, not holding ``first`` after it (``itertools.chain``
    holds its arguments to the end)."""
    yield first
    del first
    yield from rest


def _blocks_pass(data: TrainingSet, p, threads: int | None = None,
                 classes: np.ndarray | None = None, progress=None) -> SessionAccumulator:
    """:func:`session_pass` over in-memory blocks: the posteriors of the blocks on threads (one
    BLAS thread each), their sums added in block order, then ``A2F = F^T x`` as one product over
    all sessions, by slices of Gaussians on threads.  A1 stays packed (C, r(r+1)/2) and the
    session factors x are kept in the accumulator (large arrays are written by the threads:
    their pages are faulted in in parallel).  ``classes``: the sorted indices of every class of
    ``data``; G then holds their rows only, (len(classes), C, r), not (K, C, r).  ``progress``
    (a :class:`~emkit._progress.Progress`) counts the sessions of each block done."""
    threads = session_threads() if threads is None else threads
    C, D = p.shape
    r = p.U_over_var.shape[1]
    # kept from pass to pass (fresh large arrays are faulted in page by page, as system time):
    # scratch stacks per thread, and the blocks' A1 arrays, handed back once added
    workspaces = data.scratch.setdefault("threads", {})
    free = data.scratch.setdefault(("A1", C, r), [])

    def posterior(block):
        try:
            A1 = free.pop() if p.accumulate else None
        except IndexError:
            A1 = None
        return block_posterior(block, p, workspaces.setdefault(threading.get_ident(), {}), A1)

    x = np.empty((sum(len(block.n) for block in data.rows), r))
    A1 = np.zeros((C, kfa.packed_size(r))) if p.accumulate else None
    class_sums, start = [], 0  # (classes, G) of each block
    for block, (bx, bA1, bG) in zip(data.rows, thread_map(posterior, data.rows, threads)):
        x[start : start + len(bx)] = bx
        start += len(bx)
        if progress is not None:
            progress.advance(len(bx))
        if A1 is not None:
            A1 += bA1
            free.append(bA1)
        present = block.present if classes is None else np.searchsorted(classes, block.present)
        # sorted: a slice when its classes are consecutive (in place)
        if len(present) and present[-1] - present[0] + 1 == len(present):
            present = slice(int(present[0]), int(present[-1]) + 1)
        class_sums.append((present, bG))
    G = None
    if p.class_sums:  # the blocks' sums in block order, slice by slice of Gaussians on threads
        G = np.empty((p.n_classes if classes is None else len(classes), C, r))

        def add_class_sums(gs):
            G[:, gs] = 0.0
            for present, bG in class_sums:
                G[present, gs] += bG[:, gs]

        by_gaussians(add_class_sums, C, threads)
    if A1 is None:
        return SessionAccumulator(None, None, G, x=x)
    F = data.F
    if F is None:
        F = np.concatenate([block.F for block in data.rows])
    xt, A2F = np.ascontiguousarray(x.T), np.empty((C * D, r))

    def first_order(gs):  # x^T F rather than F^T x: the same product, a third faster here
        rows = slice(gs.start * D, gs.stop * D)
        A2F[rows] = (xt @ F[:, rows]).T

    by_gaussians(first_order, C, threads)
    return SessionAccumulator(A1, A2F, G, x=x)  # A1 packed: unpacked by slices in u_update


def class_training_set(totals: ClassTotals) -> TrainingSet:
    """The classes as sessions (their summed statistics), for JFA's V phase: blocks of a
    :func:`block_size` of classes, one class each."""
    K, C = totals.n.shape
    step = block_size(C, totals.F.shape[1] // C)
    rows = [
        SessionBlock(np.arange(s.start, s.stop), totals.n[s], totals.F[s],
                     np.arange(s.start, s.stop), np.arange(s.stop - s.start), None)
        for s in split(K, 2 * -(-K // (2 * step)))
    ]
    return TrainingSet(rows, np.arange(K), np.ones(K, np.int64), None, totals.F)


def class_totals(data: TrainingSet, shape):
    """Per-class sums of the statistics (summed while stacking, or one pass over the sessions)."""
    if data.totals is not None:
        return data.totals
    return map_reduce(class_totals_chunk, data.rows, shape, data.n_classes, block_size(*shape),
                      numbered=True)


def u_accumulator(c: Constants, acc: SessionAccumulator, class_offsets=None) -> np.ndarray:
    """``sum_h (F_h - N_h (m + o_k)) x_h^T`` (CD, r_U) from a :class:`SessionAccumulator`, with
    the per-class offsets ``o_k`` (K, CD) or (C, D, K) (None for zero)."""
    (C, D), r = c.shape, acc.G.shape[2]
    g = acc.G.sum(axis=0)  # sum_h N_h x_h, (C, r)
    A2 = acc.A2F - (c.means[:, :, None] * g[:, None, :]).reshape(C * D, r)
    if class_offsets is not None:
        A2 -= kfa.offset_outer_products(class_offsets, acc.G)
    return A2


def fit_em(machine, X, e_step, m_step, *, state, name, quantity, phase=0, device=None):
    """``machine.em_iterations`` of ``m_step(e_step())``, resumable from ``machine.checkpoint``:
    ``state`` names the parameters (of "U", "V", "D") saved after every iteration.  ``device``:
    a :class:`~._device_train.DeviceU` whose steps keep U on a device (synchronised to the
    machine before each checkpoint and at the end)."""
    with synced(device):
        return _fit_em(machine, X, e_step, m_step, state, name, quantity, phase, device)


def _in_memory_device(data: TrainingSet):
    """The configured device for a training set in memory; None for the numpy path and for
    dask (whose workers pick their own)."""
    return configured_device() if isinstance(data.rows, list) else None


def device_u(machine, data: TrainingSet, isv: bool = False, **kwargs):
    """A :class:`~._device_train.DeviceU` when a device is configured and ``data`` is in memory
    (else None: the numpy path, or the dask path's workers); ``isv``: with the class totals."""
    dev = _in_memory_device(data)
    if dev is None:
        return None
    from ._device_train import DeviceU

    if isv:
        kwargs["totals"] = class_totals(data, machine._constants().shape)
    return DeviceU(machine, data, dev, **kwargs)


def _fit_em(machine, X, e_step, m_step, state, name, quantity, phase, device):
    def get_state():
        if device is not None:
            device.sync()
        return {k: fitted_value(machine, k) for k in state}

    return resumable_em(
        machine,
        X,
        initialize=lambda: None,  # the parameters exist already (_create_missing)
        get_state=get_state,
        set_state=lambda arrays: [machine._store(k, np.array(arrays[k], dtype=np.float64))
                                  for k in state],
        state_shapes={k: fitted_value(machine, k).shape for k in state},  # (set: _create_missing)
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
        acc = session_pass(data, params, "ISV E-step")
        if first:  # class-level arrays in the (C, D, K) layout of kfa.gaussian_major
            totals = data.totals if data.totals is not None else acc.totals
            # D and N are fixed: D z_k = gain * (centred_k - sum_{h in k} N_h U x_h)
            centred, gain = isv_class_level(totals, m, machine.D, var, (C, D), session_threads())
            class_level.update(centred=centred, gain=gain, buffer=np.empty_like(centred))
        return acc

    def m_step(acc):
        isv = (class_level["centred"], class_level["gain"], class_level["buffer"])
        return machine._set_param("U", u_update(machine._constants(), acc, session_threads(),
                                                isv=isv))

    device = device_u(machine, data, isv=True, what="ISV E-step")  # U on a device
    if device is not None:
        e_step, m_step = device.e_step, device.m_step
    return fit_em(machine, X, e_step, m_step, state=("U",), name="ISV U training",
                  quantity="relative change of U", device=device)


def train_jfa(machine, data: TrainingSet, X):
    """JFA (bob 2.x's ``train_jfa``): ``em_iterations`` of V (x = z = 0), then of U (with the
    final y), then of D (with the final y and x).  Returns the last phase's EMResult.  The
    ``emkit`` logger counts the classes of the V passes and the sessions of the U passes; the D
    phase, one update vectorised over all classes, has only its iteration lines."""
    (C, D), m, var = _supervectors(machine)
    if machine.r_V > data.n_classes:
        warn_at_caller(f"r_V = {machine.r_V} is more than the {data.n_classes} speakers (classes) of the "
                      f"training data: V learns at most {data.n_classes} speaker directions", UserWarning)
    totals = class_totals(data, (C, D))
    classes = class_training_set(totals)  # x = z = 0 throughout the V phase
    every = ("U", "V", "D")
    threads = session_threads()

    def v_params(accumulate):
        c = machine._constants()
        r = c.V_over_var.shape[1]
        return SessionParams(shape=c.shape, U_over_var=c.V_over_var, uprod=c.vprod,
                             W_mean=c.v_products[:, :r], n_products=c.v_products,
                             n_classes=data.n_classes, step=block_size(C, D),
                             accumulate=accumulate, class_sums=False)

    def classes_counted(what):
        return Progress(what, data.n_classes, "class")

    def v_step(_):  # the posterior of y_k given the class totals: a pass over classes
        acc = _blocks_pass(classes, v_params(True), progress=classes_counted("JFA V E-step"))
        V = u_update(machine._constants(), acc, threads, W=machine.V, g=totals.n.T @ acc.x)
        return machine._set_param("V", V)

    device = device_u(machine, classes, name="V", what="JFA V E-step", unit="class")
    e_step = lambda: None  # noqa: E731  (the pass runs in v_step)
    if device is not None:
        e_step, v_step = device.e_step, device.m_step
    fit_em(machine, X, e_step, v_step, state=every, phase=0, name="JFA V training",
           quantity="relative change of V", device=device)
    latent_y = _blocks_pass(classes, v_params(False), progress=classes_counted("JFA y pass")).x
    # the class offsets V y_k of the U and D phases, (C, D, K) (kfa.gaussian_major's layout)
    V3, Vy = machine.V.reshape(C, D, -1), np.empty((C, D, data.n_classes))
    by_gaussians(lambda gs: np.matmul(V3[gs], latent_y.T, out=Vy[gs]), C, threads)

    def u_e_step():
        return session_pass(data, session_params(machine._constants(), data.n_classes, Vy),
                            "JFA U E-step")

    def u_m_step(acc):
        return machine._set_param("U", u_update(machine._constants(), acc, threads,
                                                class_offsets=Vy))

    device = device_u(machine, data, class_offsets=Vy, what="JFA U E-step")  # U on a device
    if device is not None:
        u_e_step, u_m_step = device.e_step, device.m_step
    fit_em(machine, X, u_e_step, u_m_step, state=every, phase=1, name="JFA U training",
           quantity="relative change of U", device=device)
    params = session_params(machine._constants(), data.n_classes, Vy, accumulate=False)
    G = session_pass(data, params, "JFA x pass").G
    centred_z, N = jfa_d_terms(totals, m, Vy, machine.U, G, (C, D), threads)

    def d_step(_):
        return machine._set_param("D", d_update(centred_z, N, machine.D, var, threads))

    e_step, device = (lambda: None), None
    dev = _in_memory_device(data)
    if dev is not None:  # D resident on a device
        from ._device_train import DeviceD

        device = DeviceD(machine, centred_z, N, var, dev)
        e_step, d_step = device.e_step, device.m_step
    return fit_em(machine, X, e_step, d_step, state=every, phase=2, name="JFA D training",
                  quantity="relative change of D", device=device)
