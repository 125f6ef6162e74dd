"""ISV/JFA enrolment and linear scoring, as functions of the machine's :class:`Constants`.

Statistics are stacked by :meth:`GMMStats.stack` (one probe session, the reference's usage of one
``score`` call per probe, is read in place).  A model is its offset from the UBM mean supervector
(ISV: ``D z``; JFA: ``V y + D z``); its linear score against a probe with statistics N, F, T and
channel factor x is ``sum(a * (F - N (m + U x))) / T`` with ``a = (M - m) / var``.
"""

from __future__ import annotations

import contextlib
import math
import threading

import numpy as np

from .._backend import _staging, small_products
from .._validation import check_stacked_statistics
from .._kernels import factor_analysis as kfa
from ..stats import GMMStats, as_stats_sequence, check_stats
from . import _device_scoring
from ._constants import Constants, same

EPSILON = np.finfo(float).eps

#: Probe sessions whose channel factor is kept between score calls (see :func:`score_session`).
_PROBE_CACHE_SIZE = 64
#: Held while a probe cache is trimmed and added to: threads scoring with the same machine share
#: its cache (two evicting the same oldest entry at once raised a KeyError).
_PROBE_CACHE_LOCK = threading.Lock()

#: Probes per block of :func:`score_matrix` (bounds its (P, C*r_U) temporaries).
PROBE_BLOCK = 1024

_NO_CONTEXT = contextlib.nullcontext()


def blas_for(rows: int):
    """One BLAS thread for products with more than a couple of rows (threads only cost there);
    below that, not even the cost of switching."""
    return small_products() if rows > 2 else _NO_CONTEXT


# ---------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------


def stack_sessions(X, shape, name="X"):
    """``n`` (S, C) and ``F`` (S, CD) of a GMMStats or a sequence of GMMStats of shape (C, D)."""
    X = as_stats_sequence(X)
    batch = GMMStats.stack([X] if isinstance(X, GMMStats) else X, name=name, shape=shape)
    return batch.n, batch.supervectors


def templates(data, shape, name="data"):
    """Summed ``n`` (P, C), ``F`` (P, CD), ``t`` (P,) of P probe templates, and whether ``data``
    was a single template (a GMMStats or a list of GMMStats) rather than a list of templates."""
    data = as_stats_sequence(data)
    if isinstance(data, GMMStats):
        data = [data]
    if not isinstance(data, (list, tuple)) or len(data) == 0:
        got = "an empty list" if isinstance(data, (list, tuple)) else type(data).__name__
        raise TypeError(
            f"{name} must be a non-empty list of GMMStats (one probe template) or a list of "
            f"such lists; got {got}"
        )
    single = not isinstance(data[0], (list, tuple))
    groups = [data] if single else [[t] if isinstance(t, GMMStats) else t for t in data]
    for p, template in enumerate(groups):
        if len(template) == 0:
            raise ValueError(f"{name if single else f'{name}[{p}]'} is an empty probe template")
    flat = [s for template in groups for s in template]
    batch = GMMStats.stack(flat, name=name, shape=shape)
    if len(flat) == len(groups):  # one session per template
        return batch.n, batch.supervectors, batch.t, single
    owner = np.repeat(np.arange(len(groups)), [len(t) for t in groups])
    P = len(groups)
    return (kfa.group_sum(owner, batch.n, P), kfa.group_sum(owner, batch.supervectors, P),
            kfa.group_sum(owner, batch.t, P), single)


def check_latent(value, shape, name):
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape not in (shape, (1,) + shape):
        raise ValueError(f"{name} must have shape {shape} (or {(1,) + shape}); got {arr.shape}")
    return arr.reshape(shape)


def _raise_non_finite(n, F, t):
    """A score came out NaN or infinite: a NaN or infinity in the inputs always ends up there
    (scores check their result instead of every input), so find which input it was."""
    if not all(np.isfinite(a).all() for a in (n, F, t)):
        raise ValueError("data holds statistics with NaN or infinity")
    raise ValueError("the model (latent variables) holds NaN or infinity")


# ---------------------------------------------------------------------------------------------
# channel factors
# ---------------------------------------------------------------------------------------------


