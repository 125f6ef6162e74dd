"""Training GMMs and k-means on a device (``emkit.set_config(device=...)``, or PyTorch/CuPy input).

The estimators call :func:`fit_device` once per ``fit``: ``None`` (numpy input, CPU device: a
dict lookup and an ``isinstance``) keeps the numpy path untouched.  Otherwise the frames become a
:class:`DeviceFrames`: copied to the device once, or streamed from host memory block by block
every iteration through :func:`emkit._backend._device.stream_blocks` (pinned buffers, copies
overlapping compute), as :func:`emkit._backend._device.copy_once` decides (docs/gpu.md); the
decision is logged at INFO level.  Input that already lives on a device (PyTorch tensors, CuPy
arrays) stays there.

Each iteration of ``fit`` runs on the device with the parameters resident there
(:class:`DeviceGMM`, :class:`DeviceKMeans`): the E-step constants, the namespace-generic kernels
(:mod:`emkit._kernels.gmm_xp`, :mod:`emkit._kernels.kmeans_xp`) over the blocks with the
accumulators on the device, and the M-step (:mod:`emkit._gmm_mstep`; k-means: the cluster
means and the re-seeding of empty clusters); two numbers come back per iteration (for the
convergence test and the log), the parameters as numpy float64 at the end of ``fit`` and before
each checkpoint, equal to the numpy path's within rounding.  :func:`gmm_statistics` and
:func:`kmeans_statistics` (one pass, numpy statistics back) serve the other callers: statistics,
cluster variances, dask chunks on a worker's device.
"""

from __future__ import annotations

import logging

import numpy as np

from . import _config
from ._backend import _device, _staging, is_dask_collection
from ._config import get_config
from ._kernels import _xp, gmm_xp, kmeans_xp
from ._progress import Progress
from .stats import GMMStats

logger = logging.getLogger("emkit")


def foreign_device(X):
    """The :class:`~emkit._backend._device.Device` of a non-numpy array (PyTorch, CuPy or another
    array API namespace), or ``None`` for numpy, dask, lists and other host input."""
    if isinstance(X, np.ndarray) or not (hasattr(X, "__array_namespace__") or
                                         type(X).__module__.startswith(("torch", "cupy"))):
        return None
    if is_dask_collection(X):
        return None
    xp = _xp.namespace(X)
    lib = _xp.library(xp)
    device = _xp.device_of(X)
    return _device.Device(lib if lib in ("torch", "cupy") else "generic", xp, device, str(device))


def fit_device(X, dask_on_workers: bool = False):
    """Where ``fit`` runs its E-steps: ``None`` for the numpy path, else a Device.

    ``dask_on_workers``: dask input gives ``None`` (the backend's ``map_reduce``, whose chunk
    function uses the device configured where each chunk runs) instead of the caller's device.
    """
    if _config._CONFIG["device"] == "cpu" and isinstance(X, np.ndarray):
        return None  # the common case, first and cheap
    dev = foreign_device(X)
    if dev is not None:
        return dev
    if _config._CONFIG["device"] == "cpu" or (dask_on_workers and is_dask_collection(X)):
        return None
    dev = _device.current_device()
    return None if dev.is_cpu else dev


def to_host(X):
    """``X`` itself for host input, a numpy float64 copy of an array on a device."""
    return X if foreign_device(X) is None else _device.to_numpy(X)


def put(a, dev, dtype=None):
    """numpy ``a`` on ``dev`` (``dtype`` a numpy dtype; default: keep)."""
    if dev.library in ("torch", "cupy"):
        return _device.to_device(a, dev, dtype)
    return dev.xp.asarray(np.asarray(a, dtype=dtype), device=dev.device)


def _xp_dtype(dev, dtype):
    return getattr(dev.xp, np.dtype(dtype).name)


def check_device_frames(X, name: str = "X", n_features: int | None = None,
                        owner: str = "the model"):
    """A 2-D, non-empty, finite frame matrix of a device namespace (the checks of
    :func:`emkit._validation.check_frames`), returned unchanged."""
    xp = _xp.namespace(X)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (n_samples, n_features) array; got shape "
                         f"{tuple(X.shape)}")
    if not xp.isdtype(X.dtype, "real floating"):
        raise TypeError(f"{name} must hold real floating-point frames; got dtype {X.dtype}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, but {owner} is expecting "
                         f"{n_features} features as input (shape {tuple(X.shape)})")
    if not bool(xp.all(xp.isfinite(X))):
        raise ValueError(f"Input {name} contains NaN or infinity.")
    return X


