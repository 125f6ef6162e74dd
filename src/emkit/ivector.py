"""i-vectors (Dehak et al., 2011): ``IVectorMachine`` and helpers, as ``bob.learn.em.ivector``.

The machine learns the total variability matrix ``T`` (C, D, R) and the residual diagonal
covariance ``sigma`` (C, D) from per-utterance :class:`~emkit.stats.GMMStats` computed against a
UBM, and maps each utterance to its i-vector ``w`` (R,), the posterior mean of the latent factor
in ``mean supervector = m + T w``.  Module-level :func:`e_step`, :func:`m_step`,
:class:`IVectorStats` and the ``compute_*`` helpers mirror the reference's.

How it is computed (:mod:`emkit._kernels.ivector`): utterances are processed in batches of
bounded size (``batch_size``; by default the accumulators plus a batch's temporaries take at most
1.5x the accumulators + 256 MB, per thread when each thread has its own accumulators); the
posterior precisions of a batch come from one matrix product over Gaussians and are factorised
together by a stacked Cholesky decomposition; their inverses, needed for ``E[w w']``, go through
the triangular factors.  The accumulators are additive, so a list of statistics is one task and a
``dask.bag`` of them is one task per partition, summed in a fixed order.

Statistics far from the origin: the E-step centres them on the UBM means, the second-order
ones (``S - 2 F m + n m**2``, whose terms are each about ``n m**2``) in compensated arithmetic
(:func:`emkit._kernels.ivector.centred_second_moments`), so that emkit adds no error to what the
GMMStats hold.  What they hold is limited: far from the origin (``|m| >> sigma``) ``sum_pxx``
keeps about ``16 - log10(m**2 / sigma**2)`` digits of the variances (none at 1e8).

Training objective and convergence: each E-step also computes the log-likelihood of the
statistics under the current model (Kenny et al., 2005)::

    log p_s = - sum_c n_sc (D log 2 pi + log|sigma_c|) / 2 - sum_c tr(sigma_c^-1 Snorm_sc) / 2
              + b_s' w_s / 2 - log|P_s| / 2

(``Snorm`` the second-order statistics centred on the UBM means, ``P_s`` the posterior precision,
``b_s`` its linear term, ``w_s`` the i-vector): the density of the utterance's frames given their
alignments, with w integrated out.  EM never decreases it.  ``convergence_threshold`` stops training when the
relative change of its average per utterance between two iterations is at most the threshold
(the reference ignored the parameter).

Length normalisation, LDA and PLDA are not part of the reference.  Chain them from scikit-learn
on the i-vectors, e.g. whitening, length normalisation, LDA then WCCN::

    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer
    from emkit.wccn import WCCN
    from emkit.whitening import Whitening

    ivectors = machine.transform(train_stats)            # (S, R) ndarray
    backend = make_pipeline(Whitening(), Normalizer(),    # Normalizer(): unit L2 norm per row
                            LinearDiscriminantAnalysis(n_components=150), WCCN())
    backend.fit(ivectors, speaker_labels)
    projected = backend.transform(machine.transform(test_stats))
"""

from __future__ import annotations

import copy
import logging
import numbers

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

from ._backend import is_dask_collection, map_ordered, map_reduce, n_threads, single_threaded_blas
from ._checkpoint import resumable_em
from ._kernels import ivector as kiv
from ._validation import check_positive_int, check_random_state
from .gmm import GMMMachine
from .stats import GMMStats, as_stats_sequence

logger = logging.getLogger("emkit")

__all__ = [
    "IVectorMachine",
    "IVectorStats",
    "e_step",
    "m_step",
    "compute_tct_sigmac_inv",
    "compute_tct_sigmac_inv_tc",
    "compute_id_tt_sigma_inv_t",
    "compute_tt_sigma_inv_fnorm",
]


# ---------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------