def probe_x(c: Constants, n, F):
    """Channel factors of templates (P, r_U): the statistics centred on the UBM mean only.

    ``x = P^-1 b`` with ``P = I + sum_c n_c U_c^T Sigma_c^-1 U_c`` and
    ``b = U^T Sigma^-1 (F - N m)``: two matrix products, then a Cholesky solve per template.
    """
    precision, b = kfa.centred_projections(n, F, c.U_over_var, c.n_products)
    return kfa.spd_solve(precision, b[:, :, None])[:, :, 0]


def _single_sessions(data):
    """The GMMStats of a list of templates that each hold one session, else None."""
    if not isinstance(data, (list, tuple)) or not isinstance(data[0], (list, tuple)):
        return None
    out = []
    for template in data:
        if isinstance(template, GMMStats):
            out.append(template)
        elif isinstance(template, (list, tuple)) and len(template) == 1:
            out.append(template[0])
        else:
            return None
    return out


def _cached_probe_x(c: Constants, data, n, F):
    """:func:`probe_x` of the templates, taken from the probe cache of :func:`score_session` for
    templates of one session seen before (and added to it): scoring every model against the
    same list of probes computes each probe's channel factor once."""
    sessions = _single_sessions(data)
    if sessions is None:
        return probe_x(c, n, F)
    probes = c.scratch.setdefault("probes", {})
    x = np.empty((len(sessions), c.U_over_var.shape[1]))
    todo = []
    for p, s in enumerate(sessions):
        seen = probes.get(id(s))
        if seen is not None and same(seen[0], n[p]) and same(seen[1], F[p]):
            x[p] = seen[2]
        else:
            todo.append(p)
    if todo:
        x[todo] = probe_x(c, n[todo], F[todo])
        for p in todo[-_PROBE_CACHE_SIZE:]:
            _remember_probe(probes, sessions[p], (n[p].copy(), F[p].copy(), x[p].copy()))
    return x


def _remember_probe(probes: dict, session, entry: tuple) -> None:
    """Keep ``entry`` for ``session`` in a probe cache, dropping its oldest entries beyond
    :data:`_PROBE_CACHE_SIZE` (under a lock: several threads may score with one machine)."""
    with _PROBE_CACHE_LOCK:
        probes.pop(id(session), None)  # (re-added as the newest)
        while len(probes) >= _PROBE_CACHE_SIZE:
            probes.pop(next(iter(probes)))
        probes[id(session)] = entry


# ---------------------------------------------------------------------------------------------
# scores
# ---------------------------------------------------------------------------------------------


def model_terms(c: Constants, latents, model_offset):
    """Constants of the linear score of the model ``m + model_offset()``.

    ``a = (M - m) / var`` (CD,), and ``[a_m | W_a]`` (C, 1 + r_U) with
    ``a_m[c] = sum_d a_cd m_cd`` and ``W_a[c] = sum_d a_cd U_cd``.  They depend on the model
    only: the last model's are kept (in the constants, so a new U, V, D or UBM drops them) and
    reused while the same ``latents`` are scored, which is how models are used (one model, many
    probes).
    """
    cached = c.scratch.get("model")
    if cached is not None and all(same(a, b) for a, b in zip(cached[0], latents)):
        return cached[1]
    (C, D), m, var = c.shape, c.m, c.var
    a = ((model_offset() + m) - m) / var  # the reference's (M - m) / var, rounding included
    a_m = (a * m).reshape(C, D).sum(axis=1)
    W_a = kfa.weighted_blocks(a * var, c.U_over_var, C)
    terms = (a, np.hstack([a_m[:, None], W_a]))
    c.scratch["model"] = (tuple(np.array(v, copy=True) for v in latents), terms)
    return terms


