"""``KMeansMachine``: k-means clustering (Lloyd), used to initialise GMMs.

Compatible with ``bob.learn.em.KMeansMachine``; the differences are listed in ``docs/differences.md``.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.base import BaseEstimator

from . import _device_fit
from ._backend import _staging, cached_frames, is_dask_collection, map_reduce_finite
from ._checkpoint import resumable_em
from ._config import get_config
from ._feature_names import FeatureNamesMixin
from ._fitted import FittedArray, derived, fitted_value, refreeze, set_fitted, without_derived
from ._kernels import kmeans as kk
from ._kmeans_init import INIT_METHODS, check_init_method, initial_centroids
from ._kmeans_stats import KMeansStats, kmeans_chunk_stats
from ._validation import (check_block, check_checkpoint, check_frames, check_iteration_limits, check_positive_int,
                          check_comparable, check_random_state, check_random_state_type, check_real)
from .io import _registry

logger = logging.getLogger("emkit")

__all__ = ["KMeansMachine", "e_step", "get_centroids_distance", "get_closest_centroid_index", "m_step"]


def get_centroids_distance(x, means) -> np.ndarray:
    """Squared Euclidean distances between every centroid and every sample, shape (K, N).

    ``x`` is (N, D) (a 1-D ``x`` is one sample); ``means`` is (K, D).  Dask input gives a lazy
    dask array.  Exact element-wise differences are used (no expansion), as in the reference.
    """
    means = np.asarray(means, dtype=np.float64)
    if means.ndim != 2:  # (means.shape[1] raised IndexError)
        raise ValueError(f"means must be a (K, D) array of centroids; got shape {means.shape}")
    if is_dask_collection(x):
        x = check_frames(x, "x", n_features=means.shape[1], allow_empty=True)
        return x.map_blocks(_distances_block, means, dtype=np.float64,
                            chunks=(x.chunks[0], (means.shape[0],))).T
    x = check_frames(x, "x", n_features=means.shape[1], allow_empty=True)
    return kk.squared_distances(x, means)


def get_closest_centroid_index(centroids_dist) -> np.ndarray:
    """Index of the nearest centroid for each sample, from (K, N) distances; ties go to the lowest index."""
    return np.argmin(centroids_dist, axis=0)


def e_step(data, means):
    """The statistics of one Lloyd step over ``data`` (N, D) with centroids ``means`` (K, D), as
    the reference's ``kmeans.e_step``: ``(counts (K,) int64, sums (K, D) float64,
    mean_min_distance)``, where ``sums[k]`` adds the samples nearest to centroid k and
    ``mean_min_distance`` is the mean over ``data`` of the squared distance to the nearest
    centroid.  The statistics of several chunks are combined by :func:`m_step`."""
    means = check_frames(means, "means")
    if is_dask_collection(data):  # one chunk of the reference's loop: computed here
        data = data.compute()
    data = np.asarray(check_frames(data, "data", n_features=means.shape[1]), dtype=np.float64)
    coef = kk.CentroidCoefficients.from_centroids(means)
    r = kk.lloyd_statistics(data, coef, _block_rows())
    counts = r["counts"]
    # the kernel sums deviations from the centroids; the reference sums the samples
    sums = r["sums"] + counts[:, None] * (coef.shift + coef.centred)
    return counts, sums, np.float64(r["sum_min_dist"] / len(data))


def m_step(stats, n_samples, means=None):
    """New centroids and the average squared distance to the nearest centroid, from a list of
    :func:`e_step` results (one per chunk) over ``n_samples`` samples in all: ``(centroids
    (K, D), average_min_distance)``.

    The average is the true one: the chunks' means weighted by their sizes, divided by
    ``n_samples`` (the reference divided the sum of the chunks' means by ``n_samples``, a value
    ``n_samples`` times too small for one chunk).  A cluster that got no sample keeps its
    centroid from ``means`` (K, D); without ``means`` it is an error (the reference made it NaN;
    ``KMeansMachine.fit`` re-seeds it from the farthest samples instead).
    """
    stats = list(stats)
    if not stats:
        raise ValueError("stats is empty: expected the e_step results of at least one chunk")
    n_samples = check_positive_int(n_samples, "n_samples")
    counts = sum(np.asarray(s[0], dtype=np.int64) for s in stats)
    sums = sum(np.asarray(s[1], dtype=np.float64) for s in stats)
    total = sum(float(np.sum(s[0])) * float(s[2]) for s in stats)
    empty = counts == 0
    centroids = sums / np.maximum(counts, 1)[:, None]
    if empty.any():
        if means is None:
            raise ValueError(f"cluster(s) {np.flatnonzero(empty)[:10].tolist()} got no sample: "
                             "pass means= (the centroids of the e_step) to keep theirs")
        means = check_frames(means, "means", n_features=sums.shape[1])
        if len(means) != len(counts):
            raise ValueError(f"means must have {len(counts)} rows (one per cluster); got "
                             f"{len(means)}")
        centroids[empty] = means[empty]
    return centroids, total / n_samples


#: GMMMachine's default k-means start warns too, where the user set no k-means parameter
_NOT_CONVERGED_ADVICE = ("raise max_iter or convergence_threshold (GMMMachine's k-means start: "
                         "pass k_means_trainer=KMeansMachine(n_gaussians, max_iter=...))")


def _block_rows() -> int:
    return get_config()["block_rows"] or kk.DEFAULT_BLOCK_ROWS


def _distances_block(block, means, block_info=None):
    """(rows, K) squared distances of one dask chunk; NaN/inf in the chunk are refused."""
    block = np.asarray(block)
    check_block(block, "X", block_info)
    return kk.squared_distances(block, means).T


def _predict_block(block, coef, block_info=None):
    block = np.asarray(block)
    check_block(block, "X", block_info)
    return kk.assign(block, coef)[0]


class KMeansMachine(FeatureNamesMixin, BaseEstimator):
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

    def __getstate__(self):
        return without_derived(super().__getstate__())

    def __setstate__(self, state):
        super().__setstate__(state)
        refreeze(self)

    def __sklearn_is_fitted__(self) -> bool:
        return self.centroids_ is not None

    def _check_fitted(self):
        if self.centroids_ is None:
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("KMeansMachine centroids_ are not set: call fit (or initialize) first")

    # -- comparison ------------------------------------------------------------------------
    def is_similar_to(self, obj, r_epsilon=1e-05, a_epsilon=1e-08) -> bool:
        """True when both machines have centroids that agree within ``np.allclose`` tolerances."""
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
        """Set ``centroids_`` to their initial values (``init_method``); the feature names of
        ``data`` (a DataFrame's) become the machine's, as in ``fit``."""
        self._initialize(data)
        self._parameter_assigned("centroids_")  # (n_features_in_: the centroids')
        self._record_feature_names(data)

    def _initialize(self, data):
        data = _device_fit.to_host(self._validated(data))
        rs = check_random_state(self.random_state)
        set_fitted(self, "centroids_", initial_centroids(
            data, self.n_clusters, self.init_method, rs, init_max_iter=self.init_max_iter,
            oversampling_factor=self.oversampling_factor, block_rows=_block_rows()), copy=False)

    def _e_step(self, X) -> KMeansStats:
        return map_reduce_finite(kmeans_chunk_stats, X, self._coefficients(), _block_rows(), False)

    def _m_step(self, stats: KMeansStats) -> float:
        counts = stats.counts
        centroids = stats.centroids()
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            logger.info("k-means: re-seeding %d empty cluster(s) with the farthest samples", len(empty))
            far = stats.far_points
            for j, k in enumerate(empty):
                centroids[k] = far[j % len(far)]
        set_fitted(self, "centroids_", centroids, copy=False)
        self.average_min_distance = stats.sum_min_dist / stats.n_samples
        return self.average_min_distance

    def _distance_rounding(self) -> float:
        """The rounding error of ``average_min_distance`` when every sample is on its centroid: a
        centroid's coordinates pass through about four roundings of magnitude ``max|c|`` (shift,
        offset, mean deviation; doubled here), and a distance sums D squares of them.  (With
        centroids not yet read back from a device, those of the start: the same magnitude.)"""
        c = fitted_value(self, "centroids_")
        scale = 0.0 if c is None else float(np.max(np.abs(c)))
        return c.shape[1] * (8.0 * np.finfo(np.float64).eps * scale) ** 2 if scale else 0.0

    def fit(self, X, y=None):
        """Initialise the centroids, then run Lloyd iterations until convergence.  Returns ``self``.

        ``X`` is an (N, D) array-like or a dask array (one task per chunk and iteration).
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
                         rounding=self._distance_rounding,
                         not_converged_advice=_NOT_CONVERGED_ADVICE,
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
        """Squared distances to every centroid, shape **(K, N)** (clusters first, as the reference)."""
        self._check_fitted()
        self._check_feature_names(X)
        X = check_frames(X, "X", n_features=self.centroids_.shape[1], allow_empty=True, owner="KMeansMachine")
        return get_centroids_distance(X, self.centroids_)

    def predict(self, X):
        """Index of the nearest centroid for every sample, shape (N,)."""
        self._check_fitted()
        self._check_feature_names(X)
        coef = self._coefficients()
        if is_dask_collection(X):
            X = check_frames(X, "X", n_features=self.centroids_.shape[1], owner="KMeansMachine")
            return X.map_blocks(_predict_block, coef, drop_axis=1, dtype=np.intp)
        X = check_frames(X, "X", n_features=self.centroids_.shape[1], allow_empty=True, owner="KMeansMachine")
        return kk.assign(X, coef, _block_rows())[0]

    def get_variances_and_weights_for_each_cluster(self, data):
        """Per-cluster variances (K, D) and weights (K,) of ``data`` assigned to the nearest centroid.

        Variances are the biased ``E[x^2] - E[x]^2`` of each cluster, computed from deviations
        from the centroids (precise however far the data lie from the origin).  A cluster that
        gets no sample has weight 0 and the variance of the whole data.
        """
        self._check_fitted()
        self._check_feature_names(data, "data")
        dev = _device_fit.fit_device(data, dask_on_workers=True)
        if dev is None:
            data = check_frames(data, "data", n_features=self.centroids_.shape[1], owner="KMeansMachine")
            stats = map_reduce_finite(kmeans_chunk_stats, data, self._coefficients(), _block_rows(), True)
        else:
            data = _device_fit.check_fit_frames(data, self.centroids_.shape[1], "KMeansMachine")
            frames = _device_fit.DeviceFrames(data, dev, np.float64, "k-means cluster variances")
            stats = _device_fit.kmeans_statistics(frames, self._coefficients(), squares=True)
        counts = stats.counts
        weights = counts / counts.sum()
        with np.errstate(over="ignore", invalid="ignore"):
            variances = stats.variances()
        if not np.isfinite(variances).all():  # (NaN: inf - inf)
            raise ValueError("data: the squared deviations from the centroids overflow float64 "
                             "(|x - centroid| above about 1e154): rescale the data")
        empty = counts == 0
        if empty.any():
            variances[empty] = stats.total_variance()
        return variances, weights

    # -- HDF5 (emkit's layout, emkit.io.kmeans; the reference saved no k-means machine) -----
    def save(self, hdf5):
        """Write the parameters and centroids to an HDF5 path or open group (not ``checkpoint``)."""
        _registry.save(self, hdf5)

    @classmethod
    def from_hdf5(cls, hdf5) -> "KMeansMachine":
        """The machine in ``hdf5`` (a path or an open group) written by :meth:`save`."""
        return _registry.load(hdf5, expected=cls)

    def load(self, hdf5):
        """Replace the state of ``self`` by the machine stored in ``hdf5``."""
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
