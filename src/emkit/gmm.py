"""``GMMMachine``: diagonal Gaussian mixtures trained by maximum likelihood or MAP adaptation.

Compatible with ``bob.learn.em.GMMMachine`` and its ``gmm`` module (``e_step``, ``m_step``,
``ml_gmm_m_step``, ``map_gmm_m_step``, ``log_likelihood``, ``log_weighted_likelihood``).  The
E-step is two matrix products per bounded row block, with a log-sum-exp in between (see
:mod:`emkit._kernels.gmm`).
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np
from sklearn.base import BaseEstimator

from . import _device_infer, _gmm_estep as estep, _gmm_reference
from ._gmm_files import GMMFiles
from ._feature_names import FeatureNamesMixin
from ._fitted import FitSummary, PicklesFitted, derived, fitted_value, set_fitted
from ._gmm_fit import (adaptation_stats, check_adaptable, check_training_feature_names, kmeans_start, run_em,
                       training_frames)
from ._gmm_mstep import EPSILON, apply_m_step, map_gmm_m_step, ml_gmm_m_step, warn_if_collapsed
from ._gmm_params import (GMMParameter, check_gmm_parameters, check_parameter_value, check_training_state,
                          check_weights, clone_keeping_ubm, compute_dtype, constructor_params, floored_value,
                          e_step_constants, log_of_weights, reference_transformer_tags, starting_value)
from ._kernels import gmm as kg
from ._validation import check_comparable
from .io import _registry
from .kmeans import KMeansMachine
from ._gmm_reference import *  # noqa: F403 (the reference's module functions; in __all__ below)
from .stats import GMMStats

logger = logging.getLogger("emkit")

__all__ = ["GMMMachine", "GMMStats", "KMeansMachine", "ml_gmm_m_step", "map_gmm_m_step",
           *_gmm_reference.__all__]


class GMMMachine(GMMFiles, FeatureNamesMixin, FitSummary, PicklesFitted, BaseEstimator):
    """A mixture of ``n_gaussians`` diagonal Gaussians, trained by ML (EM) or MAP adaptation.

    Parameters
    ----------
    n_gaussians : int
        Number of Gaussians C.
    trainer : {"ml", "map"}
        Maximum likelihood, or MAP adaptation from ``ubm`` (any other value is a ``ValueError``).
    ubm : GMMMachine or None
        The prior for MAP (required then).  When given, the machine starts from the UBM's
        parameters (also for "ml").
    convergence_threshold : float or None
        Stop when the relative change of the average log-likelihood is at most this.
    max_fitting_steps : int or None
        Maximum number of EM iterations.
    random_state : int, None, RandomState or Generator
        Seeds the default k-means initialisation.
        A RandomState or Generator given is advanced by ``fit`` (docs/reproducibility.md).
    weights : array (C,) or None
        Initial weights (default: uniform, or the UBM's).  As in the reference, the k-means start
        of an ML ``fit`` (no ``ubm``, no means set) replaces them by the cluster proportions.
    k_means_trainer : KMeansMachine or None
        Used (and fitted in place) instead of ``KMeansMachine(C, random_state=random_state)``
        (``max_iter=20``); if k-means warns that it did not converge, pass one with a larger
        ``max_iter``.
    update_means, update_variances, update_weights : bool
        Which parameters the M-step updates (default: means only, for ML and MAP alike).
    mean_var_update_threshold : float
        Floor on the per-Gaussian occupancy in the M-step, and the initial variance floor.
    map_alpha : float or array (C,)
        Fixed MAP adaptation coefficient(s) in [0, 1], used when ``map_relevance_factor`` is None.
    map_relevance_factor : float >= 0 or None
        Reynolds relevance factor r: ``alpha_c = n_c / (n_c + r)``.
    compute_dtype : {"float64", "float32"}
        Precision of the E-step products.  Default "float64" gives the reference's numbers.
        "float32" is about twice as fast (products in float32, sums and parameters in float64);
        means and weights agree with float64 to about 1e-6, variances to ``2e-8 * kappa`` (``kappa
        = max (mu - s)**2 / var``, ``s`` about the mean of the means; 7 times that for quantised
        frames) plus the float32 posteriors' noise, averaged per Gaussian (docs/differences.md).
    checkpoint : path or None
        Resumable training: the state is written atomically to this HDF5 file after every
        completed iteration; a ``fit`` started again with the same arguments and data (e.g. after
        the process was killed) resumes after the last completed iteration and ends with the same
        parameters as an uninterrupted run.  A checkpoint of another run is refused.

    Raises
    ------
    ValueError, TypeError
        An invalid parameter, named, at construction (as the reference does for some of them) and
        again in ``fit`` (after ``set_params``).

    Attributes
    ----------
    means, variances : ndarray (C, D)
    weights, log_weights, g_norms : ndarray (C,)
    variance_thresholds : float, ndarray (D,) or (C, D)
        Variances are floored at these values whenever they are assigned.
    n_iter_ : int, converged_ : bool
        EM iterations run by the last ``fit``, and whether ``convergence_threshold`` stopped it.
    n_features_in_ : int
        Number of features D seen by ``fit`` (of the means, for a machine read from a file).
    feature_names_in_ : ndarray of str
        The column names of a DataFrame given to ``fit`` (then checked on the frames given to the
        likelihoods, ``acc_stats`` and ``transform``, as scikit-learn does); files keep them.
    """

    _FIT_SUMMARY = ("n_iter_", "converged_", "feature_names_in_")

    def __init__(self, n_gaussians: int, trainer: str = "ml", ubm: "GMMMachine | None" = None,
                 convergence_threshold=1e-5, max_fitting_steps=200, random_state=0, weights=None,
                 k_means_trainer=None, update_means=True, update_variances=False, update_weights=False,
                 mean_var_update_threshold=EPSILON, map_alpha=0.5, map_relevance_factor=4,
                 compute_dtype="float64", checkpoint=None):
        self.n_gaussians = n_gaussians
        self.trainer = trainer
        self.ubm = ubm
        self.convergence_threshold = convergence_threshold
        self.max_fitting_steps = max_fitting_steps
        self.random_state = random_state
        self.k_means_trainer = k_means_trainer
        self.update_means = update_means
        self.update_variances = update_variances
        self.update_weights = update_weights
        self.mean_var_update_threshold = mean_var_update_threshold
        self.map_alpha = map_alpha
        self.map_relevance_factor = map_relevance_factor
        self.compute_dtype = compute_dtype
        self.checkpoint = checkpoint
        self._weights_param = weights  # ``weights`` is the live parameter (see get_params)
        self._check_hyperparameters()

    def _check_hyperparameters(self):
        """Raise on an invalid constructor argument (no work done, nothing stored)."""
        check_gmm_parameters(self, GMMMachine, KMeansMachine)

    def _check_parameters(self):
        """Everything ``fit`` needs: the constructor arguments (again) and the current weights."""
        self._check_hyperparameters()
        if self.ubm is not None and not self.ubm._has_parameters():
            raise ValueError("ubm has no parameters: fit it (or set its means) first")
        check_weights(fitted_value(self, "weights"), self.n_gaussians, "weights")

    def _has_parameters(self) -> bool:
        """True when the machine has means: its own, or its UBM's to start from."""
        return fitted_value(self, "means") is not None or self._ubm_has_parameters()

    def _ubm_has_parameters(self) -> bool:
        ubm = self.ubm
        return isinstance(ubm, GMMMachine) and ubm is not self and ubm._has_parameters()

    def _update_parameters(self, new: dict) -> None:
        """Assign the M-step's new ``weights``/``means``/``variances`` (those present), in that order."""
        for name in ("weights", "means", "variances"):
            if name in new:
                setattr(self, name, new[name])

    def _copy_from_ubm(self):
        for name in ("means", "variances", "variance_thresholds", "weights"):  # (in this order)
            setattr(self, name, getattr(self.ubm, name))

    # -- scikit-learn parameters: ``weights`` is the constructor argument, not the live value --
    def get_params(self, deep=True):
        return constructor_params(self, deep)

    def set_params(self, **params):
        if "weights" in params:
            weights = params.pop("weights")
            self._weights_param = weights
            if weights is not None:  # the live weights start from it again, when first read
                set_fitted(self, "weights", None)
        return super().set_params(**params)

    # -- parameters ------------------------------------------------------------------------
    _FEATURE_AXES = {"means": 1, "variances": 1}
    means = GMMParameter("Means of the Gaussians, shape (C, D).")
    variances = GMMParameter("Diagonal variances of the Gaussians, shape (C, D), floored at "
                           "``variance_thresholds`` whenever either is assigned.")
    variance_thresholds = GMMParameter("Variance floor: a scalar, one value per feature (D,) or per "
                                     "Gaussian and feature (C, D).")
    weights = GMMParameter("Weight of each Gaussian, shape (C,): finite and >= 0 (checked when "
                         "assigned; the reference stored anything), not necessarily summing to one.")

    def _assign(self, name: str, value) -> None:
        """Store parameter ``name`` (the descriptors' setter): variances are floored at the
        thresholds, and floored again when the thresholds change."""
        value = None if value is None else check_parameter_value(name, estep.computed(value))
        variances = fitted_value(self, "variances")
        set_fitted(self, name, floored_value(self, name, value, variances))
        if name == "variance_thresholds" and variances is not None:
            set_fitted(self, "variances", np.maximum(self.variance_thresholds, variances), copy=False)

    def _missing_parameter(self, name: str):
        """The value an unset parameter starts from, stored on first use (the reference stored it
        at construction): the UBM's (its variances floored at ``mean_var_update_threshold``, as
        there), else the ``weights`` argument or uniform weights, and ``mean_var_update_threshold``
        as the variance floor.  Unset means/variances raise."""
        value = starting_value(self, name, from_ubm=self._ubm_has_parameters())
        if value is None:
            return None
        with contextlib.suppress(TypeError, ValueError):  # an invalid ``weights``: fit refuses it
            self._assign(name, value)
        return fitted_value(self, name)

    @property
    def log_weights(self):
        """``log(weights)``, shape (C,); a zero weight gives -inf (that Gaussian gets no responsibility)."""
        weights = self.weights
        return None if weights is None else derived(self, "log_weights", lambda: log_of_weights(weights))

    @property
    def g_norms(self):
        """``D log(2 pi) + sum_d log var_cd`` per Gaussian, shape (C,)."""
        return derived(self, "g_norms", lambda: kg.g_norms(self.variances))

    @property
    def shape(self):
        """(C, D)."""
        return self.means.shape

    def __sklearn_is_fitted__(self) -> bool:
        return self._has_parameters()

    # -- comparison ------------------------------------------------------------------------
    def __eq__(self, other):
        if not isinstance(other, GMMMachine):
            return NotImplemented
        if not self._has_parameters():
            return False
        return self.is_similar_to(other)

    __hash__ = object.__hash__

    def is_similar_to(self, other, rtol=1e-5, atol=1e-8) -> bool:
        """Whether means, variances, variance thresholds and weights agree (``np.allclose``).

        Parameters
        ----------
        other : GMMMachine
        rtol, atol : float
            Relative and absolute tolerances of ``np.allclose``.

        Returns
        -------
        bool
            False too when a parameter is unset or the shapes differ.
        """
        check_comparable(other, GMMMachine, "other", rtol=rtol, atol=atol)
        try:
            return all(np.allclose(getattr(self, name), getattr(other, name), rtol=rtol, atol=atol)
                       for name in ("means", "variances", "variance_thresholds", "weights"))
        except ValueError:  # unset parameters or different shapes
            return False

    # -- likelihoods and statistics ----------------------------------------------------------
    def _coefficients(self) -> kg.DiagGMMCoefficients:
        """The E-step constants, computed once per parameter change and compute dtype."""
        dtype = compute_dtype(self.compute_dtype)
        return derived(self, ("coefficients", dtype), lambda: e_step_constants(self, dtype))

    def log_weighted_likelihood(self, data):
        """``log w_c + log N(x_t | mu_c, var_c)`` of every Gaussian and frame.

        Parameters
        ----------
        data : array-like of shape (N, D), or dask array of shape (N, D)
            The frames; NaN or inf is a ``ValueError``.

        Returns
        -------
        ndarray of shape (C, N)
            Gaussians first, as the reference; a lazy dask array for dask ``data``.
        """
        coef = self._coefficients()
        self._check_feature_names(data, "data")
        return estep.weighted_log_likelihoods(estep.check_frames_of(data, coef), coef)

    def log_likelihood(self, data):
        """Log-likelihood ``log sum_c w_c N(x_t | mu_c, var_c)`` of every frame.

        Parameters
        ----------
        data : array-like of shape (N, D), or dask array of shape (N, D)
            The frames; NaN or inf is a ``ValueError``.

        Returns
        -------
        ndarray of shape (N,), or a lazy dask array for dask ``data``
        """
        coef = self._coefficients()
        self._check_feature_names(data, "data")
        return estep.log_likelihoods(estep.check_frames_of(data, coef), coef)

    def acc_stats(self, X, top_k=None, min_posterior=None) -> GMMStats:
        """The statistics of all the frames of ``X`` in one :class:`GMMStats`.

        Parameters
        ----------
        X : array-like of shape (N, D), or dask array of shape (N, D)
            The frames (a dask array is computed here, chunk by chunk).
        top_k : int, optional
            Gaussian selection: only the ``top_k`` best Gaussians of a frame get posteriors
            (default: ``gselect_top_k`` of :func:`emkit.config_context`, None: exact statistics).
        min_posterior : float, optional
            With ``top_k``: posteriors below this are dropped and the rest renormalised
            (default: ``gselect_min_posterior``).

        Returns
        -------
        GMMStats
            ``n`` (C,), ``sum_px`` and ``sum_pxx`` (C, D), ``t`` = N and the log-likelihood.
        """
        coef = self._coefficients()
        self._check_feature_names(X)
        return estep.total_stats(estep.check_frames_of(X, coef, "X"), coef, True,
                                 estep.selection(top_k, min_posterior, coef.n_gaussians))

    def transform(self, X, top_k=None, min_posterior=None) -> list:
        """The statistics of every session (or every frame) of ``X``, as in the reference.

        Parameters
        ----------
        X : list of arrays of shape (n_frames, D), array of shape (S, n_frames, D) or (N, D)
            Sessions; a 2-D array is N sessions of one frame each (the reference's behaviour).
        top_k, min_posterior : int, float, optional
            Gaussian selection, as in :meth:`acc_stats`.

        Returns
        -------
        list of GMMStats
            One per session (per row of a 2-D ``X``).
        """
        coef = self._coefficients()
        self._check_feature_names_of_each(X)
        return estep.session_stats(X, coef, estep.selection(top_k, min_posterior, coef.n_gaussians))

    stats_per_sample = transform

    # -- training ----------------------------------------------------------------------------
    def initialize_gaussians(self, data=None):
        """Set the parameters ``fit`` starts from: a copy of the UBM's (MAP), or (ML) the means,
        variances and weights of k-means clusters of ``data`` (``k_means_trainer``, fitted in
        place, or ``KMeansMachine(n_gaussians, random_state=random_state)``).

        Parameters
        ----------
        data : array-like of shape (N, D), or dask array of shape (N, D), optional
            The frames; required for ML (a ``ValueError`` without).  A DataFrame's column names
            become the machine's, as in ``fit``.
        """
        self._initialize_gaussians(data)  # (its means assigned: n_features_in_ is theirs)
        if self.trainer != "map" and data is not None:
            self._record_feature_names(data)

    def _initialize_gaussians(self, data):
        if self.trainer == "map":
            self._copy_from_ubm()
            return
        self.means, self.variances, self.weights = kmeans_start(self, data, KMeansMachine)

    def adapt(self, stats) -> "GMMMachine":
        """MAP-adapt this ``trainer="map"`` machine to ``stats`` in one M-step from its UBM.

        The parameters start from a copy of the UBM's and the machine's MAP settings apply
        (``map_relevance_factor``, ``update_means``...), as one iteration of ``fit`` on the frames
        behind ``stats`` would.  (emkit's: the reference enrolled by calling ``fit``.)

        Parameters
        ----------
        stats : GMMStats or list of GMMStats
            The statistics of the enrolment data (a list is summed), of the UBM's shape (C, D).

        Returns
        -------
        GMMMachine
            ``self``; a machine that is not MAP, or has no UBM, is a ``ValueError``.
        """
        check_adaptable(self)
        self._check_parameters()
        stats = adaptation_stats(stats, self.ubm.means.shape, self.update_variances)
        self._copy_from_ubm()
        if not _device_infer.adapt_machine(self, stats):  # MAP of the means on a device, or:
            apply_m_step(self, stats)
        return self

    def fit(self, X, y=None):
        """EM from the current parameters (from :meth:`initialize_gaussians` when neither the
        machine nor its UBM has means) until the relative change of the average log-likelihood
        is at most ``convergence_threshold``, or ``max_fitting_steps`` iterations (as the reference).

        Parameters
        ----------
        X : array-like of shape (N, D), or dask array of shape (N, D)
            The frames (a dask array: one task per chunk and iteration, statistics summed in a
            fixed order).  NaN or inf is a ``ValueError``.
        y : None
            Ignored (scikit-learn's API).

        Returns
        -------
        GMMMachine
            ``self``, with ``n_iter_`` and ``converged_``.
        """
        self._check_parameters()
        check_training_feature_names(self, X)
        raw = X  # its feature names are recorded once the fit has succeeded
        run_em(self, *training_frames(self, X))
        if self.trainer == "ml":  # also with variances from k-means (on repeated frames)
            warn_if_collapsed(self)
        self._coefficients()  # computed once here, so inference leaves the state alone
        self._record_feature_names(raw)
        return self

    def _start_training(self, X) -> None:
        """``fit``'s start: :meth:`initialize_gaussians` without means, variances 1 without any."""
        if not self._has_parameters():
            self._initialize_gaussians(X)
        if fitted_value(self, "variances") is None and not self._ubm_has_parameters():
            logger.warning("Variances were not defined before fit. Using variance=1")
            self.variances = np.ones_like(self.means, dtype=float)

    def _finish_fit(self, result, n_features: int) -> None:
        self.n_features_in_ = n_features
        self.n_iter_, self.converged_ = result.n_iter, result.converged

    def _training_state(self) -> dict:
        return {"means": self.means, "variances": self.variances, "weights": self.weights,
                "variance_thresholds": self.variance_thresholds}

    def _restore_training_state(self, arrays: dict):
        check_training_state(arrays)
        self.means, self.weights = arrays["means"], arrays["weights"]
        set_fitted(self, "variances", None)
        set_fitted(self, "variance_thresholds", arrays["variance_thresholds"])
        self.variances = arrays["variances"]

    def __sklearn_clone__(self):
        return clone_keeping_ubm(self)

    def __sklearn_tags__(self):
        return reference_transformer_tags(super().__sklearn_tags__())


_registry.register(GMMMachine, "GMMMachine", write="emkit.io.gmm:write_gmm_machine",
         read="emkit.io.gmm:read_gmm_machine")