def check_fit_frames(X, n_features, owner: str):
    """``X`` checked as training frames: :func:`emkit._validation.check_frames` for host input,
    :func:`check_device_frames` for arrays on a device."""
    if foreign_device(X) is None:
        from ._validation import check_frames

        return check_frames(X, "X", n_features=n_features, ensure_2d=True, owner=owner,
                            known_rows=True)
    return check_device_frames(X, "X", n_features, owner)


class DeviceFrames:
    """Training frames ``X`` (N, D) for the E-steps on ``dev``, in the compute ``dtype``: copied
    once (``resident``) or streamed block by block every pass."""

    def __init__(self, X, dev, dtype, what: str):
        self.X, self.dev, self.dtype = X, dev, np.dtype(dtype)
        self.shape = tuple(int(s) for s in X.shape)
        nbytes = self.shape[0] * self.shape[1] * self.dtype.itemsize
        label = f"{what}: {self.shape[0]} x {self.shape[1]} frames in {self.dtype.name}"
        self.data = None
        if foreign_device(X) is not None:  # already on its device: no copy, nothing to decide
            self.resident = True
            target = _xp_dtype(dev, dtype)
            self.data = X if X.dtype == target else dev.xp.astype(X, target)
            logger.info("%s (%.1f MB) on %s (%s): already on the device", label, nbytes / 2**20,
                        dev.name, dev.library)
            return
        self.resident = _staging.copy_once(nbytes, dev, label)
        if self.resident:
            self.data = self._copy_all()

    def _copy_all(self):
        if is_dask_collection(self.X):
            parts = [put(np.asarray(b), self.dev, self.dtype) for b in self._dask_chunks()]
            return parts[0] if len(parts) == 1 else self.dev.xp.concat(parts, axis=0)
        return put(self.X, self.dev, self.dtype)

    def _dask_chunks(self):
        for i in range(self.X.numblocks[0]):
            yield self.X.blocks[i].compute()

    def blocks(self, rows: int):
        """Row blocks of at most ``rows`` rows, as arrays on the device."""
        if self.resident:
            n = self.shape[0]
            for i in range(0, n, rows):
                yield self.data[i:min(i + rows, n), ...]
        elif is_dask_collection(self.X):
            for chunk in self._dask_chunks():
                yield from self._stream(chunk, rows)
        else:
            yield from self._stream(self.X, rows)

    def counted_blocks(self, rows: int, what: str):
        """:meth:`blocks`, their rows counted as each is handed over (its work queued on the
        device) by a :class:`~emkit._progress.Progress` named ``what`` (INFO, at most every
        30 s: frames of all)."""
        progress = Progress(what, self.shape[0], "frame")
        for block in self.blocks(rows):
            yield block
            progress.advance(block.shape[0])

    def _stream(self, X, rows):
        yield from _device.stream_blocks(X, self.dev, rows, self.dtype)

    def host(self) -> np.ndarray:
        """The frames as a numpy float64 array (k-means initialisation of device input)."""
        return to_host(self.X)


def _block_rows(n_columns: int, itemsize: int) -> int:
    return get_config()["block_rows"] or gmm_xp.device_block_rows(n_columns, itemsize)


def gmm_statistics(frames: DeviceFrames, coef, second_order: bool = True) -> GMMStats:
    """The E-step of ``fit`` on the device: :class:`~emkit.GMMStats` of all the frames (moments
    about ``coef.shift`` kept, for the M-step) from numpy coefficients ``coef``."""
    from ._gmm_estep import check_stats_finite

    dev = frames.dev
    shift = put(coef.shift, dev, coef.coef.dtype)
    matrix = put(coef.coef, dev)
    exact = gmm_xp.DeviceExactColumns.from_host(coef.exact, coef.n_gaussians,
                                                lambda a: put(a, dev))
    rows = _block_rows(coef.n_gaussians, coef.coef.dtype.itemsize)
    total, acc = gmm_xp.accumulate_blocks(frames.counted_blocks(rows, "GMM statistics"), shift,
                                          matrix, second_order, dev.xp, exact)
    acc = _device.to_numpy(acc)
    n, px, pxx = gmm_xp.split_statistics(acc, coef.n_features, second_order)
    stats = GMMStats._from_shifted(float(total), frames.shape[0], n.copy(),
                                   coef.shift, px.copy(), None if pxx is None else pxx.copy())
    return check_stats_finite(stats)


