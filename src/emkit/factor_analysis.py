"""Inter-session variability (ISV) and joint factor analysis (JFA) on top of a GMM (McCool et al. 2013).

Compatible with ``bob.learn.em.factor_analysis`` 3.3.1 (``FactorAnalysisBase``, ``ISVMachine``,
``JFAMachine``): same parameters, training schedules, enrolment and scoring.  Session models are
supervectors of length CD (row-major (C, D)):

* ISV: ``mu_{i,h} = m + U x_{i,h} + D z_i``
* JFA: ``mu_{i,h} = m + U x_{i,h} + V y_i + D z_i``

Training works on one :class:`GMMStats` per session with a class label.  Each EM iteration is a
single pass over the sessions: in memory, over blocks stacked once per ``fit`` and spread over
threads; for dask inputs, a chunk function summed by :func:`emkit._backend.map_reduce` (lists,
dask bags and lists of ``dask.delayed`` statistics give the same parameters, up to rounding).
Posteriors are computed for stacked sessions or classes with Cholesky factorisations (see
:mod:`emkit._kernels.factor_analysis`).  Scoring keeps the constants of the last model scored, so
the reference's usage (one ``score`` call per probe) costs little more than the batched one.

Differences from the reference shared by both classes (each class lists its own):

* labels may be any hashable values (mapped to ``0..K-1`` in sorted order, ``classes_``);
* ``enroll_iterations`` is a constructor parameter, so ``get_params``/``clone`` keep it;
* U, V and D get the reference's initial values on first use (reading them, enrolling, scoring,
  ``fit``) rather than in ``__init__``: U then V from a private generator seeded by
  ``random_state`` (same numbers as the reference's ``np.random.seed`` + ``normal``; None draws
  from numpy's global generator, as the reference), which may also be a ``RandomState`` or
  ``Generator``; only missing parameters are initialised, so a user-assigned U, V or D is never
  re-drawn, and initial values are drawn again if the hyper-parameters or the UBM change;
* U, V and D are read-only arrays (assign a new array to change them);
* ``score`` also takes a list of probe templates and returns one score per template;
* a Gaussian that no statistic reaches keeps its previous subspace block (the reference hit a
  singular matrix); NaN or infinite statistics raise ``ValueError``;
* the public step methods (``update_z``, ``update_y``, ...) return new arrays instead of
  modifying their inputs;
* ``save``/``from_hdf5``/``load`` (emkit's versioned HDF5 layout; the reference had none).
"""

from __future__ import annotations

import functools
import logging
import operator

import numpy as np

from ._backend import is_delayed
from ._factor_analysis_base import FactorAnalysisBase, _one_blas_thread
from ._factor_analysis_data import encode_labels
from ._factor_analysis_scoring import _blas_for
from ._factor_analysis_steps import ISVStepsMixin, JFAStepsMixin
from ._kernels import factor_analysis as kfa
from .stats import GMMStats, as_stats_sequence

logger = logging.getLogger("emkit")

__all__ = [
    "FactorAnalysisBase",
    "ISVMachine",
    "JFAMachine",
    "mult_along_axis",
    "reduce_iadd",
    "is_input_dask_nested",
    "check_dask_input_samples_per_class",
]


# ---------------------------------------------------------------------------------------------
# module-level helpers of the reference's ``factor_analysis`` module
# ---------------------------------------------------------------------------------------------


def is_input_dask_nested(X) -> bool:
    """True when the first leaf of the (nested) list ``X`` is a ``dask.delayed`` object."""
    while isinstance(X, (list, tuple)) and len(X):
        X = X[0]
    return is_delayed(X)


def check_dask_input_samples_per_class(X, y):
    """``(input_is_dask, n_classes, n_samples_per_class)``; per-class label lists are flattened."""
    X = as_stats_sequence(X)
    input_is_dask = is_input_dask_nested(X)
    if input_is_dask and len(y) and np.ndim(y[0]) == 1:
        y = [label for labels in y for label in list(labels)]
    codes, classes = encode_labels(y)
    return input_is_dask, len(classes), np.bincount(codes, minlength=len(classes)).tolist()


def reduce_iadd(*args):
    """Sum each list of accumulators (with ``+``: nothing is mutated); one value for one list."""
    sums = [functools.reduce(operator.add, a) for a in args]
    return sums[0] if len(sums) == 1 else sums


