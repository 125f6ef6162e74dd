"""Training GMMs and k-means on a device (``emkit.set_config(device=...)``, or PyTorch/CuPy input).

The estimators call :func:`fit_device` once per ``fit``: ``None`` (numpy input, CPU device: a
dict lookup and an ``isinstance``) keeps the numpy path untouched.  Otherwise the frames become a
:class:`DeviceFrames`: copied to the device once, or streamed from host memory block by block
every iteration through :func:`emkit._backend._device.stream_blocks` (pinned buffers, copies
overlapping compute), as :func:`emkit._backend._device.copy_once` decides (docs/gpu.md); the
decision is logged at INFO level.  Input that already lives on a device (PyTorch tensors, CuPy
arrays) stays there.

Each E-step runs the namespace-generic kernels (:mod:`emkit._kernels.gmm_xp`,
:mod:`emkit._kernels.kmeans_xp`) over the blocks with the accumulators on the device; only the
summed statistics ((C, 2D+1) for a GMM, (K, D) sums for k-means) and the log-likelihood come
back, once per iteration, for the float64 M-step of the numpy path (O(C D): the same code, so the
fitted parameters are numpy float64 and equal to the numpy path's within rounding).  The E-step
constants of the new parameters go to the device once per iteration ((2D+1) x C values).
"""

from __future__ import annotations

import logging

import numpy as np

from ._backend import _device, _staging, is_dask_collection
from ._config import _CONFIG, get_config
from ._kernels import _xp, gmm_xp, kmeans_xp
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
    if _CONFIG["device"] == "cpu" and isinstance(X, np.ndarray):
        return None  # the common case, first and cheap
    dev = foreign_device(X)
    if dev is not None:
        return dev
    if _CONFIG["device"] == "cpu" or (dask_on_workers and is_dask_collection(X)):
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

    def _stream(self, X, rows):
        if _staging._host_tensors(self.dev):  # PyTorch CPU tensors (tests): plain copies
            for i in range(0, X.shape[0], rows):
                yield put(np.asarray(X[i:i + rows]), self.dev, self.dtype)
            return
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
    rows = _block_rows(coef.n_gaussians, coef.coef.dtype.itemsize)
    total, acc = gmm_xp.accumulate_blocks(frames.blocks(rows), shift, matrix, second_order, dev.xp)
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
