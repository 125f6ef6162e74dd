"""``KMeansMachine``: k-means clustering (Lloyd), used to initialise GMMs.

Compatible with ``bob.learn.em.KMeansMachine``; the differences are listed in ``docs/differences.md``.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.base import BaseEstimator

from . import _device_fit
from ._backend import _staging, cached_frames, is_dask_collection
from ._checkpoint import resumable_em
from ._feature_names import FeatureNamesMixin
from ._fitted import FittedArray, PicklesFitted, derived, fitted_value, set_fitted
from ._kernels import kmeans as kk
from ._kmeans_fit import NOT_CONVERGED_ADVICE, distance_rounding, reseeded_centroids
from ._kmeans_init import INIT_METHODS, check_init_method, initial_centroids
from ._kmeans_reference import (accumulate_indices_means_vars, e_step, get_centroids_distance,
                                get_closest_centroid_index, m_step, reduce_indices_means_vars)
from ._kmeans_stats import KMeansStats, block_rows, lloyd_pass, predict_block, variances_and_weights
from ._validation import (check_checkpoint, check_frames, check_iteration_limits, check_positive_int,
                          check_comparable, check_random_state, check_random_state_type, check_real)
from .io import _registry
from .utils import array_to_delayed_list, check_and_persist_dask_input  # noqa: F401 (as the reference)

logger = logging.getLogger("emkit")

__all__ = ["KMeansMachine", "e_step", "get_centroids_distance", "get_closest_centroid_index", "m_step",
           "accumulate_indices_means_vars", "reduce_indices_means_vars",
           # the reference's kmeans module imports them from utils: code may import them from here
           "array_to_delayed_list", "check_and_persist_dask_input"]


class KMeansMachine(FeatureNamesMixin, PicklesFitted, BaseEstimator):
    """k-means with ``n_clusters`` centroids, trained by Lloyd iterations.

    Parameters
    ----------
    n_clusters : int
        Number of clusters K (>= 1).
    init_method : {"k-means||", "k-means++", "random"} or ndarray (K, D)
        How the centroids start.  ``"k-means||"`` is emkit's scalable k-means++ (about
        ``oversampling_factor * K`` candidates per round, ``init_max_iter`` rounds, then a weighted
        reclustering of the candidates); ``"random"`` takes K rows drawn without replacement
        (distinct indices: data with repeated rows can still give equal centroids).  An array is
        used as given (copied).
    convergence_threshold : float or None
        Stop when the relative change of the average squared distance to the nearest centroid
        is at most this; ``None`` runs ``max_iter`` iterations.
    max_iter : int or None
        Maximum number of Lloyd iterations; 0 only initialises.
    random_state : int, None, numpy RandomState or Generator
        Seeds the initialisation (numpy's global generator is never touched).
        A RandomState or Generator given is advanced by ``fit`` (docs/reproducibility.md).
    init_max_iter : int or None
        Number of k-means|| rounds (``None``: about ``ln(initial cost)`` rounds).
    oversampling_factor : float
        k-means|| draws ``oversampling_factor * n_clusters`` candidates per round on average.
    checkpoint : path or None
        Resumable training (see :class:`emkit.GMMMachine`).

    Raises
    ------
    ValueError, TypeError
        An invalid parameter, named, at construction (as the reference does for ``n_clusters``) and
        again in ``fit`` (after ``set_params``).

    Attributes
    ----------
    centroids_ : ndarray (K, D), also available as ``means``
    average_min_distance : float
        Mean squared distance of the samples to their nearest centroid, measured in the last
        iteration (before its update).
    n_iter_ : int
        Number of Lloyd iterations run by the last ``fit``.
    converged_ : bool
        Whether the last ``fit`` stopped at ``convergence_threshold`` (False when it stopped at
        ``max_iter``).
    n_features_in_ : int
        Number of features D seen by ``fit``.
    feature_names_in_ : ndarray of str
        The column names, when ``fit`` was given a DataFrame; ``transform`` and ``predict`` then
        refuse one whose columns differ or come in another order.

    Empty clusters: after an update, a cluster that received no sample is moved onto the sample
    farthest from its centroid (the next farthest for the next empty cluster, and so on), so a
    centroid never becomes NaN.
    """

    zeroeth_order_statistics = None  # kept for compatibility; never used
    first_order_statistics = None
    INIT_METHODS = INIT_METHODS

    def __init__(self, n_clusters: int, init_method="k-means||", convergence_threshold=1e-5,
                 max_iter=20, random_state=0, init_max_iter=5, oversampling_factor=2, checkpoint=None):
        self.n_clusters = n_clusters
        self.init_method = init_method
        self.convergence_threshold = convergence_threshold
        self.max_iter = max_iter
        self.random_state = random_state
        self.init_max_iter = init_max_iter
        self.oversampling_factor = oversampling_factor
        self.checkpoint = checkpoint
        self._check_hyperparameters()

    def _check_hyperparameters(self):
        """Raise on an invalid constructor argument (no work done, nothing stored)."""
        check_positive_int(self.n_clusters, "n_clusters")
        check_init_method(self.init_method, self.n_clusters)
        check_iteration_limits(self.max_iter, self.convergence_threshold, "max_iter")
        check_random_state_type(self.random_state)
        check_positive_int(self.init_max_iter, "init_max_iter", minimum=0, allow_none=True)
        check_real(self.oversampling_factor, "oversampling_factor", minimum=0, exclusive_minimum=True)
        check_checkpoint(self.checkpoint)

    # -- fitted state ----------------------------------------------------------------------
    _FEATURE_AXES = {"centroids_": 1}
    centroids_ = FittedArray("The centroids, shape (K, D); None before fit or initialize.")

    @property
    def means(self):
        """``centroids_`` (the reference's name)."""
        return self.centroids_

    @means.setter
    def means(self, value):
        self.centroids_ = value

    @property
    def average_min_distance(self) -> float:
        """A fitted scalar (not an array: the reference's float), np.inf before fit."""
        return self.__dict__.get("_average_min_distance", np.inf)

    @average_min_distance.setter
    def average_min_distance(self, value):
        self._average_min_distance = value

    def _missing_parameter(self, name):
        return None  # an unfitted machine has centroids_ None, as in the reference

    def _coefficients(self) -> kk.CentroidCoefficients:
        """The distance constants of the centroids, computed once per assignment of them."""
        return derived(self, "coefficients", lambda: kk.CentroidCoefficients.from_centroids(self.centroids_))

    def __sklearn_is_fitted__(self) -> bool:
        return self.centroids_ is not None

    def _check_fitted(self):
        if self.centroids_ is None:
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("KMeansMachine centroids_ are not set: call fit (or initialize) first")

    # -- comparison ------------------------------------------------------------------------
    def is_similar_to(self, obj, r_epsilon=1e-05, a_epsilon=1e-08) -> bool:
        """Whether both machines have centroids of the same shape that agree within tolerances.

        Parameters
        ----------
        obj : KMeansMachine
            The machine to compare with.
        r_epsilon, a_epsilon : float
            Relative and absolute tolerances of ``np.allclose``.

        Returns
        -------
        bool
            False (with a logged warning, as the reference) when either machine has no centroids.
        """
        check_comparable(obj, KMeansMachine, "obj", r_epsilon=r_epsilon, a_epsilon=a_epsilon)
        if self.centroids_ is None or getattr(obj, "centroids_", None) is None:
            logger.warning("KMeansMachine `centroids_` was not set. You should call 'fit' first.")
            return False
        return bool(np.shape(self.centroids_) == np.shape(obj.centroids_)
                    and np.allclose(self.centroids_, obj.centroids_, rtol=r_epsilon, atol=a_epsilon))

    def __eq__(self, obj) -> bool:
        if not isinstance(obj, KMeansMachine):
            return NotImplemented
        return self.is_similar_to(obj, 0, 0)

    __hash__ = object.__hash__

    # -- training --------------------------------------------------------------------------
    def _validated(self, X):
        self._check_hyperparameters()
        return _device_fit.check_fit_frames(X, None, "KMeansMachine")

    def initialize(self, data):
        """Set ``centroids_`` to their initial values (``init_method``), as ``fit`` starts.

        Parameters
        ----------
        data : array-like of shape (N, D), or dask array of shape (N, D)
            The samples; a DataFrame's column names become the machine's, as in ``fit``.
        """
        self._initialize(data)
        self._parameter_assigned("centroids_")  # (n_features_in_: the centroids')
        self._record_feature_names(data)

    def _initialize(self, data):
        data = _device_fit.to_host(self._validated(data))
        rs = check_random_state(self.random_state)
        set_fitted(self, "centroids_", initial_centroids(
            data, self.n_clusters, self.init_method, rs, init_max_iter=self.init_max_iter,
            oversampling_factor=self.oversampling_factor, block_rows=block_rows()), copy=False)

    def _e_step(self, X) -> KMeansStats:
        return lloyd_pass(X, self._coefficients(), False, "k-means E-step")

    def _m_step(self, stats: KMeansStats) -> float:
        set_fitted(self, "centroids_", reseeded_centroids(stats), copy=False)
        self.average_min_distance = stats.sum_min_dist / stats.n_samples
        return self.average_min_distance

    def fit(self, X, y=None):
        """Initialise the centroids (``init_method``), then run Lloyd iterations until the
        relative change of ``average_min_distance`` is at most ``convergence_threshold``, or
        ``max_iter`` iterations (which warns ``ConvergenceWarning`` when a threshold is set).

        Parameters
        ----------
        X : array-like of shape (N, D), or dask array of shape (N, D)
            The samples (a dask array: one task per chunk and iteration).  NaN or inf is a
            ``ValueError``.
        y : None
            Ignored (scikit-learn's API).

        Returns
        -------
        KMeansMachine
            ``self``, with ``centroids_``, ``average_min_distance``, ``n_iter_`` and
            ``converged_``.  An empty cluster is re-seeded (see the class docstring), never NaN.
        """
        dev = _device_fit.fit_device(X, dask_on_workers=True)  # None: numpy path, docs/gpu.md
        raw = X  # its feature names are recorded once the fit has succeeded
        X = cached_frames(self._validated(X))  # a dask array: read once if it fits in memory
        frames = None if dev is None else _device_fit.DeviceFrames(X, dev, np.float64, "k-means")
        device = None
        if frames is None:
            initialize, e_step = (lambda: self._initialize(X)), (lambda: self._e_step(X))
            m_step, get_state = self._m_step, lambda: {"centroids": self.centroids_}
        else:  # k-means|| scoring and Lloyd iterations on the device, centroids resident there
            from ._kmeans_init_device import initialize_on_device

            device = _device_fit.DeviceKMeans(self, frames)
            initialize = lambda: initialize_on_device(self, frames)  # noqa: E731
            e_step, m_step, get_state = device.e_step, device.m_step, device.state
        with _staging.synced(device):  # the device's centroids back on the machine at the end
            resumable_em(self, X, initialize=initialize, get_state=get_state,
                         set_state=lambda arrays: setattr(self, "centroids_", arrays["centroids"]),
                         state_shapes={"centroids": (self.n_clusters, X.shape[1])},
                         e_step=e_step, m_step=m_step, max_iterations=self.max_iter,
                         convergence_threshold=self.convergence_threshold,
                         name="k-means", quantity="average squared distance",
                         rounding=lambda: distance_rounding(fitted_value(self, "centroids_")),
                         not_converged_advice=NOT_CONVERGED_ADVICE,
                         finish=lambda result: self._finish_fit(result, X.shape[1]))
        self._coefficients()  # computed once here, so inference leaves the state alone
        self._record_feature_names(raw)
        return self

    def _finish_fit(self, result, n_features: int) -> None:
        if result.history:
            self.average_min_distance = result.history[-1]
        self.n_features_in_ = n_features
        self.n_iter_, self.converged_ = result.n_iter, result.converged

    # -- inference -------------------------------------------------------------------------
    def transform(self, X):
        """Squared Euclidean distances of every sample to every centroid.

        Parameters
        ----------
        X : array-like of shape (N, D) or (D,), or dask array of shape (N, D)
            The samples; a 1-D ``X`` is one sample.

        Returns
        -------
        ndarray of shape (K, N)
            Clusters first, as the reference (the transpose of scikit-learn's); a lazy dask array
            for dask ``X``.
        """
        self._check_fitted()
        self._check_feature_names(X)
        X = check_frames(X, "X", n_features=self.centroids_.shape[1], allow_empty=True, owner="KMeansMachine")
        return get_centroids_distance(X, self.centroids_)

    def predict(self, X):
        """Index of the nearest centroid of every sample (ties go to the lowest index).

        Parameters
        ----------
        X : array-like of shape (N, D) or (D,), or dask array of shape (N, D)
            The samples; a 1-D ``X`` is one sample.

        Returns
        -------
        ndarray of shape (N,)
            Integer indices in ``[0, K)``; a lazy dask array for dask ``X``.
        """
        self._check_fitted()
        self._check_feature_names(X)
        coef = self._coefficients()
        if is_dask_collection(X):
            X = check_frames(X, "X", n_features=self.centroids_.shape[1], owner="KMeansMachine")
            return X.map_blocks(predict_block, coef, block_rows(), drop_axis=1, dtype=np.intp)
        X = check_frames(X, "X", n_features=self.centroids_.shape[1], allow_empty=True, owner="KMeansMachine")
        return kk.assign(X, coef, block_rows())[0]

    def get_variances_and_weights_for_each_cluster(self, data):
        """Variances and weights of the clusters of ``data`` (each sample in its nearest
        centroid's), the start of a GMM.

        Variances are the biased ``E[x^2] - E[x]^2`` of each cluster, computed from deviations
        from the centroids (precise however far the data lie from the origin).

        Parameters
        ----------
        data : array-like of shape (N, D), or dask array of shape (N, D)
            The samples.

        Returns
        -------
        variances : ndarray of shape (K, D)
            A cluster that gets no sample has the variance of the whole data (the reference's
            was NaN).
        weights : ndarray of shape (K,)
            The fraction of the samples in each cluster (0 for an empty one).
        """
        self._check_fitted()
        self._check_feature_names(data, "data")
        dev = _device_fit.fit_device(data, dask_on_workers=True)
        if dev is None:
            data = check_frames(data, "data", n_features=self.centroids_.shape[1], owner="KMeansMachine")
            stats = lloyd_pass(data, self._coefficients(), True, "k-means cluster variances")
        else:
            data = _device_fit.check_fit_frames(data, self.centroids_.shape[1], "KMeansMachine")
            frames = _device_fit.DeviceFrames(data, dev, np.float64, "k-means cluster variances")
            stats = _device_fit.kmeans_statistics(frames, self._coefficients(), squares=True)
        return variances_and_weights(stats)

    # -- HDF5 (emkit's layout, emkit.io.kmeans; the reference saved no k-means machine) -----
    def save(self, hdf5):
        """Write the parameters and the fitted state in emkit's HDF5 layout (not ``checkpoint``).

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A path (written atomically) or an open, writable group (see :func:`emkit.io.save`).
        """
        _registry.save(self, hdf5)

    @classmethod
    def from_hdf5(cls, hdf5) -> "KMeansMachine":
        """Read a machine written by :meth:`save`.

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A path or an open group.

        Returns
        -------
        KMeansMachine
            A new machine; a damaged or foreign file is an :class:`emkit.io.InvalidFileError`.
        """
        return _registry.load(hdf5, expected=cls)

    def load(self, hdf5):
        """Replace the parameters and state of ``self`` by those of a machine :meth:`save` wrote.

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A path or an open group.

        Returns
        -------
        KMeansMachine
            ``self`` (unchanged when the file cannot be read).
        """
        loaded = self.from_hdf5(hdf5)
        self.__dict__.clear()
        self.__dict__.update(loaded.__dict__)
        return self

    @classmethod
    def _from_fitted(cls, params: dict, centroids, average_min_distance=np.inf, n_iter=None,
                     converged=None, *, copy: bool = True,
                     derive: bool = True) -> "KMeansMachine":
        """A machine with ``params`` and the centroids (K, D) a file holds (copied; ``copy=False``
        keeps a float64 array the caller owns: the reader's, which a copy would double in the
        memory of a load and of save's read-back); it has ``n_features_in_`` = D, and ``n_iter_``/``converged_`` when
        ``n_iter`` is given.  ``derive=False`` leaves the distance constants (two more arrays of
        the centroids' size) to the first use: the machine save reads back is thrown away."""
        machine = cls(**params)
        set_fitted(machine, "centroids_", centroids, copy=copy)
        machine.average_min_distance = float(average_min_distance)
        machine.n_features_in_ = int(machine.centroids_.shape[1])
        if n_iter is not None:
            machine.n_iter_, machine.converged_ = int(n_iter), bool(converged)
        if derive:
            machine._coefficients()  # as after fit: inference leaves the state alone
        return machine

    def __sklearn_tags__(self):
        from sklearn.utils import TransformerTags

        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        # ``transform`` keeps the reference's output (see the class docstring), not sklearn's
        tags.transformer_tags = TransformerTags(preserves_dtype=[])
        return tags


_registry.register(KMeansMachine, "KMeansMachine", write="emkit.io.kmeans:write_kmeans_machine",
                   read="emkit.io.kmeans:read_kmeans_machine")