def kmeans_statistics(frames: DeviceFrames, coef, squares: bool = False):
    """One Lloyd E-step on the device: :class:`~emkit._kmeans_stats.KMeansStats` (numpy float64)
    from numpy :class:`~emkit._kernels.kmeans.CentroidCoefficients` ``coef``."""
    from ._kmeans_stats import KMeansStats

    dev = frames.dev
    arrays = kmeans_xp.CentroidArrays.from_coefficients(coef, lambda a: put(a, dev))
    rows = _block_rows(coef.n_clusters, coef.minus_two_centred_t.dtype.itemsize)
    acc = kmeans_xp.LloydAccumulator(arrays, squares, n_far=coef.n_clusters)
    for block in frames.blocks(rows):
        acc.add(block)
    get = _device.to_numpy
    counts = np.rint(get(acc.counts)).astype(np.int64)
    return KMeansStats(counts, get(acc.sums), float(acc.sum_min_dist), acc.n_samples,
                       None if acc.sq_sums is None else get(acc.sq_sums), get(acc.far_points),
                       get(acc.far_dists), coef)


class DeviceGMM:
    """``GMMMachine.fit`` on a device with the parameters resident there between iterations.

    The machine's weights, means, variances (and variance floor, and the UBM's parameters for
    MAP) go to the device once, at the first E-step; each iteration then computes the E-step
    constants (:func:`emkit._kernels.gmm_xp.coefficients`), the statistics and the M-step
    (:mod:`emkit._gmm_mstep`) there, and reads back one small copy: the log-likelihood (the
    convergence test needs it), the occupancy checks and the new parameters' spreads (which
    Gaussians need exact columns, :func:`emkit._kernels.gmm_xp.exact_columns`).  :meth:`sync`
    writes the parameters back to the machine as numpy float64: at the end of ``fit`` and
    before each checkpoint.
    """

    def __init__(self, machine, X, dev):
        self.machine, self.X, self.dev = machine, X, dev
        self.frames = None
        self.params = None  # dict of device arrays, see _gmm_mstep
        self.spread = None  # numpy (C,): gmm_xp.spreads of self.params
        self.dirty = False  # the device parameters are newer than the machine's

    def _upload(self):
        m = self.machine
        dtype = np.dtype(m.compute_dtype)
        if self.frames is None:  # after the initialisation (which may run k-means on the device)
            self.frames = DeviceFrames(self.X, self.dev, dtype, f"GMM {m.trainer.upper()}")
        self.params = _gmm_arrays(m, self.dev)
        self.spread = _device.to_numpy(gmm_xp.spreads(self.params["means"], self.params["variances"]))
        if m.trainer == "map":
            self.ubm = _gmm_arrays(m.ubm, self.dev)
            alpha = m.map_alpha
            self.alpha = float(alpha) if np.ndim(alpha) == 0 else put(alpha, self.dev, np.float64)

    def e_step(self):
        """``(shift, acc, ll)`` on the device (moments about ``shift``, see ``gmm_xp``)."""
        if self.params is None:
            self._upload()
        xp, p, m = self.dev.xp, self.params, self.machine
        with np.errstate(divide="ignore"):
            log_w = xp.log(p["weights"])
        shift, coef = gmm_xp.coefficients(p["means"], p["variances"], log_w,
                                          _xp_dtype(self.dev, np.dtype(m.compute_dtype)))
        exact = gmm_xp.exact_columns(p["means"], p["variances"], log_w, self.spread)
        rows = _block_rows(coef.shape[1], self.frames.dtype.itemsize)
        blocks = self.frames.counted_blocks(rows, f"GMM {m.trainer.upper()} E-step")
        ll, acc = gmm_xp.accumulate_blocks(blocks, xp.astype(shift, coef.dtype), coef,
                                           m.update_variances, xp, exact)
        return shift, acc, ll

    def m_step(self, stats) -> float:
        """The machine's M-step on the device; returns the average log-likelihood."""
        from ._gmm_mstep import check_occupancy_floor, map_m_step, ml_m_step

        shift, acc, ll = stats
        xp, m = self.dev.xp, self.machine
        n, px, pxx = gmm_xp.split_statistics(acc, shift.shape[0], m.update_variances)
        t = self.frames.shape[0]
        common = dict(update_means=m.update_means, update_variances=m.update_variances,
                      update_weights=m.update_weights, threshold=m.mean_var_update_threshold)
        with np.errstate(divide="ignore", invalid="ignore"):  # (refused below: numpy-backed xp)
            if m.trainer == "map":
                new = map_m_step(self.params, self.ubm, n, t, shift, px, pxx, xp,
                                 relevance_factor=m.map_relevance_factor, alpha=self.alpha, **common)
            else:
                new = ml_m_step(self.params, n, t, shift, px, pxx, xp, **common)
        # one read-back: the checks of the statistics, and the new parameters' spreads
        checks = xp.stack([ll, xp.astype(xp.all(xp.isfinite(n)), xp.float64), xp.min(n)])
        host = _device.to_numpy(xp.concat([checks, gmm_xp.spreads(new["means"], new["variances"])]))
        total, finite, n_min = (float(v) for v in host[:3])
        if not (np.isfinite(total) and finite):
            from types import SimpleNamespace

            from ._gmm_estep import check_stats_finite

            check_stats_finite(SimpleNamespace(log_likelihood=total, n=_device.to_numpy(n)))
        if m.trainer != "map":
            check_occupancy_floor(n_min, m.mean_var_update_threshold, m.update_means,
                                  m.update_variances)
        self.params, self.spread = new, host[3:]  # (nothing is kept from a refused step)
        self.dirty = True
        return total / t

    def state(self) -> dict:
        """The machine's training state (for checkpoints), synchronised first."""
        self.sync()
        return self.machine._training_state()

    def sync(self) -> None:
        """The device parameters written to the machine (numpy float64), if newer."""
        if self.dirty:
            get = _device.to_numpy
            self.machine._update_parameters({k: get(self.params[k])
                                             for k in ("weights", "means", "variances")})
            self.dirty = False


