"""``GMMMachine``: diagonal Gaussian mixtures trained by maximum likelihood or MAP adaptation.

Compatible with ``bob.learn.em.GMMMachine`` and its ``gmm`` module (``e_step``, ``m_step``,
``ml_gmm_m_step``, ``map_gmm_m_step``, ``log_likelihood``, ``log_weighted_likelihood``).  The
E-step is two matrix products per bounded row block, with a log-sum-exp in between (see
:mod:`emkit._kernels.gmm`).
"""

from __future__ import annotations

import copy
import logging
import numbers

import numpy as np
from sklearn.base import BaseEstimator, clone

from ._backend import is_dask_collection, map_ordered, map_reduce, tree_sum
from ._checkpoint import resumable_em
from ._config import get_config
from ._gmm_mstep import EPSILON, map_gmm_m_step, ml_gmm_m_step
from ._gmm_params import COMPUTE_DTYPES as _DTYPES
from ._gmm_params import check_gmm_parameters, check_weights
from ._kernels import gmm as kg
from ._validation import check_block, check_frames
from .io._registry import register
from .kmeans import KMeansMachine
from .stats import GMMStats

logger = logging.getLogger("emkit")

__all__ = ["GMMMachine", "GMMStats", "e_step", "m_step", "ml_gmm_m_step", "map_gmm_m_step",
           "log_likelihood", "log_weighted_likelihood"]



def _block_rows() -> int:
    return get_config()["block_rows"] or kg.DEFAULT_BLOCK_ROWS


# ---------------------------------------------------------------------------------------------
# statistics (chunk function for the backend)
# ---------------------------------------------------------------------------------------------


def _stats_chunk(X, coef: kg.DiagGMMCoefficients, block_rows: int, second_order: bool = True,
                 shifted: bool = True, check: bool = False) -> GMMStats:
    """Statistics of the rows of ``X``; without ``second_order``, ``sum_pxx`` is left at zero.

    ``shifted`` keeps the moments about the coefficients' shift in the result (for the M-step;
    per-session statistics leave them out, to keep their memory at the reference's).  ``check``
    refuses NaN/inf in ``X`` (a dask chunk: numpy input is checked up front).
    """
    X = np.atleast_2d(np.asarray(X))
    if check:
        check_block(X, "X")
    C, D = coef.n_gaussians, coef.n_features
    stats = GMMStats.__new__(GMMStats)
    stats.n_gaussians, stats.n_features = C, D
    if X.shape[0] == 0:
        ll, n, px, pxx = 0.0, np.zeros(C), np.zeros((C, D)), np.zeros((C, D)) if second_order else None
    else:
        ll, n, px, pxx = kg.accumulate_shifted_statistics(X, coef, block_rows, second_order)
    stats._init_shifted(ll, int(X.shape[0]), n, coef.shift, px, pxx)
    if not shifted:
        stats._shifted = None
    return stats


def _computed(value):
    """Parameters assigned as dask arrays are computed (they are small)."""
    return np.asarray(value) if is_dask_collection(value) else value


def _dask_block(block, kernel, coef, name, block_info=None):
    """``kernel`` on one dask chunk, refusing NaN/inf in the chunk as numpy input is refused."""
    block = np.asarray(block)
    check_block(block, name, block_info)
    return kernel(block, coef)


def _check_stats_finite(stats: GMMStats, name: str = "X") -> GMMStats:
    if not np.isfinite(stats.log_likelihood) or not np.isfinite(stats.n).all():
        raise ValueError(
            f"{name} gave a non-finite log-likelihood: it contains NaN or infinity, or the model's "
            "variances are degenerate"
        )
    return stats


# ---------------------------------------------------------------------------------------------
# module-level functions of the reference's ``gmm`` module
# ---------------------------------------------------------------------------------------------


def log_weighted_likelihood(data, machine: "GMMMachine"):
    """``log w_c + log N(x_t | mu_c, var_c)`` with shape **(C, N)** (Gaussians first)."""
    return machine.log_weighted_likelihood(data)


def log_likelihood(data, machine: "GMMMachine"):
    """Per-sample mixture log-likelihood, shape (N,)."""
    return machine.log_likelihood(data)