def score(c: Constants, latents, model_offset, data):
    """Linear scores of the model ``m + model_offset()`` against probe templates ``data``.

    ``sum(a * (F - N (m + U x))) / T`` per template (0 when ``T <= eps``), evaluated as
    ``a.F - N.a_m - N.(W_a x)`` (:func:`model_terms`): no (templates, C*D) temporary, U read
    once per model.  One template -> ``numpy.float64``, a list of templates -> (P,).
    """
    a, model_n_terms = model_terms(c, latents, model_offset)
    data = as_stats_sequence(data)
    if isinstance(data, (list, tuple)) and len(data) == 1 and isinstance(data[0], GMMStats):
        return score_session(c, data[0], a, model_n_terms)
    n, F, t, single = templates(data, c.shape)
    with blas_for(len(n)):
        x = _cached_probe_x(c, data, n, F)
        n_terms = n @ model_n_terms  # [N.a_m | N W_a]
        scores = F @ a - n_terms[:, 0] - (n_terms[:, 1:] * x).sum(axis=1)
    if not (np.isfinite(scores).all() and np.isfinite(t).all()):
        _raise_non_finite(n, F, t)
    if single:
        t0 = t[0]
        return np.float64(0.0 if abs(t0) <= EPSILON else scores[0] / t0)
    return _normalise(scores, t)


def _normalise(scores, t):
    empty = np.abs(t) <= EPSILON
    return np.where(empty, 0.0, scores / np.where(empty, 1.0, t))


def score_session(c: Constants, s, a, model_n_terms):
    """:func:`score` of one probe session, the reference's usage (one call per probe): the same
    arithmetic on 1-D arrays, in as few numpy calls as possible.

    A trial list scores every probe against many models, one call each: the probe's channel
    factor ``x`` of the last probes seen is kept (with copies of their statistics, compared on
    every use, so a changed or different probe is never served a stale ``x``)."""
    check_stats(s, "data[0]", c.shape, shape_of="the UBM")
    n = np.asarray(s.n, dtype=np.float64)
    F = np.asarray(s.sum_px, dtype=np.float64).reshape(-1)
    # as the stacked path: a negative n or t would flip or break the score, not fail on its own
    check_stacked_statistics({"n": n[None, :], "t": np.array([s.t], dtype=np.float64)}, "data",
                             lambda i: "data[0]")
    probes = c.scratch.setdefault("probes", {})
    seen = probes.get(id(s))
    if seen is not None and same(seen[0], n) and same(seen[1], F):
        x = seen[2]
    else:
        precision, b = kfa.centred_projections(n, F, c.U_over_var, c.n_products)
        x = kfa.spd_solve(precision, b)
        _remember_probe(probes, s, (n.copy(), F.copy(), x))
    n_terms = n @ model_n_terms  # [N.a_m | N W_a]
    value = F @ a - n_terms[0] - n_terms[1:] @ x
    if not (math.isfinite(value) and math.isfinite(s.t)):
        _raise_non_finite(n, F, s.t)
    return np.float64(0.0 if abs(s.t) <= EPSILON else value / s.t)


@small_products
def score_matrix(c: Constants, offsets, probes) -> np.ndarray:
    """Scores (M, P) of M models ``m + offsets[i]`` (offsets (M, CD)) against P probes.

    ``probes``: a list of GMMStats (one probe each) or of probe templates (lists of GMMStats),
    stacked once; equals :func:`score` of every pair.  Blocks of :data:`PROBE_BLOCK` probes:
    ``A F^T - a_m n^T - W_a (n x)^T`` as three matrix products per block.
    """
    probes = as_stats_sequence(probes)
    if isinstance(probes, GMMStats):
        probes = [probes]
    if not isinstance(probes, (list, tuple)) or len(probes) == 0:
        got = "an empty list" if isinstance(probes, (list, tuple)) else type(probes).__name__
        raise TypeError(f"probes must be a non-empty list of GMMStats (or of probe templates); got {got}")
    groups = [[p] if isinstance(p, GMMStats) else p for p in probes]
    n, F, t, _ = templates(groups, c.shape, "probes")
    dev = _staging.configured_device()
    if dev is not None:  # the same products on the device (docs/gpu.md)
        out = _device_scoring.score_matrix(c, offsets, n, F, dev, PROBE_BLOCK)
        if not (np.isfinite(out).all() and np.isfinite(t).all()):
            _raise_non_finite(n, F, t)
        return _normalise(out, t[None, :])
    (C, D), m, var = c.shape, c.m, c.var
    r = c.U_over_var.shape[1]
    A = ((offsets + m) - m) / var  # (M, CD), the reference's (M - m) / var
    a_m = (A * m).reshape(-1, C, D).sum(axis=2)  # (M, C)
    # W_a[i, c] = sum_d A[i, c, d] U[c, d]: (C, M, D) @ (C, D, r) -> (M, C*r)
    W_a = np.matmul((A * var).reshape(-1, C, D).transpose(1, 0, 2), c.U_over_var.reshape(C, D, r))
    W_a = W_a.transpose(1, 0, 2).reshape(len(A), C * r)
    out = np.empty((len(A), len(t)))
    for start in range(0, len(t), PROBE_BLOCK):
        rows = slice(start, start + PROBE_BLOCK)
        x = probe_x(c, n[rows], F[rows])  # (B, r)
        nx = (n[rows, :, None] * x[:, None, :]).reshape(len(x), C * r)
        out[:, rows] = A @ F[rows].T - a_m @ n[rows].T - W_a @ nx.T
    if not (np.isfinite(out).all() and np.isfinite(t).all()):
        _raise_non_finite(n, F, t)
    return _normalise(out, t[None, :])


