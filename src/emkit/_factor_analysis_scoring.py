"""Enrolment and scoring constants of ISV/JFA: what is derived from U, V, D and the UBM (cached
while they stay the same), probe channel factors and the linear scores.

A mixin of :class:`emkit._factor_analysis_base.FactorAnalysisBase`.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from ._backend import single_threaded_blas
from ._factor_analysis_data import check_stats
from ._factor_analysis_steps import stack_sessions
from ._kernels import factor_analysis as kfa
from .stats import GMMStats, as_stats_sequence

EPSILON = np.finfo(float).eps

_NO_CONTEXT = contextlib.nullcontext()


def _blas_for(rows: int):
    """One BLAS thread for products with more than a couple of rows (threads only cost there);
    below that, not even the cost of switching."""
    return single_threaded_blas() if rows > 2 else _NO_CONTEXT


#: Probe sessions whose channel factor is kept between score calls (see ``_score_session``).
_PROBE_CACHE_SIZE = 64


def _same(cached: np.ndarray, value) -> bool:
    """``np.array_equal`` for a cached float64 array, with less overhead (called per score)."""
    value = np.asarray(value)
    return cached.shape == value.shape and bool((cached == value).all())


def _all_finite(*arrays) -> bool:
    return all(np.isfinite(a).all() for a in arrays)


def _raise_non_finite(n, F, t):
    """A score came out NaN or infinite: a NaN or infinity in the inputs always ends up there
    (scores check their result instead of every input), so find which input it was."""
    if not _all_finite(n, F, t):
        raise ValueError("data holds statistics with NaN or infinity")
    raise ValueError("the model (latent variables) holds NaN or infinity")


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


class ScoringMixin:
    """Derived constants, probe channel factors and scores (see the module docstring)."""

    # -- constants derived from the parameters (cached) ------------------------------------------
    def _cached_constants(self):
        """The derived constants if they are up to date, else None (called once per score)."""
        c, state = self.__dict__.get("_cache"), self.__dict__
        if (
            c is not None
            and c["U"] is state.get("_U")
            and c["V"] is state.get("_V")
            and c["D"] is state.get("_D")
            and c["ubm"] is self.ubm
            and _same(c["means"], self.ubm.means)
            and _same(c["variances"], self.ubm.variances)
            and (not state.get("_defaults") or c["key"] == self._default_key())
        ):
            return c
        return None

    def _derived(self):
        """UBM supervectors and U/V-derived constants, rebuilt when U, V, D or the UBM changes."""
        c = self._cached_constants()
        if c is not None:
            return c
        ubm = self._trained_ubm()
        U, V, Dd = self._get("U"), self.__dict__.get("_V"), self.__dict__.get("_D")
        means = np.array(ubm.means, dtype=np.float64)
        variances = np.array(ubm.variances, dtype=np.float64)
        var = variances.ravel()
        C, D = means.shape
        U_over_var = U / var[:, None]
        c = dict(
            U=U,
            V=V,
            D=Dd,
            ubm=ubm,
            key=self._default_key(),  # initial values are drawn again when it changes
            model=None,  # (latents, score terms) of the last model scored, see _model_terms
            means=means,
            variances=variances,
            shape=means.shape,
            m=means.ravel(),
            var=var,
            U_over_var=U_over_var,
            uprod=kfa.subspace_products(U, variances),
            # W_mean[c] = sum_d m_cd U_cd / var_cd: U^T Sigma^-1 (N m) = n @ W_mean
            W_mean=kfa.weighted_blocks(means.ravel(), U_over_var, C),
        )
        c["n_products"] = kfa.projection_products(c["W_mean"], c["uprod"])  # see _probe_x
        if V is not None:
            V_over_var = V / var[:, None]
            c.update(V_over_var=V_over_var, vprod=kfa.subspace_products(V, variances))
            c["v_products"] = kfa.projection_products(
                kfa.weighted_blocks(means.ravel(), V_over_var, C), c["vprod"]
            )
            # VtU[c] = V_c^T Sigma_c^-1 U_c, flattened (r_V, C*r_U): y @ VtU = U^T Sigma^-1 V y
            VtU = np.matmul(V.reshape(C, D, -1).transpose(0, 2, 1), U_over_var.reshape(C, D, -1))
            c["VtU"] = np.ascontiguousarray(VtU.transpose(1, 0, 2).reshape(V.shape[1], -1))
        self.__dict__["_cache"] = c
        return c

    def _sv(self):
        """(C, D), mean supervector, variance supervector."""
        c = self._derived()
        return c["shape"], c["m"], c["var"]

    # -- statistics of enrolment and probe templates -------------------------------------------
    def _stack(self, X, name="X"):
        """``n`` (S, C) and ``F`` (S, CD) of a GMMStats or a list of GMMStats."""
        shape = self._shape()
        X = as_stats_sequence(X)
        if isinstance(X, GMMStats):
            X = [X]
        if not isinstance(X, (list, tuple)):
            raise TypeError(f"{name} must be a list of GMMStats; got {type(X).__name__}")
        if len(X) == 0:
            raise ValueError(f"{name} is empty: expected at least one GMMStats")
        return stack_sessions(X, shape, name)

    def _templates(self, data, name="data", check_finite=True, shape=None):
        """Summed ``n`` (P, C), ``F`` (P, CD), ``t`` (P,) of P probe templates, and whether ``data``
        was a single template (a GMMStats or a list of GMMStats) rather than a list of templates.

        With ``check_finite=False`` the caller checks its results instead (see :meth:`_score`).
        """
        data = as_stats_sequence(data)
        if isinstance(data, GMMStats):
            data = [data]
        if not isinstance(data, (list, tuple)) or len(data) == 0:
            got = "an empty list" if isinstance(data, (list, tuple)) else type(data).__name__
            raise TypeError(
                f"{name} must be a non-empty list of GMMStats (one probe template) or a list of "
                f"such lists; got {got}"
            )
        shape = self._shape() if shape is None else shape
        if len(data) == 1 and isinstance(data[0], GMMStats):  # the common case: one probe session
            s = check_stats(data[0], 0, shape, name)
            n = np.asarray(s.n, dtype=np.float64).reshape(1, -1)
            F = np.asarray(s.sum_px, dtype=np.float64).reshape(1, -1)
            t, single = np.array([s.t], dtype=np.float64), True
        else:
            n, F, t, single = self._stack_templates(data, shape, name)
        if check_finite and not _all_finite(n, F):
            raise ValueError(f"{name} holds statistics with NaN or infinity")
        return n, F, t, single

    @staticmethod
    def _stack_templates(data, shape, name):
        single = not isinstance(data[0], (list, tuple))
        templates = [data] if single else data
        P, (C, D) = len(templates), shape
        n, F, t = np.empty((P, C)), np.empty((P, C * D)), np.empty(P)
        for p, template in enumerate(templates):
            where = name if single else f"{name}[{p}]"
            if isinstance(template, GMMStats):
                template = [template]
            if len(template) == 0:
                raise ValueError(f"{where} is an empty probe template")
            if len(template) == 1:
                s = check_stats(template[0], 0, shape, where)
                n[p], F[p], t[p] = s.n, np.reshape(s.sum_px, -1), s.t
            else:
                n_s, F_s = stack_sessions(template, shape, where)
                n[p], F[p] = n_s.sum(axis=0), F_s.sum(axis=0)
                t[p] = sum(s.t for s in template)
        return n, F, t, single

    @staticmethod
    def _probe_x(c, n, F):
        """Channel factors of templates (P, r_U): the statistics centred on the UBM mean only.

        ``x = P^-1 b`` with ``P = I + sum_c n_c U_c^T Sigma_c^-1 U_c`` and
        ``b = U^T Sigma^-1 (F - N m)``: two matrix products, then a Cholesky solve per template.
        """
        precision, b = kfa.centred_projections(n, F, c["U_over_var"], c["n_products"])
        return kfa.spd_solve(precision, b[:, :, None])[:, :, 0]

    def estimate_x(self, X) -> np.ndarray:
        """Channel factor of a probe: ``x = L(U, N) U^T Sigma^-1 (F - N m)`` with N, F summed over ``X``.

        ``X`` is a list of GMMStats (one template) or one GMMStats.  Returns (r_U,).
        """
        self._check_fitted("estimate_x")
        n, F, _, _ = self._templates(X, "X")
        return self._probe_x(self._derived(), n, F)[0]

    def estimate_ux(self, X) -> np.ndarray:
        """``U @ estimate_x(X)``, (CD,)."""
        return self._get("U") @ self.estimate_x(X)

    def _model_terms(self, c, latents, model_offset):
        """Constants of the linear score of the model ``m + model_offset()`` (see :meth:`_score`).

        ``a = (M - m) / var`` (CD,), and ``[a_m | W_a]`` (C, 1 + r_U) with
        ``a_m[c] = sum_d a_cd m_cd`` and ``W_a[c] = sum_d a_cd U_cd``.  They depend on the model
        only: the last model's are kept (in the derived constants, so a new U, V, D or UBM drops
        them) and reused while the same ``latents`` are scored, which is how models are used (one
        model, many probes).
        """
        cached = c["model"]
        if cached is not None and all(_same(a, b) for a, b in zip(cached[0], latents)):
            return cached[1]
        (C, D), m, var = c["shape"], c["m"], c["var"]
        a = ((model_offset() + m) - m) / var  # the reference's (M - m) / var, rounding included
        a_m = (a * m).reshape(C, D).sum(axis=1)
        W_a = kfa.weighted_blocks(a * var, c["U_over_var"], C)
        terms = (a, np.hstack([a_m[:, None], W_a]))
        c["model"] = (tuple(np.array(v, copy=True) for v in latents), terms)
        return terms

    def _score(self, c, latents, model_offset, data):
        """Linear scores of the model ``m + model_offset()`` against probe templates.

        ``sum(a * (F - N (m + U x))) / T`` per template, with the probe's channel offset ``U x``
        and ``a = (M - m) / var`` (0 when ``T <= eps``), evaluated as ``a.F - N.a_m - N.(W_a x)``
        (:meth:`_model_terms`): no (templates, C*D) temporary, U read once per model.
        """
        a, model_n_terms = self._model_terms(c, latents, model_offset)
        data = as_stats_sequence(data)
        if isinstance(data, (list, tuple)) and len(data) == 1 and isinstance(data[0], GMMStats):
            return self._score_session(c, data[0], a, model_n_terms)
        n, F, t, single = self._templates(data, check_finite=False, shape=c["shape"])
        with _blas_for(len(n)):
            x = self._cached_probe_x(c, data, n, F)
            n_terms = n @ model_n_terms  # [N.a_m | N W_a]
            scores = F @ a - n_terms[:, 0] - (n_terms[:, 1:] * x).sum(axis=1)
        if not (np.isfinite(scores).all() and np.isfinite(t).all()):
            _raise_non_finite(n, F, t)
        if single:
            t0 = t[0]
            return np.float64(0.0 if abs(t0) <= EPSILON else scores[0] / t0)
        empty = np.abs(t) <= EPSILON
        return np.where(empty, 0.0, scores / np.where(empty, 1.0, t))

    @classmethod
    def _cached_probe_x(cls, c, data, n, F):
        """:meth:`_probe_x` of the templates, taken from the probe cache of :meth:`_score_session`
        for templates of one session seen before (and added to it): scoring every model against
        the same list of probes computes each probe's channel factor once."""
        sessions = _single_sessions(data)
        if sessions is None:
            return cls._probe_x(c, n, F)
        probes = c.setdefault("probes", {})
        x = np.empty((len(sessions), c["U_over_var"].shape[1]))
        todo = []
        for p, s in enumerate(sessions):
            seen = probes.get(id(s))
            if seen is not None and _same(seen[0], n[p]) and _same(seen[1], F[p]):
                x[p] = seen[2]
            else:
                todo.append(p)
        if todo:
            x[todo] = cls._probe_x(c, n[todo], F[todo])
            for p in todo[-_PROBE_CACHE_SIZE:]:
                if len(probes) >= _PROBE_CACHE_SIZE:
                    probes.pop(next(iter(probes)))  # the oldest entry
                probes[id(sessions[p])] = (n[p].copy(), F[p].copy(), x[p].copy())
        return x

    @staticmethod
    def _score_session(c, s, a, model_n_terms):
        """:meth:`_score` of one probe session, the reference's usage (one call per probe): the
        same arithmetic on 1-D arrays, in as few numpy calls as possible.

        A trial list scores every probe against many models, one call each: the probe's channel
        factor ``x`` of the last probes seen is kept (with copies of their statistics, compared
        on every use, so a changed or different probe is never served a stale ``x``)."""
        check_stats(s, 0, c["shape"], "data")
        n = np.asarray(s.n, dtype=np.float64)
        F = np.asarray(s.sum_px, dtype=np.float64).reshape(-1)
        probes = c.setdefault("probes", {})
        seen = probes.get(id(s))
        if seen is not None and _same(seen[0], n) and _same(seen[1], F):
            x = seen[2]
        else:
            precision, b = kfa.centred_projections(n, F, c["U_over_var"], c["n_products"])
            x = kfa.spd_solve(precision, b)
            if len(probes) >= _PROBE_CACHE_SIZE:
                probes.pop(next(iter(probes)))  # the oldest entry
            probes[id(s)] = (n.copy(), F.copy(), x)
        n_terms = n @ model_n_terms  # [N.a_m | N W_a]
        score = F @ a - n_terms[0] - n_terms[1:] @ x
        if not (math.isfinite(score) and math.isfinite(s.t)):
            _raise_non_finite(n, F, s.t)
        return np.float64(0.0 if abs(s.t) <= EPSILON else score / s.t)

    def _check_latent(self, value, shape, name):
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape not in (shape, (1,) + shape):
            raise ValueError(f"{name} must have shape {shape} (or {(1,) + shape}); got {arr.shape}")
        return arr.reshape(shape)
