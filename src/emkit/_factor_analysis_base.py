"""``FactorAnalysisBase``: the state, checks, training driver and scoring shared by ISV and JFA.

Public through :mod:`emkit.factor_analysis`; see there for the model.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import numbers

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from ._backend import (
    is_dask_collection,
    map_reduce,
    n_threads,
    single_threaded_blas,
    thread_map,
)
from ._factor_analysis_data import (
    SessionAccumulator,
    SessionParams,
    block_terms,
    session_chunk,
    check_stats,
    class_totals_chunk,
    prepare_training_set,
)
from ._factor_analysis_steps import ReferenceStepsMixin, stack_sessions
from ._kernels import factor_analysis as kfa
from ._validation import check_frames, check_positive_int, check_random_state
from .gmm import GMMMachine
from .stats import GMMStats

logger = logging.getLogger("emkit")

EPSILON = np.finfo(float).eps

#: Threads for a pass over in-memory sessions (None: the CPUs this process may use).  The blocks
#: of sessions go to the threads as they come (one BLAS thread each) and their terms are added in
#: block order, so the numbers do not depend on the thread count.  On the 2-core development
#: machine (ISV benchmark size, best of repeated runs), a pass took ~10 ms on two threads and
#: ~15 ms on one when idle; with another process keeping a core busy, two threads were about as
#: fast as one (ISV) or faster (JFA).  Dask inputs are spread by dask's scheduler.
SESSION_THREADS = None


def _session_threads() -> int:
    return n_threads() if SESSION_THREADS is None else SESSION_THREADS


_NO_CONTEXT = contextlib.nullcontext()


def _blas_for(rows: int):
    """One BLAS thread for products with more than a couple of rows (threads only cost there);
    below that, not even the cost of switching."""
    return single_threaded_blas() if rows > 2 else _NO_CONTEXT


def _one_blas_thread(method):
    """Decorator: enrolment and scoring multiply small matrices, where BLAS threads cost more than
    they give (ten times more on a loaded machine)."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with single_threaded_blas():
            return method(*args, **kwargs)

    return wrapper


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


def _transform_block(ubm, block):
    return ubm.transform(np.asarray(block))


# ---------------------------------------------------------------------------------------------
# base class
# ---------------------------------------------------------------------------------------------