def mult_along_axis(A, B, axis: int):
    """``A`` multiplied by the 1-D ``B`` broadcast along ``axis``."""
    A = np.asarray(A)
    if axis >= A.ndim:
        raise np.exceptions.AxisError(axis, A.ndim)
    if A.shape[axis] != np.size(B):
        raise ValueError("Length of 'A' along the given axis must be the same as B.size")
    shape = [1] * A.ndim
    shape[axis] = -1
    return A * np.reshape(B, shape)


# ---------------------------------------------------------------------------------------------
# ISV
# ---------------------------------------------------------------------------------------------


class ISVMachine(ISVStepsMixin, FactorAnalysisBase):
    """Inter-session variability modelling: ``mu_{i,h} = m + U x_{i,h} + D z_i``.

    Training (as the reference, McCool et al. 2013 / bob 2.x): every iteration computes the
    session factors x at z = 0, then the class offsets z, then accumulates the U update with the
    new z; D stays ``sqrt(variance_supervector / relevance_factor)``.

    Differences from bob.learn.em 3.3.1 besides those of the module docstring: ``transform``
    works (the reference's raised for every input); ``enroll`` returns (1, CD) as the reference.
    """

    def __init__(
        self,
        r_U,
        em_iterations=10,
        relevance_factor=4.0,
        random_state=0,
        ubm=None,
        ubm_kwargs=None,
        enroll_iterations=1,
        checkpoint=None,
    ):
        super().__init__(
            r_U=r_U,
            r_V=None,
            relevance_factor=relevance_factor,
            em_iterations=em_iterations,
            random_state=random_state,
            enroll_iterations=enroll_iterations,
            ubm=ubm,
            ubm_kwargs=ubm_kwargs,
            checkpoint=checkpoint,
        )

    def _train(self, data, X):
        (C, D), m, var = self._sv()
        class_level = {}  # from the first pass (which sums the class totals along)

        def e_step():
            first = not class_level
            # the class totals: from the stacking (in memory), else summed along the first pass
            params = self._session_params(data.n_classes, totals=first and data.totals is None)
            acc = self._session_pass(data, params)
            if first:  # class-level arrays in the (C, D, K) layout of kfa.gaussian_major
                totals = data.totals if data.totals is not None else acc.totals
                N = totals.n.T[:, None, :]  # (C, 1, K)
                F = kfa.gaussian_major(totals.F, C)
                class_level["centred"] = F - N * m.reshape(C, D, 1)  # F_k - N_k m
                # D and N are fixed: D z_k = gain * (centred_k - sum_{h in k} N_h U x_h)
                class_level["gain"] = kfa.diagonal_gain(
                    N, self._D.reshape(C, D, 1), var.reshape(C, D, 1)
                )
            return acc

        def m_step(acc):
            U = self._U
            offsets = kfa.per_gaussian_products(
                U, acc.G, C, gaussian_major=True, out=class_level.get("offsets")
            )
            class_level["offsets"] = offsets  # a buffer, reused by the next iterations
            np.subtract(class_level["centred"], offsets, out=offsets)  # centred_k - sum N_h U x_h
            offsets *= class_level["gain"]  # D z_k
            A2 = self._U_accumulator(acc, class_offsets=offsets)
            return self._set_param("U", kfa.update_subspace(acc.A1, A2, U))

        self._em(X, e_step, m_step, state=("U",), name="ISV U training",
                 quantity="relative change of U")

    def enroll(self, X) -> np.ndarray:
        """Class offset z of one client from its sessions ``X`` (list of GMMStats): shape (1, CD).

        z = 0, then ``enroll_iterations`` times: x_h with the current z, then z with the new x.
        """
        c, n, F = self._enroll_arrays(X)
        (C, D), m, var, Uov, Dd = c["shape"], c["m"], c["var"], c["U_over_var"], self._D
        with _blas_for(len(n)):
            precision, b_mean = kfa.centred_projections(n, F, Uov, c["n_products"])
            N_tot = np.repeat(n.sum(axis=0), D)
            centred_z_base = F.sum(axis=0) - N_tot * m
            z = None  # zero
            for _ in range(self.enroll_iterations):
                b = b_mean
                if z is not None:
                    b = b_mean - n @ kfa.weighted_blocks(Dd * z, Uov, C)  # ... - N_h D z
                x = kfa.spd_solve(precision, b[:, :, None])[:, :, 0]
                UG = kfa.block_products(c["U"], n.T @ x)  # sum_h N_h U x_h
                z, _ = kfa.diagonal_posterior(N_tot, centred_z_base - UG, Dd, var)
        return z[None, :]

    def score(self, latent_z, data):
        """Linear score of the model ``m + D z`` against the probe template ``data``.

        ``data`` is a list of GMMStats forming one probe template (their statistics are summed)
        -> ``numpy.float64``; a list of such lists scores several templates at once -> (P,) array.
        The probe's channel offset ``U x`` is estimated with the probe centred on the UBM mean;
        the score is normalised by the probe's frame count (0 for an empty probe).
        """
        c = self._scoring_constants("score")
        z = self._check_latent(latent_z, c["m"].shape, "latent_z")
        return self._score(c, (z,), lambda: self._D * z, data)

    @_one_blas_thread
    def transform(self, X) -> np.ndarray:
        """Session offsets ``U x`` (the reference's ``estimate_ux`` per session).

        ``X``: a GMMStats or a (frames, D) array (one session) -> (CD,); a list of GMMStats or of
        frame arrays, or a 3-D array -> (n_sessions, CD).
        """
        self._check_fitted("transform")
        ubm = self._trained_ubm()
        X = as_stats_sequence(X)
        single = isinstance(X, GMMStats) or (isinstance(X, np.ndarray) and X.ndim <= 2)
        items = [X] if single else list(X)
        stats = [s if isinstance(s, GMMStats) else ubm.acc_stats(s) for s in items]
        n, F = self._stack(stats)
        c = self._derived()
        out = self._probe_x(c, n, F) @ c["U"].T
        return out[0] if single else out