def _gmm_arrays(machine, dev) -> dict:
    """A GMM's parameters and variance floor as float64 arrays on ``dev``."""
    return {"weights": put(machine.weights, dev, np.float64),
            "means": put(machine.means, dev, np.float64),
            "variances": put(machine.variances, dev, np.float64),
            "thresholds": put(np.asarray(machine.variance_thresholds), dev, np.float64)}


class DeviceKMeans:
    """``KMeansMachine.fit``'s Lloyd iterations on a device with the centroids and their
    constants resident there: the statistics (:class:`~emkit._kernels.kmeans_xp.LloydAccumulator`)
    and the M-step (cluster means; empty clusters re-seeded with the farthest rows, in the numpy
    path's order) stay on the device; each iteration reads back the summed distance and the
    number of empty clusters (2 values).  :meth:`sync` sets ``centroids_`` (numpy float64)."""

    def __init__(self, machine, frames: DeviceFrames):
        self.machine, self.frames, self.dev = machine, frames, frames.dev
        self.arrays = None  # kmeans_xp.CentroidArrays of the current centroids
        self.centroids = None
        self.dirty = False

    def e_step(self):
        if self.arrays is None:  # after the initialisation
            self.centroids = put(self.machine.centroids_, self.dev, np.float64)
            self.arrays = kmeans_xp.CentroidArrays.from_centroids(self.centroids)
        rows = _block_rows(self.arrays.n_clusters, 8)
        acc = kmeans_xp.LloydAccumulator(self.arrays, False, n_far=self.arrays.n_clusters)
        for block in self.frames.blocks(rows):
            acc.add(block)
        return acc

    def m_step(self, acc) -> float:
        xp, a = self.dev.xp, self.arrays
        empty = acc.counts == 0
        check = xp.stack([acc.sum_min_dist, xp.sum(xp.astype(empty, xp.float64))])
        total, n_empty = (float(v) for v in _device.to_numpy(check))
        centroids = a.shift + (a.centred + acc.sums / xp.maximum(acc.counts, 1.0)[:, None])
        n_far = acc.far_points.shape[0]
        if n_empty and n_far:
            logger.info("k-means: re-seeding %d empty cluster(s) with the farthest samples",
                        int(n_empty))
            rank = xp.cumulative_sum(xp.astype(empty, xp.int64)) - 1  # j of the j-th empty one
            index = xp.where(empty, rank % n_far, xp.zeros_like(rank))
            centroids = xp.where(empty[:, None], xp.take(acc.far_points, index, axis=0),
                                 centroids)
        self.centroids = centroids
        self.arrays = kmeans_xp.CentroidArrays.from_centroids(centroids)
        self.dirty = True
        self.machine.average_min_distance = total / acc.n_samples
        return self.machine.average_min_distance

    def state(self) -> dict:
        self.sync()
        return {"centroids": self.machine.centroids_}

    def sync(self) -> None:
        if self.dirty:
            from ._fitted import set_fitted

            set_fitted(self.machine, "centroids_", _device.to_numpy(self.centroids), copy=False)
            self.dirty = False