class FactorAnalysisBase(ReferenceStepsMixin, BaseEstimator):
    """Shared state and maths of :class:`ISVMachine` and :class:`JFAMachine`.

    Parameters
    ----------
    r_U : int
        Rank of the session subspace U (>= 1).
    r_V : int or None
        Rank of the class subspace V (JFA); None for ISV.
    relevance_factor : float
        D starts at ``sqrt(variance_supervector / relevance_factor)``.
    em_iterations : int
        EM iterations (ISV), or iterations of each of the V, U and D phases (JFA).
    random_state : int, None, numpy RandomState or Generator
        Draws the initial U (then V) from N(0, 1), as ``np.random.RandomState(seed).normal`` does
        (the reference's numbers), without touching numpy's global generator.
    enroll_iterations : int
        Iterations of the latent-variable updates in ``enroll`` (>= 1).
    ubm : GMMMachine or None
        The UBM; trained by ``fit_using_array`` when it is untrained (or None, from ``ubm_kwargs``).
    ubm_kwargs : dict or None
        Arguments of the ``GMMMachine`` created when ``ubm`` is None.

    Attributes
    ----------
    U : ndarray (CD, r_U), V : ndarray (CD, r_V) (JFA), D : ndarray (CD,)
        Set by ``fit`` (missing ones are initialised there; user-assigned ones are kept).
    classes_ : ndarray (K,)
        The class labels seen by the last ``fit``, in the order of the class indices.
    """

    _has_V = False

    def __init__(
        self,
        r_U,
        r_V=None,
        relevance_factor=4.0,
        em_iterations=10,
        random_state=0,
        enroll_iterations=1,
        ubm=None,
        ubm_kwargs=None,
    ):
        self.r_U = r_U
        self.r_V = r_V
        self.relevance_factor = relevance_factor
        self.em_iterations = em_iterations
        self.random_state = random_state
        self.enroll_iterations = enroll_iterations
        self.ubm = ubm
        self.ubm_kwargs = ubm_kwargs

    # -- UBM-derived properties ----------------------------------------------------------------
    def _trained_ubm(self, action: str = "this operation") -> GMMMachine:
        if self.ubm is None:
            raise ValueError(
                f"ubm is None: {action} needs a trained GMMMachine as ubm "
                "(fit_using_array trains one from frames)"
            )
        if getattr(self.ubm, "_means", None) is None:
            raise ValueError(
                f"ubm is not trained: {action} needs its means and variances "
                "(fit_using_array trains it from frames)"
            )
        return self.ubm

    @property
    def feature_dimension(self) -> int:
        """D, the dimension of the features."""
        return self._trained_ubm().means.shape[1]

    @property
    def supervector_dimension(self) -> int:
        """C * D."""
        return self._trained_ubm().n_gaussians * self.feature_dimension

    @property
    def mean_supervector(self) -> np.ndarray:
        """The UBM means flattened, (CD,)."""
        return np.asarray(self._trained_ubm().means, dtype=np.float64).flatten()

    @property
    def variance_supervector(self) -> np.ndarray:
        """The UBM variances flattened, (CD,)."""
        return np.asarray(self._trained_ubm().variances, dtype=np.float64).flatten()

    def _shape(self, action="this operation"):
        ubm = self._trained_ubm(action)
        return tuple(ubm.means.shape)

    # -- parameters ----------------------------------------------------------------------------
    # U, V and D are stored as read-only float64 arrays (assign a new array to change them), so
    # that the constants derived from them can be cached between enrol/score calls.
    def _get(self, name):
        value = self.__dict__.get("_" + name)
        if value is None:
            raise NotFittedError(
                f"{type(self).__name__} has no {name} yet: call fit (or assign {name}) first"
            )
        return value

    def _store(self, name, value, copy=True):
        arr = np.array(value, dtype=np.float64) if copy else np.asarray(value, dtype=np.float64)
        arr.flags.writeable = False
        self.__dict__["_" + name] = arr

    @property
    def U(self) -> np.ndarray:
        """Session variability subspace, (CD, r_U) (read-only; assign a new array to change it)."""
        return self._get("U")

    @U.setter
    def U(self, value):
        self._store("U", value)

    @property
    def V(self) -> np.ndarray:
        """Class variability subspace, (CD, r_V) (JFA)."""
        return self._get("V")

    @V.setter
    def V(self, value):
        self._store("V", value)

    @property
    def D(self) -> np.ndarray:
        """Diagonal of the class offset matrix, (CD,)."""
        return self._get("D")

    @D.setter
    def D(self, value):
        self._store("D", value)

    def _param_names(self):
        return ("U", "V", "D") if self._has_V else ("U", "D")

    def __sklearn_is_fitted__(self) -> bool:
        return all(self.__dict__.get("_" + k) is not None for k in self._param_names())

    def _scoring_constants(self, action: str):
        """The derived constants of a fitted machine (raises if it is not fitted)."""
        c = self._cached_constants()
        if c is None:
            self._check_fitted(action)
            c = self._derived()
        return c

    def _check_fitted(self, action: str):
        missing = [k for k in self._param_names() if self.__dict__.get("_" + k) is None]
        if missing:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted ({', '.join(missing)} not set): call "
                f"fit (or assign {', '.join(missing)}) before {action}"
            )
        self._trained_ubm(action)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_cache", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        for k in ("U", "V", "D"):
            if self.__dict__.get("_" + k) is not None:
                self._store(k, self.__dict__["_" + k], copy=False)

    def _validate_hyperparameters(self):
        check_positive_int(self.r_U, "r_U")
        if self._has_V:
            check_positive_int(self.r_V, "r_V")
        check_positive_int(self.em_iterations, "em_iterations", minimum=0)
        check_positive_int(self.enroll_iterations, "enroll_iterations")
        rf = self.relevance_factor
        if isinstance(rf, bool) or not isinstance(rf, numbers.Real) or not rf > 0:
            raise ValueError(f"relevance_factor must be a positive number; got {rf!r}")

    def _draw_subspaces(self):
        rng = check_random_state(self.random_state)
        CD = self.supervector_dimension
        U = rng.normal(0.0, 1.0, size=(CD, self.r_U))
        V = rng.normal(0.0, 1.0, size=(CD, self.r_V)) if self._has_V else None
        return U, V

    def _initial_D(self):
        return np.sqrt(self.variance_supervector / self.relevance_factor)

    def create_UVD(self):
        """(Re)draw U and V from ``random_state``; D = ``sqrt(variance_supervector / relevance_factor)``."""
        self._validate_hyperparameters()
        U, V = self._draw_subspaces()
        self._store("U", U, copy=False)
        if self._has_V:
            self._store("V", V, copy=False)
        self._store("D", self._initial_D(), copy=False)

    def _create_missing(self):
        """Initialise only the parameters that are not set, and check the shapes of the others."""
        self._validate_hyperparameters()
        CD = self.supervector_dimension
        names = ("U", "V") if self._has_V else ("U",)
        if any(self.__dict__.get("_" + k) is None for k in names):
            U, V = self._draw_subspaces()  # always U first: V gets the reference's numbers
            for name, value in (("U", U), ("V", V)):
                if name in names and self.__dict__.get("_" + name) is None:
                    self._store(name, value, copy=False)
        if self.__dict__.get("_D") is None:
            self._store("D", self._initial_D(), copy=False)
        expected = {"U": (CD, self.r_U), "V": (CD, self.r_V), "D": (CD,)}
        for name in self._param_names():
            value = self.__dict__["_" + name]
            if value.shape != expected[name]:
                raise ValueError(
                    f"{name} must have shape {expected[name]} (supervector dimension C*D = {CD}, "
                    f"r_U = {self.r_U}, r_V = {self.r_V}); got {value.shape}"
                )
            if not np.isfinite(value).all():
                raise ValueError(f"{name} contains NaN or infinity")

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

    def _compute_uprod(self):
        """``U_c^T Sigma_c^-1 U_c`` for every Gaussian, (C, r_U, r_U)."""
        return self._derived()["uprod"]

    def _compute_vprod(self):
        """``V_c^T Sigma_c^-1 V_c`` for every Gaussian, (C, r_V, r_V)."""
        c = self._derived()
        if "vprod" not in c:
            self._get("V")
        return c["vprod"]

    def _set_param(self, name, new) -> float:
        """Store a new parameter value; return its relative change (logged by the EM driver)."""
        old = self.__dict__["_" + name]
        self._store(name, new, copy=False)
        scale = np.linalg.norm(old)
        return float(np.linalg.norm(new - old) / scale) if scale > 0 else float(np.linalg.norm(new))

    def _session_params(self, n_classes, class_offsets=None, accumulate=True, totals=False):
        """:class:`SessionParams` of a pass with the current U; ``class_offsets`` (K, CD) are the
        ``o_k`` of the statistics' centring ``m + o_k`` (JFA: ``V y_k``), None for zero."""
        c = self._derived()
        (C, D), Uov = c["shape"], c["U_over_var"]
        return SessionParams(
            shape=c["shape"],
            U_over_var=Uov,
            uprod=c["uprod"],
            W_mean=c["W_mean"],
            n_classes=n_classes,
            offset_proj=None
            if class_offsets is None
            else kfa.block_projections(class_offsets, Uov, C),
            accumulate=accumulate,
            totals=totals,
        )

    def _U_accumulator(self, acc, class_offsets=None):
        """``sum_h (F_h - N_h (m + o_k)) x_h^T`` (CD, r_U) from a SessionAccumulator, with the
        per-class offsets ``o_k`` (K, CD) (None for zero)."""
        c = self._derived()
        (C, D), r = c["shape"], acc.G.shape[2]
        g = acc.G.sum(axis=0)  # sum_h N_h x_h, (C, r)
        A2 = acc.A2F - (c["means"][:, :, None] * g[:, None, :]).reshape(C * D, r)
        if class_offsets is not None:
            A2 -= kfa.offset_outer_products(class_offsets, acc.G)
        return A2

    # -- statistics of enrolment and probe templates -------------------------------------------
    def _stack(self, X, name="X"):
        """``n`` (S, C) and ``F`` (S, CD) of a GMMStats or a list of GMMStats."""
        shape = self._shape()
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
        if isinstance(data, (list, tuple)) and len(data) == 1 and isinstance(data[0], GMMStats):
            return self._score_session(c, data[0], a, model_n_terms)
        n, F, t, single = self._templates(data, check_finite=False, shape=c["shape"])
        with _blas_for(len(n)):
            x = self._probe_x(c, n, F)
            n_terms = n @ model_n_terms  # [N.a_m | N W_a]
            scores = F @ a - n_terms[:, 0] - (n_terms[:, 1:] * x).sum(axis=1)
        if not (np.isfinite(scores).all() and np.isfinite(t).all()):
            _raise_non_finite(n, F, t)
        if single:
            t0 = t[0]
            return np.float64(0.0 if abs(t0) <= EPSILON else scores[0] / t0)
        empty = np.abs(t) <= EPSILON
        return np.where(empty, 0.0, scores / np.where(empty, 1.0, t))

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

    # -- training ----------------------------------------------------------------------------
    @_one_blas_thread  # the passes over sessions run in parallel threads; the rest is small
    def fit(self, X, y=None):
        """Train the subspaces from per-session statistics.

        Parameters
        ----------
        X : list of GMMStats, list of dask.delayed GMMStats, dask bag of GMMStats, or dask bag of
            ``(label, GMMStats)`` pairs (then ``y=None``).  The reference's per-class form (a list
            of per-class lists, or of delayed lists, with ``y`` a list of per-class label arrays)
            is accepted too.
        y : sequence of hashable labels, one per session (any type; mapped to ``0..K-1`` in sorted
            order).

        Calling ``fit`` again continues from the current parameters.
        """
        self._validate_hyperparameters()
        shape = self._shape("fit")
        data = prepare_training_set(X, y, shape, _session_threads())
        self._create_missing()
        self.classes_ = data.classes
        self._train(data)
        return self

    def _class_totals(self, data):
        """Per-class sums of the statistics (summed while stacking, or one pass over the sessions)."""
        if data.totals is not None:
            return data.totals
        return map_reduce(class_totals_chunk, data.rows, self._shape(), data.n_classes)

    @staticmethod
    def _session_pass(data, params):
        """The E-step over all sessions: a :class:`SessionAccumulator`.

        In memory, the blocks are spread over threads (:data:`SESSION_THREADS`) as they come, and
        their terms added in block order: the result does not depend on the number of threads,
        and a thread slowed down by other processes simply takes fewer blocks.
        """
        rows = data.rows
        if not isinstance(rows, list):
            return map_reduce(session_chunk, rows, params)
        terms = thread_map(lambda block: block_terms(block, params), rows, _session_threads())
        acc = SessionAccumulator.zeros(params)
        for block, block_sums in zip(rows, terms):
            acc.add_block(block, block_sums)
        return acc

    def initialize_using_array(self, X):
        """Train the UBM on the frames ``X`` (N, D) if it is None (from ``ubm_kwargs``) or untrained."""
        if self.ubm is None:
            if not isinstance(self.ubm_kwargs, dict):
                raise ValueError(
                    "ubm_kwargs must be a dict of GMMMachine arguments (e.g. "
                    f"{{'n_gaussians': 8}}) when ubm is None; got {self.ubm_kwargs!r}"
                )
            logger.info("Creating a new GMMMachine and training it.")
            self.ubm = GMMMachine(**self.ubm_kwargs)
            self.ubm.fit(X)
        elif getattr(self.ubm, "_means", None) is None:
            logger.info("UBM means are None, training the UBM.")
            self.ubm.fit(X)

    def _sessions(self, X, name="X"):
        """``(sessions, frames)``: one item per session, and all frames as one (N, D) array.

        A 2-D array is one frame per session (the reference's convention), a 3-D array or a list of
        2-D arrays one session per element; dask arrays (2-D or 3-D) are kept lazy.
        """
        if is_dask_collection(X):
            if X.ndim not in (2, 3):
                raise ValueError(f"{name} must be a 2-D or 3-D dask array; got {X.ndim}-D")
            X = X.rechunk({i: -1 for i in range(1, X.ndim)})
            return X, (X if X.ndim == 2 else X.reshape(-1, X.shape[-1]))
        if isinstance(X, (list, tuple)):
            if not X:
                raise ValueError(f"{name} is empty: expected at least one session")
            sessions = [check_frames(x, f"{name}[{i}]", allow_empty=True) for i, x in enumerate(X)]
            return sessions, np.concatenate(sessions, axis=0)
        X = np.asarray(X)
        if X.ndim == 3:
            return X, check_frames(X.reshape(-1, X.shape[-1]), name)
        if X.ndim == 2:
            return X, check_frames(X, name)
        raise ValueError(
            f"{name} must be frames: a 2-D or 3-D array or a list of 2-D arrays; got shape {X.shape}"
        )

    def fit_using_array(self, X, y):
        """Train the UBM if needed, compute one GMMStats per session of ``X`` and ``fit``.

        ``X``: 2-D array (each row a session of one frame, as in the reference), 3-D array
        (sessions, frames, D), list of (frames, D) arrays, or a dask array.  ``y``: one label per
        session (a dask array is computed).
        """
        if is_dask_collection(y):
            y = y.compute()
        if isinstance(y, np.ndarray):
            y = y.ravel() if y.ndim > 1 else y
        sessions, frames = self._sessions(X)
        n_sessions = sessions.shape[0] if hasattr(sessions, "shape") else len(sessions)
        if n_sessions != len(y):
            raise ValueError(
                f"X and y have inconsistent numbers of sessions: {n_sessions} in X, {len(y)} in y"
            )
        self.initialize_using_array(frames)
        if is_dask_collection(sessions):
            import dask
            import dask.bag as db

            blocks = sessions.to_delayed().ravel()
            stats = db.from_delayed(
                [dask.delayed(_transform_block, pure=True)(self.ubm, b) for b in blocks]
            )
        else:
            stats = self.ubm.transform(sessions)
        return self.fit(stats, y)

    def enroll_using_array(self, X):
        """``enroll`` of the statistics of the frames ``X`` (N, D); a list of arrays is several sessions."""
        ubm = self._trained_ubm("enroll_using_array")
        if isinstance(X, (list, tuple)) or np.ndim(X) == 3:
            return self.enroll([ubm.acc_stats(x) for x in X])
        return self.enroll([ubm.acc_stats(X)])

    def score_using_array(self, model, data):
        """``score`` of a probe given as frames: a 2-D array (N, D) or a list of frame arrays."""
        ubm = self._trained_ubm("score_using_array")
        if isinstance(data, np.ndarray) and data.ndim == 2:
            return self.score(model, [ubm.acc_stats(data)])
        return self.score(model, [ubm.acc_stats(d) for d in data])

    # -- persistence -------------------------------------------------------------------------
    def save(self, hdf5):
        """Write parameters, U/V/D and the UBM to an HDF5 path (atomically) or an open h5py group."""
        from .io.factor_analysis import write_factor_analysis

        write_factor_analysis(self, hdf5)

    @classmethod
    def from_hdf5(cls, hdf5):
        """Read a machine written by :meth:`save`."""
        from .io.factor_analysis import read_factor_analysis

        return read_factor_analysis(hdf5, cls)

    def load(self, hdf5):
        """Replace the state of ``self`` by the machine stored in ``hdf5``."""
        loaded = self.from_hdf5(hdf5)
        self.__dict__.clear()
        self.__dict__.update(loaded.__dict__)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.target_tags.required = True
        return tags

    # -- enrolment helpers ----------------------------------------------------------------------
    def _enroll_arrays(self, X):
        """Cached constants and the client's ``n`` (S, C) and ``F`` (S, CD)."""
        c = self._scoring_constants("enroll")
        n, F = self._stack(X)
        return c, n, F
