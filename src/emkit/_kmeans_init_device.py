"""k-means|| initialisation with the candidate scoring on a device.

The rounds of :func:`emkit._kmeans_init.init_kmeans_parallel` spend their time in the squared
distance of every row to its nearest candidate (float32 products, about ``l / K`` Lloyd passes
per round).  Here those distances (:func:`emkit._kernels.kmeans_xp.min_distances`) and the final
counts per candidate are computed on the device, blocks of :class:`~emkit._device_fit.DeviceFrames`
at a time; the N distances come back once per round, and the draw (the row-hashed uniforms and
Bahmani's rule ``u_i < l d_i^2 / cost``), the seeds and the weighted reclustering of the
candidates are the numpy path's, with the same random numbers in the same order: the same
candidates and centroids as the numpy path (up to float32 rounding of distances at the selection
threshold).
"""

from __future__ import annotations

import logging

import numpy as np

from ._backend import _device, small_products
from ._device_fit import DeviceFrames, _block_rows, put
from ._kernels import kmeans as kk
from ._kernels import kmeans_xp
from . import _progress
from ._kmeans_init import _seed_from, init_random, log_done, log_round, row_uniforms

logger = logging.getLogger("emkit")


def _arrays(centers, frames):
    coef = kk.CentroidCoefficients.from_centroids(centers, dtype=np.float32)
    return kmeans_xp.CentroidArrays.from_coefficients(coef, lambda a: put(a, frames.dev))


def _per_row(frames: DeviceFrames, centers, which: int) -> np.ndarray:
    """Labels (``which=0``, int64) or squared distances (``which=1``, float64) of every row to
    its nearest candidate, as one numpy array (N,)."""
    arrays = _arrays(centers, frames)
    rows = _block_rows(len(centers), 4)
    xp = frames.dev.xp
    parts = [kmeans_xp.assign_block(b, arrays)[which] for b in frames.blocks(rows)]
    whole = parts[0] if len(parts) == 1 else xp.concat(parts)
    return _device.to_numpy(whole, dtype=np.int64 if which == 0 else np.float64)


def _rows(frames: DeviceFrames, indices) -> np.ndarray:
    indices = np.sort(np.asarray(indices, dtype=np.int64))
    if frames.resident and frames.data is not None and not isinstance(frames.X, np.ndarray):
        xp = frames.dev.xp
        picked = xp.take(frames.data, put(indices, frames.dev), axis=0)
        return _device.to_numpy(picked)
    return np.asarray(frames.X[indices], dtype=np.float64)


def init_kmeans_parallel_device(frames: DeviceFrames, n_clusters: int, rs, *, n_rounds=5,
                                oversampling_factor: float = 2):
    """:func:`emkit._kmeans_init.init_kmeans_parallel` with the distances on the device."""
    from sklearn.cluster import KMeans

    n = frames.shape[0]
    if n_clusters > n:
        raise ValueError(f"n_samples={n} is smaller than n_clusters={n_clusters}: cannot pick "
                         f"{n_clusters} distinct initial centroids")
    ell = float(oversampling_factor) * n_clusters
    seed = _seed_from(rs)
    centers = _rows(frames, [_seed_from(rs) % n])
    rounds = n_rounds
    r = 0
    started = round_start = _progress.monotonic()
    while rounds is None or r < rounds:
        d2 = _per_row(frames, centers, 1)
        cost = float(d2.sum())
        if rounds is None:  # the reference's rule: about ln(initial cost) rounds
            rounds = 0 if cost <= 0 else max(0, int(np.round(np.log(cost))))
            if r >= rounds:
                break
        if cost <= 0:
            break
        keys = d2 / row_uniforms(seed, r, 0, n)
        chosen = np.flatnonzero(keys > cost / ell)
        order = np.argsort(-keys[chosen], kind="stable")
        new = _rows(frames, chosen)  # row order, as the numpy path's candidates
        centers = np.vstack([centers, new[order]])
        round_start = log_round(" (device)", r, rounds, cost, len(centers), round_start)
        r += 1
    centers = np.unique(centers, axis=0)
    if len(centers) < n_clusters:
        logger.warning("k-means||: found %d distinct candidates for %d clusters; adding random "
                       "rows", len(centers), n_clusters)
        extra = init_random(frames.host(), n_clusters, rs)
        is_new = ~(extra[:, None, :] == centers[None]).all(axis=-1).any(axis=1)
        fill = np.concatenate([extra[is_new], extra[~is_new]])[: n_clusters - len(centers)]
        return np.vstack([centers, fill])
    weights = np.bincount(_per_row(frames, centers, 0), minlength=len(centers)).astype(np.float64)
    km = KMeans(n_clusters=n_clusters, n_init=1, random_state=_seed_from(rs) % (2**31 - 1))
    with small_products():
        km.fit(centers, sample_weight=weights)
    log_done(" (device)", n_clusters, len(centers), started)
    return km.cluster_centers_


def initialize_on_device(machine, frames: DeviceFrames) -> None:
    """``machine.initialize`` for frames on a device: k-means|| scores its candidates there;
    the other methods (a few rows, or scikit-learn's k-means++) run on the host data."""
    from ._fitted import set_fitted
    from ._validation import check_random_state

    if not (isinstance(machine.init_method, str) and machine.init_method == "k-means||"):
        machine._initialize(frames.host())
        return
    machine._check_hyperparameters()
    rs = check_random_state(machine.random_state)
    centroids = init_kmeans_parallel_device(frames, machine.n_clusters, rs,
                                            n_rounds=machine.init_max_iter,
                                            oversampling_factor=machine.oversampling_factor)
    set_fitted(machine, "centroids_", centroids, copy=False)