def e_step(data, machine: "GMMMachine") -> GMMStats:
    """Statistics of ``data`` (N, D) given ``machine``: one :class:`GMMStats`."""
    return machine.acc_stats(data)


def m_step(statistics, machine: "GMMMachine"):
    """Update ``machine`` in place from a list of statistics (summed first, none of them mutated).

    Returns ``(machine, average log-likelihood of the statistics)``.
    """
    if isinstance(statistics, GMMStats):
        statistics = [statistics]
    stats = tree_sum(statistics)
    if stats.t == 0:
        raise ValueError("m_step needs statistics of at least one sample; got t = 0")
    machine._apply_m_step(stats)
    return machine, float(stats.log_likelihood / stats.t)


# ---------------------------------------------------------------------------------------------
# the estimator
# ---------------------------------------------------------------------------------------------


class GMMMachine(BaseEstimator):
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
    weights : array (C,) or None
        Initial weights (default: uniform, or the UBM's).
    k_means_trainer : KMeansMachine or None
        Used (and fitted in place) instead of ``KMeansMachine(C, random_state=random_state)``.
    update_means, update_variances, update_weights : bool
        Which parameters the M-step updates (default: means only, for ML and MAP alike).
    mean_var_update_threshold : float
        Floor on the per-Gaussian occupancy in the M-step, and the initial variance floor.
    map_alpha : float or array (C,)
        Fixed MAP adaptation coefficient(s) in [0, 1], used when ``map_relevance_factor`` is None.
    map_relevance_factor : float >= 0 or None
        Reynolds relevance factor r: ``alpha_c = n_c / (n_c + r)``.
    compute_dtype : {"float64", "float32"}
        Precision of the E-step products.  "float32" is about twice as fast; statistics are still
        accumulated, and parameters stored, in float64.  Default "float64" gives the reference's
        numbers.
    checkpoint : path or None
        Resumable training: the state is written atomically to this HDF5 file after every
        completed iteration; a ``fit`` started again with the same arguments and data (e.g. after
        the process was killed) resumes after the last completed iteration and ends with the same
        parameters as an uninterrupted run.  A checkpoint of another run is refused.

    Invalid parameters raise ``ValueError``/``TypeError`` naming the parameter, at construction (as
    the reference does for some of them) and again in ``fit`` (after ``set_params``).

    Attributes
    ----------
    means, variances : ndarray (C, D)
    weights, log_weights, g_norms : ndarray (C,)
    variance_thresholds : float, ndarray (D,) or (C, D)
        Variances are floored at these values whenever they are assigned.
    n_iter_ : int
        EM iterations run by the last ``fit``.
    """

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
        self._weights_param = weights
        self._check_hyperparameters()
        self._means = None
        self._variances = None
        self._variance_thresholds = mean_var_update_threshold
        self._g_norms = None
        self._weights = None
        if isinstance(ubm, GMMMachine) and ubm._means is not None:
            self._copy_from_ubm()
        elif isinstance(n_gaussians, numbers.Integral) and n_gaussians >= 1:
            self.weights = np.full((n_gaussians,), 1.0 / n_gaussians)
        if weights is not None:
            self.weights = weights

    def _check_hyperparameters(self):
        """Raise on an invalid constructor argument (no work done, nothing stored)."""
        check_gmm_parameters(self, GMMMachine, KMeansMachine)

    def _check_parameters(self):
        """Everything ``fit`` needs: the constructor arguments (again) and the current weights."""
        self._check_hyperparameters()
        if self.ubm is not None and self.ubm._means is None:
            raise ValueError("ubm has no parameters: fit it (or set its means) first")
        check_weights(self._weights, self.n_gaussians, "weights")

    def _copy_from_ubm(self):
        ubm = self.ubm
        self.means = copy.deepcopy(ubm.means)
        self.variances = copy.deepcopy(ubm.variances)
        self.variance_thresholds = copy.deepcopy(ubm.variance_thresholds)
        self.weights = copy.deepcopy(ubm.weights)

    # -- scikit-learn parameters: ``weights`` is the constructor argument, not the live value --
    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        params["weights"] = self._weights_param
        return params

    def set_params(self, **params):
        if "weights" in params:
            weights = params.pop("weights")
            self._weights_param = weights
            if weights is not None:
                self.weights = weights
        return super().set_params(**params)

    # -- parameters ------------------------------------------------------------------------
    @property
    def weights(self):
        """Weight of each Gaussian, shape (C,)."""
        return self._weights

    @weights.setter
    def weights(self, weights):
        self._weights = _computed(weights)  # validated in fit (the reference stores anything)

    @property
    def log_weights(self):
        """``log(weights)``, shape (C,); a zero weight gives -inf (that Gaussian gets no responsibility)."""
        if self._weights is None:
            return None
        with np.errstate(divide="ignore"):
            return np.log(np.asarray(self._weights, dtype=float))

    @property
    def means(self):
        """Means of the Gaussians, shape (C, D)."""
        if self._means is None:
            raise ValueError("GMMMachine means were never set.")
        return self._means

    @means.setter
    def means(self, means):
        self._means = _computed(means)

    @property
    def variances(self):
        """Diagonal variances of the Gaussians, shape (C, D), floored at ``variance_thresholds``."""
        if self._variances is None:
            raise ValueError("GMMMachine variances were never set.")
        return self._variances

    @variances.setter
    def variances(self, variances):
        self._variances = np.maximum(self.variance_thresholds, _computed(variances))
        self._g_norms = None  # recomputed on demand

    @property
    def variance_thresholds(self):
        """Variance floor: a scalar, one value per feature (D,) or per Gaussian and feature (C, D)."""
        if self._variance_thresholds is None:
            return EPSILON
        return self._variance_thresholds

    @variance_thresholds.setter
    def variance_thresholds(self, threshold):
        threshold = _computed(threshold)
        self._variance_thresholds = threshold
        if self._variances is not None:
            self.variances = np.maximum(threshold, self._variances)

    @property
    def g_norms(self):
        """``D log(2 pi) + sum_d log var_cd`` per Gaussian, shape (C,)."""
        if self._g_norms is None:
            self._g_norms = kg.g_norms(self.variances)
        return self._g_norms

    @property
    def shape(self):
        """(C, D)."""
        return self.means.shape

    def __sklearn_is_fitted__(self) -> bool:
        return self._means is not None

    # -- comparison ------------------------------------------------------------------------
    def __eq__(self, other):
        if not isinstance(other, GMMMachine):
            return NotImplemented
        if self._means is None:
            return False
        return self.is_similar_to(other)

    __hash__ = object.__hash__

    def is_similar_to(self, other, rtol=1e-5, atol=1e-8) -> bool:
        """True when means, variances, variance thresholds and weights agree (``np.allclose``)."""
        try:
            return bool(
                np.allclose(self.means, other.means, rtol=rtol, atol=atol)
                and np.allclose(self.variances, other.variances, rtol=rtol, atol=atol)
                and np.allclose(self.variance_thresholds, other.variance_thresholds, rtol=rtol, atol=atol)
                and np.allclose(self.weights, other.weights, rtol=rtol, atol=atol)
            )
        except ValueError:  # unset parameters or different shapes
            return False

    # -- HDF5 --------------------------------------------------------------------------------
    def save(self, hdf5):
        """Write the machine in bob.learn.em's HDF5 layout (readable by the reference).

        MAP machines also store their UBM and MAP parameters so that they reload as MAP.
        """
        from .io.gmm import write_gmm_machine

        write_gmm_machine(self, hdf5)

    @classmethod
    def from_hdf5(cls, hdf5, ubm=None) -> "GMMMachine":
        """Read a machine written by emkit, bob.learn.em 3.x or bob 2.x (legacy layout)."""
        from .io.gmm import read_gmm_machine

        return read_gmm_machine(hdf5, cls, ubm=ubm)

    def load(self, hdf5):
        """Replace the state of ``self`` by the machine stored in ``hdf5``."""
        self.__dict__.update(self.from_hdf5(hdf5).__dict__)

    # -- likelihoods and statistics ----------------------------------------------------------
    def _coefficients(self) -> kg.DiagGMMCoefficients:
        if self.compute_dtype not in _DTYPES:
            raise ValueError(f"compute_dtype must be 'float64' or 'float32'; got {self.compute_dtype!r}")
        return kg.DiagGMMCoefficients.from_parameters(self.means, self.variances, self.log_weights,
                                                      _DTYPES[self.compute_dtype], norms=self.g_norms)

    def _check_data(self, data, name="data", allow_empty=True):
        return check_frames(data, name, n_features=self.means.shape[1], allow_empty=allow_empty,
                            owner="GMMMachine")

    def log_weighted_likelihood(self, data):
        """``log w_c + log N(x_t | mu_c, var_c)``, shape **(C, N)** (Gaussians first)."""
        coef = self._coefficients()
        data = self._check_data(data)
        if is_dask_collection(data):
            return data.map_blocks(_dask_block, kg.log_weighted_likelihood, coef, "data", dtype=float,
                                   chunks=(data.chunks[0], (coef.n_gaussians,))).T
        return kg.log_weighted_likelihood(data, coef, _block_rows()).T

    def log_likelihood(self, data):
        """Per-sample log-likelihood ``log sum_c w_c N(x_t | mu_c, var_c)``, shape (N,)."""
        coef = self._coefficients()
        data = self._check_data(data)
        if is_dask_collection(data):
            return data.map_blocks(_dask_block, kg.log_likelihood, coef, "data", drop_axis=1, dtype=float)
        return kg.log_likelihood(data, coef, _block_rows())

    def acc_stats(self, X) -> GMMStats:
        """Statistics of all rows of ``X`` (N, D) in one :class:`GMMStats` (dask input is computed)."""
        X = self._check_data(X, "X")
        stats = map_reduce(_stats_chunk, X, self._coefficients(), _block_rows(), True, True,
                           is_dask_collection(X))
        return _check_stats_finite(stats)

    def transform(self, X) -> list:
        """One :class:`GMMStats` per element of ``X``.

        A list of (n_frames, D) arrays or a 3-D array gives one statistics object per session; a
        2-D array gives one per row (per frame), as in the reference.
        """
        coef = self._coefficients()
        block_rows = _block_rows()
        if is_dask_collection(X) and getattr(X, "ndim", 0) == 2:
            X = np.asarray(self._check_data(X, "X"))  # the N results are in memory anyway
        if isinstance(X, np.ndarray) and X.ndim == 2:  # one session per row: check them all at once
            X = self._check_data(X, "X")
        sessions = [check_frames(x, f"X[{i}]", n_features=coef.n_features, allow_empty=True, owner="GMMMachine")
                    for i, x in enumerate(X)]

        def one(i):
            return _check_stats_finite(_stats_chunk(sessions[i], coef, block_rows, True, False), f"X[{i}]")

        return map_ordered(one, range(len(sessions)))

    stats_per_sample = transform

    # -- training ----------------------------------------------------------------------------
    def initialize_gaussians(self, data=None):
        """Set the initial parameters: a copy of the UBM (MAP) or k-means on ``data`` (ML)."""
        if self.trainer == "map":
            self._copy_from_ubm()
            return
        if data is None:
            raise ValueError("Data is required when training with k-means.")
        logger.info("GMM: initialising %d Gaussians with k-means", self.n_gaussians)
        kmeans = self.k_means_trainer or KMeansMachine(self.n_gaussians, random_state=self.random_state)
        kmeans.fit(data)
        self.means = copy.deepcopy(kmeans.centroids_)
        self.variances, self.weights = kmeans.get_variances_and_weights_for_each_cluster(data)

    def _apply_m_step(self, stats: GMMStats):
        common = dict(update_means=self.update_means, update_variances=self.update_variances,
                      update_weights=self.update_weights,
                      mean_var_update_threshold=self.mean_var_update_threshold)
        if self.trainer == "map":
            map_gmm_m_step(self, stats, reynolds_adaptation=self.map_relevance_factor is not None,
                           relevance_factor=self.map_relevance_factor, alpha=self.map_alpha, **common)
        else:
            ml_gmm_m_step(self, stats, **common)

    def adapt(self, stats) -> "GMMMachine":
        """MAP-adapt this ``trainer="map"`` machine to ``stats`` in one M-step from its UBM.

        ``stats``: the :class:`GMMStats` of the enrolment data (or a list of them, summed).  The
        parameters start from a copy of the UBM's and the machine's MAP settings apply
        (``map_relevance_factor``, ``update_means``...), as one iteration of ``fit`` on the frames
        behind ``stats`` would.  Returns ``self``.
        """
        if self.trainer != "map" or self.ubm is None:
            raise ValueError("adapt needs a MAP machine: GMMMachine(trainer='map', ubm=<a trained "
                             f"GMMMachine>); got trainer={self.trainer!r}, ubm={self.ubm!r}")
        self._check_parameters()
        single = isinstance(stats, GMMStats)
        batch = GMMStats.stack([stats] if single else stats, name="stats", indexed=not single,
                               shape=self.ubm.means.shape, second_order=self.update_variances)
        if not single:  # a single GMMStats keeps its moments about a shift (precise variances)
            stats = batch.total()
        self._copy_from_ubm()
        self._apply_m_step(stats)
        return self

    def fit(self, X, y=None):
        """EM until the average log-likelihood converges or ``max_fitting_steps`` is reached.

        ``X`` is (N, D) frames, or a dask array (one task per chunk and iteration, statistics
        summed in a fixed order).  Calling ``fit`` again continues from the current parameters.
        """
        self._check_parameters()
        X = check_frames(X, "X", n_features=None if self._means is None else self._means.shape[1],
                         ensure_2d=True, owner="GMMMachine", known_rows=True)

        def initialize():
            if self._means is None:
                self.initialize_gaussians(X)
            if self._weights is None:
                self.weights = np.full((self.n_gaussians,), 1.0 / self.n_gaussians)
            if self._variances is None:
                logger.warning("Variances were not defined before fit. Using variance=1")
                self.variances = np.ones_like(self.means, dtype=float)

        def e_step_():
            # the M-step only reads sum_pxx when it updates variances
            stats = map_reduce(_stats_chunk, X, self._coefficients(), _block_rows(), self.update_variances,
                               True, is_dask_collection(X))
            return _check_stats_finite(stats)

        def m_step_(stats):
            self._apply_m_step(stats)
            return stats.log_likelihood / stats.t

        result = resumable_em(self, X, initialize=initialize, get_state=self._training_state,
                              set_state=self._restore_training_state, e_step=e_step_, m_step=m_step_,
                              max_iterations=self.max_fitting_steps,
                              convergence_threshold=self.convergence_threshold,
                              name=f"GMM {self.trainer.upper()}")
        self.n_features_in_ = X.shape[1]
        self.n_iter_ = result.n_iter
        return self

    def _training_state(self) -> dict:
        return {"means": self.means, "variances": self.variances, "weights": self.weights,
                "variance_thresholds": self.variance_thresholds}

    def _restore_training_state(self, arrays: dict):
        self.means = arrays["means"]
        self._variance_thresholds = arrays["variance_thresholds"]
        self._variances = None
        self.variances = arrays["variances"]
        self.weights = arrays["weights"]

    def __sklearn_clone__(self):
        # the prior (a trained UBM) is an input, not a hyper-parameter: keep a copy of it, since
        # sklearn's default clone would hand back an untrained GMMMachine and MAP could not fit
        params = self.get_params(deep=False)
        ubm = params.pop("ubm")
        others = {k: clone(v, safe=False) for k, v in params.items()}
        return type(self)(ubm=copy.deepcopy(ubm), **others)

    def __sklearn_tags__(self):
        from sklearn.utils import TransformerTags

        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        # ``transform`` keeps the reference's output (see the class docstring), not sklearn's
        tags.transformer_tags = TransformerTags(preserves_dtype=[])
        return tags


register(GMMMachine, "GMMMachine", write="emkit.io.gmm:write_gmm_machine",
         read="emkit.io.gmm:read_gmm_machine")