class IVectorStats:
    """Additive accumulators of the i-vector E-step (``a + b`` = statistics of both data sets).

    Attributes
    ----------
    nij_sigma_wij2 : ndarray (C, R, R)
        ``sum_s n_sc E[w_s w_s']``.
    fnorm_sigma_wij : ndarray (C, D, R)
        ``sum_s (F_sc - n_sc m_c) E[w_s]'``.
    snormij : ndarray (C, D)
        ``sum_s (S_sc - 2 F_sc m_c + n_sc m_c**2)``.
    nij : ndarray (C,)
        ``sum_s n_sc``.
    log_likelihood : float
        Sum over utterances of the log-likelihood of their statistics (emkit addition).
    n_sessions : int
        Number of accumulated utterances (emkit addition).
    """

    def __init__(self, dim_c: int, dim_d: int, dim_t: int):
        self.dim_c, self.dim_d, self.dim_t = dim_c, dim_d, dim_t
        self.nij_sigma_wij2 = np.zeros((dim_c, dim_t, dim_t))
        self.fnorm_sigma_wij = np.zeros((dim_c, dim_d, dim_t))
        self.snormij = np.zeros((dim_c, dim_d))
        self.nij = np.zeros((dim_c,))
        self.log_likelihood = 0.0
        self.n_sessions = 0

    _FIELDS = ("nij_sigma_wij2", "fnorm_sigma_wij", "snormij", "nij", "log_likelihood",
               "n_sessions")

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, D, R)."""
        return (self.dim_c, self.dim_d, self.dim_t)

    def _check(self, other):
        if not isinstance(other, IVectorStats):
            raise TypeError(f"can only add IVectorStats to IVectorStats; got "
                            f"{type(other).__name__}")
        if self.shape != other.shape:
            raise ValueError(f"Cannot add stats of different shapes: {self.shape} and "
                             f"{other.shape}")

    def __add__(self, other: "IVectorStats") -> "IVectorStats":
        self._check(other)
        out = IVectorStats.__new__(IVectorStats)
        out.dim_c, out.dim_d, out.dim_t = self.shape
        for name in self._FIELDS:
            setattr(out, name, getattr(self, name) + getattr(other, name))
        return out

    def __radd__(self, other):
        if isinstance(other, int) and other == 0:  # sum(list_of_stats)
            return self
        return NotImplemented

    def __iadd__(self, other: "IVectorStats") -> "IVectorStats":
        self._check(other)
        for name in self._FIELDS:
            value = getattr(self, name)
            if isinstance(value, np.ndarray):
                value += getattr(other, name)
            else:
                setattr(self, name, value + getattr(other, name))
        return self

    def __repr__(self) -> str:
        return (f"IVectorStats(dim_c={self.dim_c}, dim_d={self.dim_d}, dim_t={self.dim_t}, "
                f"n_sessions={self.n_sessions})")


# ---------------------------------------------------------------------------------------------
# the reference's helpers (one utterance)
# ---------------------------------------------------------------------------------------------


def compute_tct_sigmac_inv(T: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``T_c' sigma_c^-1`` for each Gaussian: (C, R, D)."""
    return np.asarray(T).transpose(0, 2, 1) / np.asarray(sigma)[:, None, :]


