"""The module-level functions of the reference's ``bob.learn.em.kmeans`` module (re-exported by
:mod:`emkit.kmeans`): distances to the centroids, and one Lloyd step split into the statistics of
chunks (:func:`e_step`) and their combination (:func:`m_step`)."""

from __future__ import annotations

import numpy as np

from ._backend import is_dask_collection
from ._kernels import kmeans as kk
from ._kmeans_stats import block_rows
from ._validation import check_block, check_frames, check_positive_int


def get_centroids_distance(x, means) -> np.ndarray:
    """Squared Euclidean distances between every centroid and every sample.

    Exact element-wise differences are used (no expansion), as in the reference.

    Parameters
    ----------
    x : array-like of shape (N, D) or (D,), or dask array of shape (N, D)
        The samples; a 1-D ``x`` is one sample.  NaN or inf is a ``ValueError``.
    means : array-like of shape (K, D)
        The centroids.

    Returns
    -------
    ndarray of shape (K, N)
        Float64, centroids first (the transpose of scikit-learn's ``KMeans.transform``); a lazy
        dask array for dask ``x``.
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
    """Index of the nearest centroid of each sample; ties go to the lowest index.

    Parameters
    ----------
    centroids_dist : array-like of shape (K, N)
        Distances, centroids first, as :func:`get_centroids_distance` returns them.

    Returns
    -------
    ndarray of shape (N,)
        Integer indices in ``[0, K)`` (a lazy dask array for a dask input).
    """
    return np.argmin(centroids_dist, axis=0)


def e_step(data, means):
    """The statistics of one Lloyd step over one chunk of data, as the reference's ``e_step``.

    The statistics of several chunks are combined by :func:`m_step`.

    Parameters
    ----------
    data : array-like of shape (N, D), or dask array of shape (N, D)
        One chunk of samples (a dask array is computed here).  NaN or inf is a ``ValueError``.
    means : array-like of shape (K, D)
        The centroids.

    Returns
    -------
    counts : ndarray of shape (K,)
        Int64 number of samples nearest to each centroid.
    sums : ndarray of shape (K, D)
        Float64 sum of the samples nearest to each centroid.
    mean_min_distance : numpy.float64
        Mean over ``data`` of the squared distance of a sample to its nearest centroid.
    """
    means = check_frames(means, "means")
    if is_dask_collection(data):  # one chunk of the reference's loop: computed here
        data = data.compute()
    data = np.asarray(check_frames(data, "data", n_features=means.shape[1]), dtype=np.float64)
    coef = kk.CentroidCoefficients.from_centroids(means)
    r = kk.lloyd_statistics(data, coef, block_rows())
    counts = r["counts"]
    # the kernel sums deviations from the centroids; the reference sums the samples
    sums = r["sums"] + counts[:, None] * (coef.shift + coef.centred)
    return counts, sums, np.float64(r["sum_min_dist"] / len(data))


def m_step(stats, n_samples, means=None):
    """New centroids and the average squared distance to the nearest centroid, from the
    :func:`e_step` results of the chunks of the data.

    Parameters
    ----------
    stats : iterable of (counts, sums, mean_min_distance)
        The :func:`e_step` result of each chunk (at least one).
    n_samples : int
        Number of samples N of all the chunks together (>= 1).
    means : array-like of shape (K, D), optional
        The centroids of the E-step: a cluster that got no sample keeps its centroid.  Without
        them an empty cluster is a ``ValueError`` (the reference made it NaN;
        ``KMeansMachine.fit`` re-seeds it from the farthest samples instead).

    Returns
    -------
    centroids : ndarray of shape (K, D)
        The mean of the samples nearest to each centroid.
    average_min_distance : float
        The true average over the N samples: the chunks' means weighted by their sizes, divided
        by ``n_samples`` (the reference divided the sum of the chunks' means by ``n_samples``, a
        value ``n_samples`` times too small for one chunk).
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


def accumulate_indices_means_vars(data, means):
    """Per-cluster sums of one chunk of data for the cluster variances and weights, as the
    reference's helper of the same name (combined by :func:`reduce_indices_means_vars`).

    Parameters
    ----------
    data : array-like of shape (N, D), or dask array of shape (N, D)
        One chunk of samples (a dask array is computed here).  NaN or inf is a ``ValueError``.
    means : array-like of shape (K, D)
        The centroids.

    Returns
    -------
    indices : ndarray of shape (N,)
        The nearest centroid of every sample.
    means_sum : ndarray of shape (K, D)
        Float64 sum of the samples nearest to each centroid.
    variances_sum : ndarray of shape (K, D)
        Float64 sum of their squares.
    """
    means = check_frames(means, "means")
    if is_dask_collection(data):
        data = data.compute()
    data = np.asarray(check_frames(data, "data", n_features=means.shape[1], allow_empty=True),
                      dtype=np.float64)
    indices = get_closest_centroid_index(kk.squared_distances(data, means))
    k = len(means)
    with np.errstate(over="ignore"):  # (overflowing sums: refused by the reduction)
        columns = [(np.bincount(indices, weights=x, minlength=k),
                    np.bincount(indices, weights=x * x, minlength=k)) for x in data.T]
    means_sum = np.stack([c[0] for c in columns], axis=1) if columns else np.zeros((k, 0))
    variances_sum = np.stack([c[1] for c in columns], axis=1) if columns else np.zeros((k, 0))
    return indices, means_sum, variances_sum


def reduce_indices_means_vars(stats):
    """Cluster variances and weights from the :func:`accumulate_indices_means_vars` results of
    the chunks of the data.

    Unlike the reference (NaN), a cluster that got no sample has weight 0 and the variance of
    all the data, as in ``KMeansMachine.get_variances_and_weights_for_each_cluster``; a variance
    made slightly negative by rounding is 0.

    Parameters
    ----------
    stats : iterable of (indices, means_sum, variances_sum)
        One :func:`accumulate_indices_means_vars` result per chunk (at least one sample in all).

    Returns
    -------
    variances : ndarray of shape (K, D)
        Biased per-cluster variances.
    weights : ndarray of shape (K,)
        The fraction of the samples nearest to each centroid.
    """
    stats = list(stats)
    if not stats:
        raise ValueError("stats is empty: expected the accumulate_indices_means_vars results of "
                         "at least one chunk")
    means_sum = sum(np.asarray(s[1], dtype=np.float64) for s in stats)
    variances_sum = sum(np.asarray(s[2], dtype=np.float64) for s in stats)
    counts = np.bincount(np.concatenate([np.asarray(s[0], dtype=np.int64) for s in stats]),
                         minlength=len(means_sum))
    n_samples = counts.sum()
    if n_samples == 0:
        raise ValueError("stats hold no sample: cannot estimate cluster variances and weights")
    with np.errstate(invalid="ignore"):
        variances = _biased_variances(means_sum, variances_sum, np.maximum(counts, 1)[:, None])
        everything = _biased_variances(means_sum.sum(0), variances_sum.sum(0), n_samples)
    if not (np.isfinite(variances).all() and np.isfinite(everything).all()):
        raise ValueError("data: the squared samples overflow float64 (|x| above about 1e154): "
                         "rescale the data")
    variances[counts == 0] = everything
    return variances, counts / n_samples


def _biased_variances(sums, sums_of_squares, counts):
    means = sums / counts
    return np.maximum(sums_of_squares / counts - means * means, 0.0)


def _distances_block(block, means, block_info=None):
    """(rows, K) squared distances of one dask chunk; NaN/inf in the chunk are refused."""
    block = np.asarray(block)
    check_block(block, "X", block_info)
    return kk.squared_distances(block, means).T
