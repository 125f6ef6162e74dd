"""Inter-session variability (ISV) and joint factor analysis (JFA) on top of a GMM (McCool et al. 2013).

Compatible with ``bob.learn.em.factor_analysis`` 3.3.1 (``FactorAnalysisBase``, ``ISVMachine``,
``JFAMachine``): same parameters, training schedules, enrolment and scoring.  Session models are
supervectors of length CD (row-major (C, D)):

* ISV: ``mu_{i,h} = m + U x_{i,h} + D z_i``
* JFA: ``mu_{i,h} = m + U x_{i,h} + V y_i + D z_i``

Training works on one :class:`GMMStats` per session with a class label.  Each EM iteration is a
single pass over the sessions (a chunk function summed by :func:`emkit._backend.map_reduce`, so
lists, dask bags and lists of ``dask.delayed`` statistics give the same parameters); posteriors
are computed for stacked sessions or classes with Cholesky factorisations (see
:mod:`emkit._kernels.factor_analysis`).

Differences from the reference shared by both classes (each class lists its own):

* labels may be any hashable values (mapped to ``0..K-1`` in sorted order, ``classes_``);
* ``enroll_iterations`` is a constructor parameter, so ``get_params``/``clone`` keep it;
* U and V are drawn in ``fit`` (not in ``__init__``) from a private generator seeded by
  ``random_state`` (same numbers as the reference's ``np.random.seed`` + ``normal``), which may
  also be a ``RandomState`` or ``Generator``; only missing parameters are initialised, so a
  user-assigned U, V or D is never re-drawn;
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

from ._em import run_em
from ._factor_analysis_base import FactorAnalysisBase, _blas_for, _one_blas_thread
from ._factor_analysis_data import encode_labels, is_delayed, session_chunk
from ._factor_analysis_steps import ISVStepsMixin, JFAStepsMixin
from ._kernels import factor_analysis as kfa
from .stats import GMMStats

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
        )

    def _train(self, data):
        (C, D), m, var = self._sv()
        class_level = {}  # N_sv and F - N m per class, from the first pass (which sums them)

        def e_step():
            first = not class_level
            params = self._session_params(data.n_classes, class_sums=True, totals=first)
            acc = self._session_pass(session_chunk, data, params)
            if first:
                class_level["N_sv"] = np.repeat(acc.totals.n, D, axis=1)
                class_level["centred"] = acc.totals.F - class_level["N_sv"] * m
            return acc

        def m_step(acc):
            U, Dd = self._U, self._D
            centred_z = class_level["centred"] - kfa.per_gaussian_products(U, acc.G, C)
            z, _ = kfa.diagonal_posterior(class_level["N_sv"], centred_z, Dd, var)
            A2 = self._U_accumulator(acc, class_offsets=Dd * z)
            return self._set_param("U", kfa.update_subspace(acc.A1, A2, U))

        run_em(
            e_step,
            m_step,
            max_iterations=self.em_iterations,
            convergence_threshold=None,
            name="ISV U training",
            quantity="relative change of U",
        )

    def enroll(self, X) -> np.ndarray:
        """Class offset z of one client from its sessions ``X`` (list of GMMStats): shape (1, CD).

        z = 0, then ``enroll_iterations`` times: x_h with the current z, then z with the new x.
        """
        c, n, F = self._enroll_arrays(X)
        (C, D), m, var, Uov, Dd = c["shape"], c["m"], c["var"], c["U_over_var"], self._D
        with _blas_for(len(n)):
            precision = kfa.posterior_precision(n, c["uprod"])
            N_tot = np.repeat(n.sum(axis=0), D)
            centred_z_base = F.sum(axis=0) - N_tot * m
            b_mean = F @ Uov - n @ c["W_mean"]  # U^T Sigma^-1 (F_h - N_h m)
            z = np.zeros(C * D)
            for _ in range(self.enroll_iterations):
                b = b_mean - n @ kfa.weighted_blocks(Dd * z, Uov, C)  # ... - N_h D z
                x = kfa.spd_solve(precision, b[:, :, None])[:, :, 0]
                UG = var * kfa.block_products(Uov, n.T @ x)  # sum_h N_h U x_h
                z, _ = kfa.diagonal_posterior(N_tot, centred_z_base - UG, Dd, var)
        return z[None, :]

    def score(self, latent_z, data):
        """Linear score of the model ``m + D z`` against the probe template ``data``.

        ``data`` is a list of GMMStats forming one probe template (their statistics are summed)
        -> ``numpy.float64``; a list of such lists scores several templates at once -> (P,) array.
        The probe's channel offset ``U x`` is estimated with the probe centred on the UBM mean;
        the score is normalised by the probe's frame count (0 for an empty probe).
        """
        self._check_fitted("score")
        c = self._derived()
        z = self._check_latent(latent_z, c["m"].shape, "latent_z")
        return self._score(c, self._D * z, data)

    @_one_blas_thread
    def transform(self, X) -> np.ndarray:
        """Session offsets ``U x`` (the reference's ``estimate_ux`` per session).

        ``X``: a GMMStats or a (frames, D) array (one session) -> (CD,); a list of GMMStats or of
        frame arrays, or a 3-D array -> (n_sessions, CD).
        """
        self._check_fitted("transform")
        ubm = self._trained_ubm()
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
        )

    def _class_y(self, n_acc, centred_y):
        c = self._derived()
        return kfa.latent_posterior(n_acc, centred_y, c["V_over_var"], c["vprod"])

    def _train(self, data):
        (C, D), m, var = self._sv()
        totals = self._class_totals(data)
        N_sv = np.repeat(totals.n, D, axis=1)
        centred_y = totals.F - N_sv * m  # x = z = 0 throughout the V phase

        def v_step(_):
            y, cov = self._class_y(totals.n, centred_y)
            A1, A2 = kfa.accumulate_subspace(totals.n, centred_y, y, cov)
            return self._set_param("V", kfa.update_subspace(A1, A2, self._V))

        run_em(
            lambda: None,
            v_step,
            max_iterations=self.em_iterations,
            convergence_threshold=None,
            name="JFA V training",
            quantity="relative change of V",
        )
        latent_y, _ = self._class_y(totals.n, centred_y)

        def u_e_step():
            return self._session_pass(
                session_chunk, data, self._session_params(data.n_classes, latent_y)
            )

        def u_m_step(acc):
            return self._set_param(
                "U", kfa.update_subspace(acc.A1, self._U_accumulator(acc), self._U)
            )

        run_em(
            u_e_step,
            u_m_step,
            max_iterations=self.em_iterations,
            convergence_threshold=None,
            name="JFA U training",
            quantity="relative change of U",
        )
        params = self._session_params(data.n_classes, latent_y, accumulate=False, class_sums=True)
        G = self._session_pass(session_chunk, data, params).G

        centred_z = (
            totals.F - N_sv * (m + latent_y @ self._V.T) - kfa.per_gaussian_products(self._U, G, C)
        )

        def d_step(_):
            z, cov = kfa.diagonal_posterior(N_sv, centred_z, self._D, var)
            A1 = ((cov + z * z) * N_sv).sum(axis=0)
            A2 = (centred_z * z).sum(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                new = np.where(A1 != 0, A2 / A1, self._D)
            return self._set_param("D", new)

        run_em(
            lambda: None,
            d_step,
            max_iterations=self.em_iterations,
            convergence_threshold=None,
            name="JFA D training",
            quantity="relative change of D",
        )

    def enroll(self, X):
        """Latent ``(y (r_V,), z (CD,))`` of one client from its sessions ``X`` (list of GMMStats).

        x = y = z = 0, then ``enroll_iterations`` times: y (statistics centred on ``m + D z + U x``),
        x_h (on ``m + D z + V y``), z (on ``m + V y + U x``).
        """
        c, n, F = self._enroll_arrays(X)
        (C, D), m, var, Uov, V, Dd = c["shape"], c["m"], c["var"], c["U_over_var"], c["V"], self._D
        with _blas_for(len(n)):
            precision_x = kfa.posterior_precision(n, c["uprod"])
            n_tot = n.sum(axis=0)
            precision_y = kfa.posterior_precision(n_tot[None], c["vprod"])
            N_tot = np.repeat(n_tot, D)
            F_tot = F.sum(axis=0)
            b_mean = F @ Uov - n @ c["W_mean"]  # U^T Sigma^-1 (F_h - N_h m)
            z = np.zeros(C * D)
            UG = np.zeros(C * D)
            for _ in range(self.enroll_iterations):
                b_y = (F_tot - N_tot * (m + Dd * z) - UG) @ c["V_over_var"]
                y = kfa.spd_solve(precision_y, b_y[None, :, None])[0, :, 0]
                Vy = V @ y
                b_x = b_mean - n @ kfa.weighted_blocks(Dd * z + Vy, Uov, C)  # ... - N_h (D z + V y)
                x = kfa.spd_solve(precision_x, b_x[:, :, None])[:, :, 0]
                UG = var * kfa.block_products(Uov, n.T @ x)  # sum_h N_h U x_h
                z, _ = kfa.diagonal_posterior(N_tot, F_tot - N_tot * (m + Vy) - UG, Dd, var)
        return y, z

    def score(self, model, data):
        """Linear score of ``m + V y + D z`` (``model = (y, z)``) against the probe template ``data``.

        As :meth:`ISVMachine.score`: one template (list of GMMStats) -> ``numpy.float64``, a list of
        templates -> (P,) array.
        """
        self._check_fitted("score")
        if not isinstance(model, (tuple, list)) or len(model) != 2:
            raise TypeError(
                f"model must be the (y, z) pair returned by enroll; got {type(model).__name__}"
            )
        c = self._derived()
        y = self._check_latent(model[0], (c["V"].shape[1],), "model[0] (y)")
        z = self._check_latent(model[1], c["m"].shape, "model[1] (z)")
        return self._score(c, c["V"] @ y + self._D * z, data)