def compute_tct_sigmac_inv_tc(T: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``T_c' sigma_c^-1 T_c`` for each Gaussian: (C, R, R)."""
    return compute_tct_sigmac_inv(T, sigma) @ np.asarray(T)


def compute_id_tt_sigma_inv_t(stats: GMMStats, T: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Posterior precision ``I + sum_c n_c T_c' sigma_c^-1 T_c`` of one utterance: (R, R)."""
    C, D, R = np.shape(T)
    tst = compute_tct_sigmac_inv_tc(T, sigma).reshape(C, R * R)
    return np.eye(R) + (np.asarray(stats.n, dtype=np.float64) @ tst).reshape(R, R)


def compute_tt_sigma_inv_fnorm(ubm_means: np.ndarray, stats: GMMStats, T: np.ndarray,
                               sigma: np.ndarray) -> np.ndarray:
    """``sum_c T_c' sigma_c^-1 (F_c - n_c m_c)`` of one utterance: (R,)."""
    n = np.asarray(stats.n, dtype=np.float64)
    fnorm = np.asarray(stats.sum_px, dtype=np.float64) - n[:, None] * ubm_means
    t_sigma_inv = np.asarray(T) / np.asarray(sigma)[:, :, None]
    return fnorm.reshape(-1) @ t_sigma_inv.reshape(fnorm.size, -1)


# ---------------------------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------------------------


def _check_stats_sequence(X, name: str = "X"):
    """A non-empty list of GMMStats, or a dask bag (validated partition by partition); a numpy
    object array of GMMStats (``np.array(list_of_stats)``) is a list."""
    X = as_stats_sequence(X)
    if is_dask_collection(X):
        if not hasattr(X, "npartitions") or hasattr(X, "chunks"):
            raise TypeError(f"{name} must be a list of GMMStats or a dask bag of them; got a "
                            f"{type(X).__name__}")
        return X
    if isinstance(X, GMMStats):
        raise TypeError(f"{name} must be a list of GMMStats (one per utterance); got a single "
                        "GMMStats")
    if isinstance(X, np.ndarray) or not hasattr(X, "__iter__"):
        raise TypeError(f"{name} must be a list of GMMStats (one per utterance); got "
                        f"{type(X).__name__}")
    X = list(X)
    if not X:
        raise ValueError(f"{name} is empty: expected at least one GMMStats")
    return X


def _stack_batch(batch, C: int, D: int, offset: int, name: str, indexed: bool = True,
                 second_order: bool = True):
    """Stack GMMStats into n (B, C), sum_px and sum_pxx (B, C, D), checking shapes and values
    (without sum_pxx when not ``second_order``)."""

    def label(i):
        return f"{name}[{offset + i}]" if indexed else name

    for i, s in enumerate(batch):
        if not isinstance(s, GMMStats):
            raise TypeError(f"{label(i)} must be a GMMStats; got {type(s).__name__}")
        if (np.shape(s.n) != (C,) or np.shape(s.sum_px) != (C, D)
                or (second_order and np.shape(s.sum_pxx) != (C, D))):
            raise ValueError(
                f"{label(i)} has statistics of shape n {np.shape(s.n)}, sum_px "
                f"{np.shape(s.sum_px)}; the UBM expects n ({C},) and sum_px/sum_pxx ({C}, {D})"
            )
    fields = ("n", "sum_px", "sum_pxx") if second_order else ("n", "sum_px")
    arrays = tuple(_stacked(batch, field) for field in fields)
    for field, a in zip(fields, arrays):
        if not np.isfinite(a).all():
            bad = int(np.argwhere(~np.isfinite(a))[0][0])
            raise ValueError(f"{label(bad)}.{field} contains NaN or infinity")
    return arrays


def _stacked(batch, field):
    """One field of a list of GMMStats as one float64 array (B, ...): one copy, no temporaries."""
    first = np.asarray(getattr(batch[0], field))
    out = np.empty((len(batch),) + first.shape)
    for i, s in enumerate(batch):
        out[i] = getattr(s, field)
    return out


def _estep_chunk(items, pre: kiv.Precomputed, batch_size: int, name: str = "X",
                 threads: int = 1) -> IVectorStats:
    """E-step statistics of a list of GMMStats, or of :class:`~emkit._kernels.ivector.CentredBatch`
    (stacked once per ``fit``)."""
    items = items if isinstance(items, list) else list(items)
    C, D, R = pre.shape
    acc = IVectorStats(C, D, R)
    parallel = None if threads <= 1 else (lambda fn, pieces: map_ordered(fn, pieces, threads))
    workspace = {}  # scratch stacks reused from batch to batch
    if items and isinstance(items[0], kiv.CentredBatch):
        for batch in items:
            kiv.accumulate_centred(batch, pre, acc, parallel, threads, workspace)
        kiv.flush_packed(workspace, acc)
        return acc
    for start in range(0, len(items), batch_size):
        n, sum_px, sum_pxx = _stack_batch(items[start : start + batch_size], C, D, start, name)
        kiv.accumulate(n, sum_px, sum_pxx, pre, acc, parallel, threads, workspace)
    kiv.flush_packed(workspace, acc)
    return acc


#: ``fit`` stacks and centres the statistics once (not in every iteration) when their stacked
#: copy takes at most this many bytes.
_CENTRED_CACHE_BYTES = 512 * 2**20


def _centred_batches(X, means, batch_size: int, name: str = "X", shared: bool = False):
    """The list ``X`` of GMMStats as :class:`~emkit._kernels.ivector.CentredBatch` of at most
    ``batch_size`` utterances; unless ``shared`` (the threads split each batch), at least one per
    thread (each thread takes its own batches); None when their copy would exceed
    :data:`_CENTRED_CACHE_BYTES`."""
    C, D = means.shape
    if len(X) * (C * D + C) * 8 > _CENTRED_CACHE_BYTES:
        return None
    size = batch_size if shared else min(batch_size, max(1, -(-len(X) // n_threads())))

    def centre(start):
        n, sum_px, sum_pxx = _stack_batch(X[start : start + size], C, D, start, name)
        return kiv.centre_batch(n, sum_px, sum_pxx, means)

    return map_ordered(centre, range(0, len(X), size))


#: Above this size of the (C, R, R) accumulator, the threads share one accumulator: they split
#: each batch (and the accumulator's rows) instead of each taking a slice of the list with an
#: accumulator of its own.  Small: per-thread accumulators are zeroed (faulted in) and summed in
#: every iteration, which cost more than splitting large batches (C=256, R=200, 400 utterances on
#: 2 threads: E-step 0.87-1.0 s per-thread, 0.55-0.6 s shared; measured).
_MAX_ACCUMULATOR_PER_THREAD = 16 * 2**20


def _shared_accumulator(C: int, R: int) -> bool:
    return C * R * R * 8 > _MAX_ACCUMULATOR_PER_THREAD


def _accumulate(data, pre: kiv.Precomputed, batch_size: int, name: str) -> IVectorStats:
    """E-step statistics of a list (on threads) or a dask bag (one task per partition)."""
    C, _, R = pre.shape
    if isinstance(data, list) and _shared_accumulator(C, R):
        return _estep_chunk(data, pre, batch_size, name, threads=n_threads())
    if isinstance(data, list) and data and isinstance(data[0], kiv.CentredBatch):  # in order
        # one accumulator per thread (contiguous runs of batches), summed pairwise in place
        groups = [data[sl] for sl in kiv._pieces(len(data), n_threads())]
        parts = map_ordered(lambda group: _estep_chunk(group, pre, batch_size), groups)
        while len(parts) > 1:
            for i in range(0, len(parts) - 1, 2):
                parts[i] += parts[i + 1]
            parts = parts[::2]
        return parts[0]
    return map_reduce(_estep_chunk, data, pre, batch_size, name)


def _parallel_map(fn, items):
    return map_ordered(fn, items)


def _batch_size(machine) -> int:
    size = getattr(machine, "batch_size", None)
    if size is None:
        return kiv.default_batch_size(*np.shape(machine.T))
    return check_positive_int(size, "batch_size")


#: Smallest batch worth a thread of its own when projecting.
_MIN_THREAD_BATCH = 32


def _read_only(value):
    if value is None:
        return None
    arr = np.array(value, dtype=np.float64)  # a copy: the caller's array stays writable
    arr.flags.writeable = False
    return arr


# ---------------------------------------------------------------------------------------------
# module-level EM steps
# ---------------------------------------------------------------------------------------------


def e_step(machine: "IVectorMachine", data) -> IVectorStats:
    """E-step statistics of ``data`` (list of GMMStats or dask bag) under ``machine``."""
    data = _check_stats_sequence(data, "data")
    if machine.T is None or machine.sigma is None:
        raise NotFittedError("e_step needs a machine whose T and sigma are set (call fit first)")
    with single_threaded_blas():
        pre = kiv.Precomputed.from_parameters(np.asarray(machine.ubm.means, dtype=np.float64),
                                              np.asarray(machine.T, dtype=np.float64),
                                              np.asarray(machine.sigma, dtype=np.float64))
        return _accumulate(data, pre, _batch_size(machine), "data")


def m_step(machine: "IVectorMachine", stats: IVectorStats) -> "IVectorMachine":
    """Update ``machine.T`` (and ``sigma`` if ``update_sigma``) from ``stats``; returns it."""
    if not isinstance(stats, IVectorStats):
        raise TypeError(f"stats must be an IVectorStats; got {type(stats).__name__}")
    with single_threaded_blas():
        machine.T, machine.sigma = kiv.m_step(
            stats.nij_sigma_wij2, stats.fnorm_sigma_wij, stats.snormij, stats.nij,
            np.asarray(machine.sigma, dtype=np.float64), machine.update_sigma,
            machine.variance_floor, parallel_map=_parallel_map,
            n_pieces=n_threads(),
        )
    return machine


def _project_partition(partition, machine):
    return list(machine._project_batches(list(partition), "X"))


# ---------------------------------------------------------------------------------------------
# the estimator
# ---------------------------------------------------------------------------------------------


class IVectorMachine(BaseEstimator):
    """Total variability model: learns ``T`` and ``sigma``, projects utterances to i-vectors.

    Parameters
    ----------
    ubm : GMMMachine
        The trained universal background model (C Gaussians in D dimensions) that produced the
        statistics.
    dim_t : int
        Dimension R of the i-vectors (rank of ``T``), >= 1.
    convergence_threshold : float or None
        Stop when the relative change of the average log-likelihood per utterance between two
        iterations is at most this (see the module docstring).  None: run ``max_iterations``.
    max_iterations : int or None
        Maximum number of EM iterations; 0 keeps the random initial ``T`` and the UBM variances.
    update_sigma : bool
        Re-estimate ``sigma`` in the M-step (otherwise it stays the UBM variances).
    variance_floor : float
        Floor of the re-estimated ``sigma``.
    random_state : None, int, RandomState or Generator
        Source of the initial ``T ~ N(0, 1)`` (C, D, R).  None draws from numpy's global
        RandomState exactly as the reference did (so ``np.random.seed(s)`` before ``fit``
        reproduces its T); an int seeds a private ``RandomState`` with the stream of
        ``np.random.seed(int)``.  The global generator is never reseeded.
    batch_size : int or None
        Utterances per E-step batch.  None: chosen by
        :func:`emkit._kernels.ivector.default_batch_size` (up to 512, as many as keep the
        accumulators and a batch's temporaries within 1.5x the accumulators + 256 MB).
    checkpoint : path or None
        Resumable training (see :class:`emkit.GMMMachine`): T and sigma are saved atomically
        after every iteration, and the same ``fit`` started again resumes from there.

    Attributes
    ----------
    T : ndarray (C, D, R)
        Total variability matrix, one (D, R) block per Gaussian (None before ``fit``).
    sigma : ndarray (C, D)
        Residual diagonal covariance (None before ``fit``).
    dim_c, dim_d : int
        C and D, set by ``fit``.
    n_iter_ : int
        EM iterations run by the last ``fit``.
    log_likelihood_ : list of float
        Average log-likelihood per utterance at each iteration (before its M-step).
    """

    def __init__(self, ubm: GMMMachine, dim_t: int = 2, convergence_threshold=None,
                 max_iterations=25, update_sigma: bool = True, variance_floor: float = 1e-10,
                 random_state=None, batch_size=None, checkpoint=None):
        self.ubm = ubm
        self.dim_t = dim_t
        self.convergence_threshold = convergence_threshold
        self.max_iterations = max_iterations
        self.update_sigma = update_sigma
        self.variance_floor = variance_floor
        self.random_state = random_state
        self.batch_size = batch_size
        self.checkpoint = checkpoint
        self.dim_c = None
        self.dim_d = None
        self.T = None
        self.sigma = None

    # -- parameters: stored as read-only float64 arrays (assign a new array to change them), so
    # that the projection constants derived from them can be cached between calls
    @property
    def T(self):
        """Total variability matrix (C, D, R), one (D, R) block per Gaussian (None before ``fit``)."""
        return self.__dict__.get("_T")

    @T.setter
    def T(self, value):
        self.__dict__["_T"] = _read_only(value)

    @property
    def sigma(self):
        """Residual diagonal covariance (C, D) (None before ``fit``)."""
        return self.__dict__.get("_sigma")

    @sigma.setter
    def sigma(self, value):
        self.__dict__["_sigma"] = _read_only(value)

    # -- validation --------------------------------------------------------------------------
    def _check_ubm(self):
        ubm = self.ubm
        if not isinstance(ubm, GMMMachine):
            raise TypeError(f"ubm must be a trained GMMMachine; got {type(ubm).__name__}")
        if getattr(ubm, "_means", None) is None or getattr(ubm, "_variances", None) is None:
            raise ValueError("ubm must be a trained GMMMachine (its means/variances are not set)")
        return ubm

    def _check_params(self):
        check_positive_int(self.dim_t, "dim_t", minimum=1)
        check_positive_int(self.max_iterations, "max_iterations", minimum=0, allow_none=True)
        threshold = self.convergence_threshold
        if threshold is not None and (not isinstance(threshold, numbers.Real) or threshold < 0):
            raise ValueError(f"convergence_threshold must be None or a number >= 0; got "
                             f"{threshold!r}")
        if not isinstance(self.variance_floor, numbers.Real) or self.variance_floor < 0:
            raise ValueError(f"variance_floor must be a number >= 0; got {self.variance_floor!r}")
        if self.batch_size is not None:
            check_positive_int(self.batch_size, "batch_size")

    def _check_fitted(self, method: str):
        if self.T is None or self.sigma is None:
            raise NotFittedError(
                "This IVectorMachine is not fitted yet (T and sigma are None): call fit(X) before "
                f"{method}"
            )

    # -- training ----------------------------------------------------------------------------
    def _initial_T(self, shape):
        if self.random_state is None:
            return np.random.normal(0.0, 1.0, shape)  # numpy's global RandomState, as the reference
        return check_random_state(self.random_state).normal(0.0, 1.0, shape)

    def fit(self, X, y=None) -> "IVectorMachine":
        """Train ``T`` (and ``sigma``) by EM on ``X``: a list of GMMStats or a dask bag of them.

        ``T`` is drawn afresh from ``random_state`` and ``sigma`` starts from the UBM variances.
        """
        ubm = self._check_ubm()
        self._check_params()
        X = _check_stats_sequence(X, "X")
        C, D = np.shape(ubm.means)
        self.dim_c, self.dim_d = C, D

        def initialize():
            self.T = self._initial_T((C, D, self.dim_t))
            self.sigma = np.array(ubm.variances, dtype=np.float64, copy=True)

        def restore(arrays):
            self.T, self.sigma = arrays["T"], arrays["sigma"]

        means = np.array(ubm.means, dtype=np.float64)
        batch_size = (kiv.default_batch_size(C, D, self.dim_t) if self.batch_size is None
                      else self.batch_size)
        data = X
        if not is_dask_collection(X):  # validated here, before the expensive initialisation
            data = _centred_batches(X, means, batch_size,
                                    shared=_shared_accumulator(C, self.dim_t))
            if data is None:  # too large to keep a centred copy: stacked in every E-step
                _stack_batch(X[:1], C, D, 0, "X")
                data = X

        def e_step_():
            pre = kiv.Precomputed.from_parameters(means, self.T, self.sigma, _parallel_map,
                                                  n_threads())
            return _accumulate(data, pre, batch_size, "X")

        def m_step_(stats):
            if stats.n_sessions == 0:
                raise ValueError("X is empty: the dask bag holds no GMMStats")
            m_step(self, stats)
            return stats.log_likelihood / stats.n_sessions

        # emkit parallelises with its own threads; BLAS threads on top only oversubscribe the cores
        with single_threaded_blas():
            result = resumable_em(self, X, initialize=initialize, set_state=restore,
                                  get_state=lambda: {"T": self.T, "sigma": self.sigma},
                                  e_step=e_step_, m_step=m_step_, max_iterations=self.max_iterations,
                                  convergence_threshold=self.convergence_threshold, name="IVector",
                                  quantity="average log-likelihood per utterance")
        self.n_iter_ = result.n_iter
        self.log_likelihood_ = result.history
        return self

    # -- projection --------------------------------------------------------------------------
    def _precomputed(self) -> kiv.Precomputed:
        """The projection constants, cached while T, sigma and the UBM means stay the same.

        T and sigma are read-only (a new value is a new object), the UBM means are compared by
        value, so the cache is never stale.
        """
        T, sigma, means = self.T, self.sigma, self.ubm.means
        C, D = np.shape(means)
        if np.ndim(T) != 3 or np.shape(T)[:2] != (C, D) or np.shape(sigma) != (C, D):
            raise ValueError(f"T has shape {np.shape(T)} and sigma {np.shape(sigma)}; the "
                             f"UBM needs T ({C}, {D}, dim_t) and sigma ({C}, {D})")
        cached = self.__dict__.get("_projection_cache")
        if (cached is not None and cached[0] is T and cached[1] is sigma
                and np.array_equal(cached[2], means)):
            return cached[3]
        means = np.array(means, dtype=np.float64)
        pre = kiv.Precomputed.from_parameters(means, T, sigma)
        self._projection_cache = (T, sigma, means, pre)
        return pre

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_projection_cache", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self.T, self.sigma = self.T, self.sigma  # unpickled arrays come back writable

    def _project_batches(self, X, name, indexed=True):
        with single_threaded_blas():  # small products: BLAS threads only cost synchronisation
            return self._project_batches_unlimited(X, name, indexed)

    def _project_batches_unlimited(self, X, name, indexed):
        pre = self._precomputed()
        (C, D, R), S = pre.shape, len(X)
        # bounded batches, at least one per thread when there is enough work
        size = min(_batch_size(self), max(_MIN_THREAD_BATCH, -(-S // n_threads())))
        out = np.empty((S, R))

        def run(start):
            n, sum_px = _stack_batch(X[start : start + size], C, D, start, name, indexed,
                                     second_order=False)
            out[start : start + size] = kiv.project(n, sum_px - n[:, :, None] * pre.means, pre)

        map_ordered(run, range(0, S, size))
        return out

    def project(self, stats: GMMStats) -> np.ndarray:
        """The i-vector of one utterance, (R,).

        ``(I + sum_c n_c T_c' sigma_c^-1 T_c)^-1 sum_c T_c' sigma_c^-1 (F_c - n_c m_c)``.
        """
        self._check_fitted("project")
        stats = as_stats_sequence(stats)  # a 0-D object array holding one GMMStats
        if not isinstance(stats, GMMStats):
            raise TypeError(f"stats must be a GMMStats; got {type(stats).__name__}")
        pre = self._precomputed()
        C, D, _ = pre.shape
        n = np.asarray(stats.n, dtype=np.float64)
        F = np.asarray(stats.sum_px, dtype=np.float64)
        if n.shape != (C,) or F.shape != (C, D):
            raise ValueError(f"stats has statistics of shape n {n.shape}, sum_px {F.shape}; the UBM "
                             f"expects n ({C},) and sum_px ({C}, {D})")
        if not (np.isfinite(n).all() and np.isfinite(F).all()):
            raise ValueError("stats contains NaN or infinity")
        with single_threaded_blas():  # small products: BLAS threads only cost synchronisation
            return kiv.project(n[None], (F - n[:, None] * pre.means)[None], pre)[0]

    def transform(self, X) -> np.ndarray:
        """i-vectors of a list of GMMStats: ndarray (S, R) (row s is ``project(X[s])``).

        The reference returned a list of (R,) arrays; an array iterates the same way.  A dask bag
        of GMMStats gives a (lazy) bag of (R,) arrays.
        """
        self._check_fitted("transform")
        X = _check_stats_sequence(X, "X")
        if is_dask_collection(X):
            return X.map_partitions(_project_partition, self)
        return self._project_batches(X, "X")

    # -- scikit-learn plumbing ---------------------------------------------------------------
    def __sklearn_clone__(self):
        # the trained UBM is an input, not a hyper-parameter: keep a copy of it (sklearn's default
        # clone would hand back an untrained GMMMachine and the clone could not be fitted)
        params = self.get_params(deep=False)
        ubm = params.pop("ubm")
        others = {k: clone(v, safe=False) for k, v in params.items()}
        return type(self)(ubm=copy.deepcopy(ubm), **others)

    def __sklearn_is_fitted__(self) -> bool:
        return self.T is not None and self.sigma is not None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        return tags

    # -- HDF5 --------------------------------------------------------------------------------
    def save(self, hdf5):
        """Write the machine, its UBM and its parameters (path or open h5py group)."""
        from .io.ivector import write_ivector_machine

        write_ivector_machine(self, hdf5)

    @classmethod
    def from_hdf5(cls, hdf5) -> "IVectorMachine":
        """Read a machine written by :meth:`save`."""
        from .io.ivector import read_ivector_machine

        return read_ivector_machine(hdf5, cls)

    def load(self, hdf5):
        """Replace the state of ``self`` by the machine stored in ``hdf5``."""
        self.__dict__.update(self.from_hdf5(hdf5).__dict__)