# ---------------------------------------------------------------------------------------------
# JFA
# ---------------------------------------------------------------------------------------------


class JFAMachine(JFAStepsMixin, FactorAnalysisBase):
    """Joint factor analysis: ``mu_{i,h} = m + U x_{i,h} + V y_i + D z_i``.

    Training (as the reference, bob 2.x's ``train_jfa``): ``em_iterations`` of V (x = z = 0),
    then of U (with the final y), then of D (with the final y and x).

    Differences from bob.learn.em 3.3.1 besides those of the module docstring: the y posterior in
    ``enroll`` centres the statistics on ``m + D z`` (the reference used ``m - D z``; it matters
    only with ``enroll_iterations > 1``); a D entry whose accumulator is zero keeps its value
    (the reference divided 0 by 0).
    """

    _has_V = True

    def __init__(
        self,
        r_U,
        r_V,
        em_iterations=10,
        relevance_factor=4.0,
        random_state=0,
        ubm=None,
        ubm_kwargs=None,
        enroll_iterations=1,
        checkpoint=None,
    ):
        super().__init__(
            r_U=r_U,
            r_V=r_V,
            relevance_factor=relevance_factor,
            em_iterations=em_iterations,
            random_state=random_state,
            enroll_iterations=enroll_iterations,
            ubm=ubm,
            ubm_kwargs=ubm_kwargs,
            checkpoint=checkpoint,
        )

    def _class_y(self, n_acc, centred_y):
        c = self._derived()
        return kfa.latent_posterior(n_acc, centred_y, c["V_over_var"], c["vprod"])

    def _train(self, data, X):
        (C, D), m, var = self._sv()
        totals = self._class_totals(data)
        N_sv = np.repeat(totals.n, D, axis=1)
        centred_y = totals.F - N_sv * m  # x = z = 0 throughout the V phase

        def v_step(_):
            y, cov = self._class_y(totals.n, centred_y)
            A1, A2 = kfa.accumulate_subspace(totals.n, centred_y, y, cov)
            return self._set_param("V", kfa.update_subspace(A1, A2, self._V))

        self._em(X, lambda: None, v_step, state=("U", "V", "D"), phase=0, name="JFA V training",
                 quantity="relative change of V")
        latent_y, _ = self._class_y(totals.n, centred_y)
        Vy = latent_y @ self._V.T  # the class offsets of the U phase, (K, CD)

        def u_e_step():
            params = self._session_params(data.n_classes, class_offsets=Vy)
            return self._session_pass(data, params)

        def u_m_step(acc):
            return self._set_param(
                "U", kfa.update_subspace(acc.A1, self._U_accumulator(acc, Vy), self._U)
            )

        self._em(X, u_e_step, u_m_step, state=("U", "V", "D"), phase=1, name="JFA U training",
                 quantity="relative change of U")
        params = self._session_params(data.n_classes, class_offsets=Vy, accumulate=False)
        G = self._session_pass(data, params).G

        centred_z = totals.F - N_sv * (m + Vy) - kfa.per_gaussian_products(self._U, G, C)

        def d_step(_):
            z, cov = kfa.diagonal_posterior(N_sv, centred_z, self._D, var)
            A2 = np.einsum("kd,kd->d", centred_z, z)
            cov += z * z  # in place: (K, CD) arrays
            cov *= N_sv
            A1 = cov.sum(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                new = np.where(A1 != 0, A2 / A1, self._D)
            return self._set_param("D", new)

        self._em(X, lambda: None, d_step, state=("U", "V", "D"), phase=2, name="JFA D training",
                 quantity="relative change of D")

    def enroll(self, X):
        """Latent ``(y (r_V,), z (CD,))`` of one client from its sessions ``X`` (list of GMMStats).

        x = y = z = 0, then ``enroll_iterations`` times: y (statistics centred on ``m + D z + U x``),
        x_h (on ``m + D z + V y``), z (on ``m + V y + U x``).
        """
        c, n, F = self._enroll_arrays(X)
        (C, D), m, var, V, Dd = c["shape"], c["m"], c["var"], c["V"], self._D
        Uov, Vov = c["U_over_var"], c["V_over_var"]
        with _blas_for(len(n)):
            # per session U^T Sigma^-1 (F_h - N_h m), in total V^T Sigma^-1 (F - N m), precisions
            precision_x, b_x_mean = kfa.centred_projections(n, F, Uov, c["n_products"])
            n_tot, F_tot = n.sum(axis=0), F.sum(axis=0)
            precision_y, b_y_mean = kfa.centred_projections(n_tot, F_tot, Vov, c["v_products"])
            N_tot = np.repeat(n_tot, D)
            centred_tot = F_tot - N_tot * m  # F - N m, summed over the sessions
            Dz = UG = None  # D z and sum_h N_h U x_h: zero before the first iteration
            for _ in range(self.enroll_iterations):
                b_y = b_y_mean  # V^T Sigma^-1 (F - N (m + D z) - sum_h N_h U x_h)
                if Dz is not None:
                    b_y = b_y_mean - (N_tot * Dz + UG) @ Vov
                y = kfa.spd_solve(precision_y, b_y)
                # U^T Sigma^-1 N_h (D z + V y), with V_c^T Sigma_c^-1 U_c y from the cached VtU
                offsets = (y @ c["VtU"]).reshape(C, -1)
                if Dz is not None:
                    offsets += kfa.weighted_blocks(Dz, Uov, C)
                x = kfa.spd_solve(precision_x, (b_x_mean - n @ offsets)[:, :, None])[:, :, 0]
                UG = kfa.block_products(c["U"], n.T @ x)
                z, _ = kfa.diagonal_posterior(N_tot, centred_tot - N_tot * (V @ y) - UG, Dd, var)
                Dz = Dd * z
        return y, z

    def score(self, model, data):
        """Linear score of ``m + V y + D z`` (``model = (y, z)``) against the probe template ``data``.

        As :meth:`ISVMachine.score`: one template (list of GMMStats) -> ``numpy.float64``, a list of
        templates -> (P,) array.
        """
        c = self._scoring_constants("score")
        if not isinstance(model, (tuple, list)) or len(model) != 2:
            raise TypeError(
                f"model must be the (y, z) pair returned by enroll; got {type(model).__name__}"
            )
        y = self._check_latent(model[0], (c["V"].shape[1],), "model[0] (y)")
        z = self._check_latent(model[1], c["m"].shape, "model[1] (z)")
        return self._score(c, (y, z), lambda: c["V"] @ y + self._D * z, data)
