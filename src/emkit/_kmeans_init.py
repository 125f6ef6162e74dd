"""Initial centroids for k-means: ``random``, ``k-means++`` and emkit's own scalable ``k-means||``.

k-means|| (Bahmani et al., 2012) here draws about ``oversampling_factor * n_clusters`` candidates
per round in one pass over the data, then reclusters the weighted candidates with k-means++ and
Lloyd (scikit-learn) in memory.  Each round is a single ``map_reduce``: every chunk returns the
points that could be selected (bounded by about ``l`` rows per chunk) with a selection key, and the
exact Bahmani rule ``u_i < l d_i^2 / cost`` is applied once the global cost is known.  Uniform
numbers are a hash of (seed, round, row index), so the candidates do not depend on how the data
are chunked: numpy and dask inputs give the same centroids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from . import _progress
from ._backend import is_dask_collection, map_reduce, small_products
from ._kernels import kmeans as kk
from ._kmeans_stats import rows_counted
from ._validation import check_block, check_finite
from ._describe import describe

logger = logging.getLogger("emkit")

INIT_METHODS = ("random", "k-means++", "k-means||")


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def row_uniforms(seed: int, stream: int, first_row: int, n_rows: int) -> np.ndarray:
    """Uniform numbers in (0, 1] that depend only on (seed, stream, row index)."""
    with np.errstate(over="ignore"):
        key = _splitmix64(np.array([seed, stream], dtype=np.uint64)).sum(dtype=np.uint64)
        rows = np.arange(first_row, first_row + n_rows, dtype=np.uint64)
        bits = _splitmix64(rows ^ key) >> np.uint64(11)
    return (bits.astype(np.float64) + 1.0) * (1.0 / 9007199254740992.0)


@dataclass
class _Candidates:
    """Additive result of one k-means|| round: local cost and the rows that may be selected."""

    cost: float
    points: np.ndarray  # (m, D)
    keys: np.ndarray  # (m,) d^2 / u

    def __add__(self, other):
        return _Candidates(self.cost + other.cost, np.concatenate([self.points, other.points]),
                           np.concatenate([self.keys, other.keys]))


def _assign32(X, coef, block_rows, scale, on_rows=None):
    """:func:`emkit._kernels.kmeans.assign` of the rows times ``scale`` with float32 ``coef``; in
    float64 where a row's distance left float32's range (no numpy warning leaks).  ``on_rows(n)``
    (optional) counts the rows of each block done."""
    with np.errstate(over="ignore", invalid="ignore"):
        labels, d2 = kk.assign(X, coef, block_rows, scale, on_rows)
    bad = np.flatnonzero(~np.isfinite(d2))
    if bad.size:
        coef64 = kk.CentroidCoefficients.from_centroids(coef.shift + coef.centred)
        labels[bad], d2[bad] = kk.assign(np.asarray(X[bad]), coef64, block_rows, scale)
    return labels, d2


def _candidates_chunk(X, first_row, coef, seed, stream, ell, block_rows, scale=1.0, check=False,
                      on_rows=None):
    X = np.asarray(X)
    if check:  # a dask chunk (numpy input is checked up front)
        check_block(X, "X", first_row=first_row)
    _, d2 = _assign32(X, coef, block_rows, scale, on_rows)
    local_cost = float(d2.sum())
    u = row_uniforms(seed, stream, first_row, X.shape[0])
    keys = d2 / u
    # the global cost is >= the local one, so this keeps every row the final rule can select
    maybe = keys > local_cost / ell if local_cost > 0 else np.zeros(len(keys), bool)
    return _Candidates(local_cost, np.asarray(X[maybe], dtype=np.float64), keys[maybe])


def _counts_chunk(X, coef, block_rows, scale=1.0, on_rows=None):
    labels = _assign32(np.asarray(X), coef, block_rows, scale, on_rows)[0]
    return np.bincount(labels, minlength=coef.n_clusters)


#: k-means|| scores distances in float32: data whose spread (about the first centre) lies outside
#: these bounds are scaled by a power of two (exact) to a spread of about 1 first.
SPREAD_RANGE = (1e-12, 1e12)


def _scale_for(X, first) -> float:
    """A power of two bringing the spread of the first rows of ``X`` about ``first`` (D,) near 1,
    or 1.0 when it is within :data:`SPREAD_RANGE` (or cannot be told: identical rows)."""
    head = X[:256]
    head = np.asarray(head.compute() if is_dask_collection(head) else head, dtype=np.float64)
    spread = float(np.max(np.abs(head - first), initial=0.0))
    if not np.isfinite(spread) or spread == 0.0 or SPREAD_RANGE[0] <= spread <= SPREAD_RANGE[1]:
        return 1.0
    return float(np.ldexp(1.0, -np.frexp(spread)[1]))


def _take_rows(X, indices) -> np.ndarray:
    indices = np.sort(np.asarray(indices, dtype=np.intp))
    rows = X[indices]
    if is_dask_collection(rows):
        rows = rows.compute()
    return np.asarray(rows, dtype=np.float64)


def _seed_from(rs) -> int:
    if isinstance(rs, np.random.Generator):
        return int(rs.integers(0, 2**63 - 1))
    return int(rs.randint(0, 2**31 - 1))


def distinct_indices(rs, n: int, k: int) -> np.ndarray:
    """``k`` distinct integers drawn uniformly from ``range(n)``, in O(k) memory (not O(n))."""
    if k > n // 2:
        return rs.permutation(n)[:k]
    chosen: dict = {}
    while len(chosen) < k:
        draws = rs.randint(0, n, size=k) if hasattr(rs, "randint") else rs.integers(0, n, size=k)
        for d in draws.tolist():
            if len(chosen) < k:
                chosen.setdefault(d, None)
    return np.fromiter(chosen, dtype=np.intp, count=k)


def init_random(X, n_clusters: int, rs) -> np.ndarray:
    """``n_clusters`` distinct rows drawn uniformly without replacement, in row order."""
    n = X.shape[0]
    if n_clusters > n:
        raise ValueError(f"n_samples={n} is smaller than n_clusters={n_clusters}: cannot pick {n_clusters} distinct initial centroids")
    return _take_rows(X, distinct_indices(rs, n, n_clusters))


def init_kmeans_plusplus(X, n_clusters: int, rs, max_rows: int | None = None) -> np.ndarray:
    """Greedy k-means++ (scikit-learn's).  A dask input is sampled down to ``max_rows`` rows first."""
    from sklearn.cluster import kmeans_plusplus

    n = X.shape[0]
    if n_clusters > n:
        raise ValueError(f"n_samples={n} is smaller than n_clusters={n_clusters}: cannot pick {n_clusters} distinct initial centroids")
    if is_dask_collection(X):
        limit = max_rows or max(256 * n_clusters, 10_000)
        X = _take_rows(X, distinct_indices(rs, n, min(n, limit)))
        check_finite(X, "X")  # dask chunks were not checked up front
    centers, _ = kmeans_plusplus(np.asarray(X, dtype=np.float64), n_clusters,
                                 random_state=_seed_from(rs) % 2**32)  # scikit-learn's seed range
    return centers


def init_kmeans_parallel(X, n_clusters: int, rs, *, n_rounds: int | None = 5,
                         oversampling_factor: float = 2, block_rows: int = kk.DEFAULT_BLOCK_ROWS):
    """Scalable k-means++ (k-means||) with ``l = oversampling_factor * n_clusters``; see the module doc."""
    from sklearn.cluster import KMeans

    n = X.shape[0]
    if n_clusters > n:
        raise ValueError(f"n_samples={n} is smaller than n_clusters={n_clusters}: cannot pick {n_clusters} distinct initial centroids")
    ell = float(oversampling_factor) * n_clusters
    seed = _seed_from(rs)
    centers = _take_rows(X, [_seed_from(rs) % n])
    scale = _scale_for(X, centers[0])  # 1.0 but for extreme spreads: costs below are scaled
    rounds = n_rounds  # None: decided from the first cost below
    r = 0
    started = round_start = _progress.monotonic()
    while rounds is None or r < rounds:
        # float32 products: the candidates only steer a random draw, and a round costs about
        # (number of candidates / n_clusters) Lloyd passes, so halving it matters on big data
        coef = kk.CentroidCoefficients.from_centroids(centers * scale, dtype=np.float32)
        cand = rows_counted(f"k-means|| initialisation: round {r + 1}", map_reduce,
                            _candidates_chunk, X, coef, seed, r, ell, block_rows, scale,
                            is_dask_collection(X), with_offset=True)
        if rounds is None:  # the reference's rule: about ln(initial cost) rounds (unscaled cost)
            rounds = 0 if cand.cost <= 0 else max(0, int(np.round(np.log(cand.cost) - 2 * np.log(scale))))
            if r >= rounds:
                break
        if cand.cost <= 0:
            break
        chosen = cand.keys > cand.cost / ell
        new = cand.points[chosen][np.argsort(-cand.keys[chosen], kind="stable")]
        centers = np.vstack([centers, new])
        round_start = log_round("", r, rounds, cand.cost / scale**2, len(centers), round_start)
        r += 1
    centers = np.unique(centers, axis=0)
    if len(centers) < n_clusters:
        logger.warning("k-means||: found %d distinct candidates for %d clusters; adding random rows",
                       len(centers), n_clusters)
        extra = init_random(X, n_clusters, rs)
        is_new = ~(extra[:, None, :] == centers[None]).all(axis=-1).any(axis=1)
        fill = np.concatenate([extra[is_new], extra[~is_new]])[: n_clusters - len(centers)]
        return np.vstack([centers, fill])
    coef = kk.CentroidCoefficients.from_centroids(centers * scale, dtype=np.float32)
    weights = rows_counted("k-means|| initialisation: candidates' weights", map_reduce,
                           _counts_chunk, X, coef, block_rows, scale).astype(np.float64)
    km = KMeans(n_clusters=n_clusters, n_init=1, random_state=_seed_from(rs) % (2**31 - 1))
    with small_products():  # reclustering the candidates: BLAS threads only add overhead
        km.fit(centers * scale, sample_weight=weights)
    log_done("", n_clusters, len(centers), started)
    return km.cluster_centers_ / scale


def log_round(where: str, r: int, rounds: int, cost: float, candidates: int,
              round_start: float) -> float:
    """Log the k-means|| round ``r`` (from 0) of ``rounds`` that began at ``round_start``
    (INFO: a few rounds, each a few passes over the data); the time it ends."""
    now = _progress.monotonic()
    logger.info("k-means|| initialisation%s: round %d of %d, sum of squared distances %.6g, %d "
                "candidates, took %s",
                where, r + 1, rounds, cost, candidates, _progress.format_duration(now - round_start))
    return now


def log_done(where: str, n_clusters: int, candidates: int, started: float) -> None:
    logger.info("k-means|| initialisation%s: %d centroids from %d candidates (%s)", where,
                n_clusters, candidates, _progress.format_duration(_progress.monotonic() - started))


def check_init_method(init_method, n_clusters: int) -> None:
    """Raise unless ``init_method`` is a method name or a finite (n_clusters, D) array."""
    if isinstance(init_method, str):
        if init_method not in INIT_METHODS:
            raise ValueError(f"init_method must be one of {set(INIT_METHODS)} or an array; "
                             f"got {describe(init_method)}")
        return
    if not isinstance(init_method, (np.ndarray, list, tuple)) and not is_dask_collection(init_method):
        raise TypeError(f"init_method must be a str or an array; got {type(init_method).__name__}")
    try:
        init = np.asarray(init_method, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"init_method must be a method name or an array of numbers; "
                        f"got {describe(init_method)}") from None
    if init.ndim != 2 or init.shape[0] != n_clusters or init.shape[1] == 0:
        raise ValueError(f"init_method array must have shape (n_clusters={n_clusters}, n_features); got {init.shape}")
    if not np.isfinite(init).all():
        raise ValueError("init_method array contains NaN or infinity")


def initial_centroids(X, n_clusters, init_method, rs, *, init_max_iter, oversampling_factor,
                      block_rows):
    """Dispatch on ``init_method`` (a method name or a (K, D) array)."""
    if isinstance(init_method, str):
        if init_method == "random":
            return init_random(X, n_clusters, rs)
        if init_method == "k-means++":
            return init_kmeans_plusplus(X, n_clusters, rs)
        if init_method == "k-means||":
            return init_kmeans_parallel(X, n_clusters, rs, n_rounds=init_max_iter,
                                        oversampling_factor=oversampling_factor, block_rows=block_rows)
        raise ValueError(f"init_method must be one of {set(INIT_METHODS)} or an array; "
                         f"got {describe(init_method)}")
    if isinstance(init_method, (np.ndarray, list, tuple)) or is_dask_collection(init_method):
        init = np.asarray(init_method, dtype=np.float64)
        if init.ndim != 2 or init.shape[0] != n_clusters:
            raise ValueError(
                f"init_method array must have shape (n_clusters={n_clusters}, n_features={X.shape[1]}); "
                f"got {init.shape}"
            )
        if init.shape[1] != X.shape[1]:
            raise ValueError(
                f"init_method array has {init.shape[1]} features but X has {X.shape[1]}"
            )
        if not np.isfinite(init).all():
            raise ValueError("init_method array contains NaN or infinity")
        return init.copy()
    raise TypeError(f"init_method must be a str or an array; got {type(init_method).__name__}")