# ---------------------------------------------------------------------------------------------
# enrolment
# ---------------------------------------------------------------------------------------------


def enroll_isv(c: Constants, n, F, iterations: int) -> np.ndarray:
    """Class offset z (CD,) of one client from its sessions ``n`` (S, C), ``F`` (S, CD).

    z = 0, then ``iterations`` times: x_h with the current z, then z with the new x.
    """
    (C, D), m, var, Uov, Dd = c.shape, c.m, c.var, c.U_over_var, c.D
    with blas_for(len(n)):
        precision, b_mean = kfa.centred_projections(n, F, Uov, c.n_products)
        N_tot = np.repeat(n.sum(axis=0), D)
        centred_z_base = F.sum(axis=0) - N_tot * m
        z = None  # zero
        for _ in range(iterations):
            b = b_mean
            if z is not None:
                b = b_mean - n @ kfa.weighted_blocks(Dd * z, Uov, C)  # ... - N_h D z
            x = kfa.spd_solve(precision, b[:, :, None])[:, :, 0]
            UG = kfa.block_products(c.U, n.T @ x)  # sum_h N_h U x_h
            z, _ = kfa.diagonal_posterior(N_tot, centred_z_base - UG, Dd, var)
    return z


def enroll_jfa(c: Constants, n, F, iterations: int):
    """Latent ``(y (r_V,), z (CD,))`` of one client from its sessions ``n`` (S, C), ``F`` (S, CD).

    x = y = z = 0, then ``iterations`` times: y (statistics centred on ``m + D z + U x``), x_h (on
    ``m + D z + V y``), z (on ``m + V y + U x``).
    """
    (C, D), m, var, V, Dd = c.shape, c.m, c.var, c.V, c.D
    Uov, Vov = c.U_over_var, c.V_over_var
    with blas_for(len(n)):
        # per session U^T Sigma^-1 (F_h - N_h m), in total V^T Sigma^-1 (F - N m), precisions
        precision_x, b_x_mean = kfa.centred_projections(n, F, Uov, c.n_products)
        n_tot, F_tot = n.sum(axis=0), F.sum(axis=0)
        precision_y, b_y_mean = kfa.centred_projections(n_tot, F_tot, Vov, c.v_products)
        N_tot = np.repeat(n_tot, D)
        centred_tot = F_tot - N_tot * m  # F - N m, summed over the sessions
        Dz = UG = None  # D z and sum_h N_h U x_h: zero before the first iteration
        for _ in range(iterations):
            b_y = b_y_mean  # V^T Sigma^-1 (F - N (m + D z) - sum_h N_h U x_h)
            if Dz is not None:
                b_y = b_y_mean - (N_tot * Dz + UG) @ Vov
            y = kfa.spd_solve(precision_y, b_y)
            # U^T Sigma^-1 N_h (D z + V y), with V_c^T Sigma_c^-1 U_c y from the cached VtU
            offsets = (y @ c.VtU).reshape(C, -1)
            if Dz is not None:
                offsets += kfa.weighted_blocks(Dz, Uov, C)
            x = kfa.spd_solve(precision_x, (b_x_mean - n @ offsets)[:, :, None])[:, :, 0]
            UG = kfa.block_products(c.U, n.T @ x)
            z, _ = kfa.diagonal_posterior(N_tot, centred_tot - N_tot * (V @ y) - UG, Dd, var)
            Dz = Dd * z
    return y, z
