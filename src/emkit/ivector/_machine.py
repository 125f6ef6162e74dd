"""The estimator: :class:`IVectorMachine` (validation, then :mod:`._training` and the
projection kernels; see :mod:`emkit.ivector` for the model)."""

from __future__ import annotations

import copy

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

from .._backend import computed_once, is_dask_collection, map_ordered, n_threads, small_products
from .._backend._staging import configured_device, synced
from .._checkpoint import resumable_em
from .._fitted import FitSummary, FittedArray, PicklesFitted, clear_derived, derived, set_fitted
from .._kernels import ivector as kiv
from .._progress import Progress
from .._validation import (check_bool, check_checkpoint, check_positive_int, check_random_state,
                           is_finite_number)
from ..gmm import GMMMachine
from ..io import _registry
from ..stats import GMMStats, as_stats_sequence
from ._batching import (_MIN_THREAD_BATCH, _batch_size, _check_stats_sequence,
                        check_projection_parameters, training_data)
from ._training import _accumulate, _parallel_map, accumulate_dask, m_step
from .._describe import describe


def _is_trained(ubm) -> bool:
    """Whether the UBM's means and variances are set (read through its public attributes)."""
    try:
        ubm.means, ubm.variances
    except (ValueError, AttributeError):  # NotFittedError is both
        return False
    return True


def _project_partition(items, machine, number):
    """i-vectors of a bag's partition; ``number``: ``[k]``, the partition's number (a partition of
    :func:`_partition_numbers`), for errors that name its items."""
    (k,) = number
    return list(machine._project_batches(list(items), "X", partition=k))


def _partition_numbers(bag):
    """A bag whose partition ``k`` is ``[k]``, aligned with the partitions of ``bag`` (the index
    of an item in the whole bag is not known without a pass to count the items before it)."""
    import dask.bag as db

    return db.from_sequence(range(bag.npartitions), npartitions=bag.npartitions)


class IVectorMachine(FitSummary, PicklesFitted, BaseEstimator):
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
        A RandomState or Generator given is advanced by ``fit`` (docs/reproducibility.md).
    batch_size : int or None
        Utterances per E-step batch.  None: chosen by
        :func:`emkit._kernels.ivector.default_batch_size` (up to 512, as many as keep the
        accumulators and a batch's temporaries within 1.5x the accumulators + 256 MB).
        Besides the statistics, ``fit`` holds one set of accumulators and one of constants of
        T, each about ``8 C (R(R+1)/2 + D R)`` bytes (1.7 GB at C=2048, D=60, R=400), reused
        from iteration to iteration.  ``transform`` holds the constants and batches per thread
        (:func:`emkit._kernels.ivector.projection_batch_size`: all threads' batches within the
        constants' size + 256 MB by default).
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
        C and D, set by ``fit`` (None before).
    n_iter_ : int
        EM iterations run by the last ``fit``.
    converged_ : bool
        Whether the last ``fit`` stopped at ``convergence_threshold`` (False when it stopped at
        ``max_iterations``).
    log_likelihood_ : list of float
        Average log-likelihood per utterance at each iteration (before its M-step).
    """

    _FIT_SUMMARY = ("n_iter_", "converged_", "log_likelihood_")  # (what a file keeps of a fit)

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

    # -- parameters: read-only float64 arrays (assign a new array to change them); assigning one
    # drops the projection constants derived from them (emkit._fitted)
    T = FittedArray("Total variability matrix (C, D, R), one (D, R) block per Gaussian (None "
                    "before ``fit``).")
    sigma = FittedArray("Residual diagonal covariance (C, D) (None before ``fit``).")
    dim_c = None  # C and D: set by fit
    dim_d = None

    def _missing_parameter(self, name):
        return None  # the reference's T and sigma are None before fit

    @classmethod
    def _from_fitted(cls, params: dict, T=None, sigma=None) -> "IVectorMachine":
        """A machine of hyper-parameters ``params`` (with its ``ubm``) and parameters T (C, D, R)
        and sigma (C, D), None when untrained (what a file holds: the reader's checked float64
        arrays, kept without a copy, which would double the memory of a load, and of the read-back
        of every save)."""
        machine = cls(**params)
        machine.dim_c, machine.dim_d = np.shape(machine.ubm.means)
        machine._set_parameters(T, sigma)
        return machine

    def _set_parameters(self, T, sigma) -> None:
        """Store new T (C, D, R) and sigma (C, D), the M-step's float64 arrays, without a copy
        (a copy of T is the peak of a fit's memory at C=2048: 393 MB on top of everything)."""
        set_fitted(self, "T", T, copy=False)
        set_fitted(self, "sigma", sigma, copy=False)

    # -- validation --------------------------------------------------------------------------
    def _check_ubm(self):
        ubm = self.ubm
        if not isinstance(ubm, GMMMachine):
            raise TypeError(f"ubm must be a trained GMMMachine; got {type(ubm).__name__}")
        if not _is_trained(ubm):
            raise ValueError("ubm must be a trained GMMMachine (its means/variances are not set)")
        return ubm

    def _check_params(self):
        check_positive_int(self.dim_t, "dim_t", minimum=1)
        check_positive_int(self.max_iterations, "max_iterations", minimum=0, allow_none=True)
        threshold = self.convergence_threshold
        if threshold is not None and (not is_finite_number(threshold) or threshold < 0):
            raise ValueError(f"convergence_threshold must be None or a finite number >= 0; got "
                             f"{describe(threshold)}")
        if not is_finite_number(self.variance_floor) or self.variance_floor < 0:
            raise ValueError(f"variance_floor must be a finite number >= 0; got "
                             f"{describe(self.variance_floor)}")
        if self.batch_size is not None:
            check_positive_int(self.batch_size, "batch_size")
        check_bool(self.update_sigma, "update_sigma")
        check_checkpoint(self.checkpoint)

    def _check_fitted(self, method: str):
        if self.T is None or self.sigma is None:
            raise NotFittedError(
                "This IVectorMachine is not fitted yet (T and sigma are None): call fit(X) before "
                f"{method}"
            )

    # -- training ----------------------------------------------------------------------------
    def _initial_T(self, shape):
        # standard_normal gives normal(0.0, 1.0)'s numbers (0 + 1 * x), a quarter faster
        if self.random_state is None:
            return np.random.standard_normal(shape)  # numpy's global RandomState, as the reference
        return check_random_state(self.random_state).standard_normal(shape)

    def fit(self, X, y=None) -> "IVectorMachine":
        """Train ``T`` (and ``sigma``) by EM.

        ``T`` is drawn afresh from ``random_state`` (the reference drew from numpy's global
        generator) and ``sigma`` starts from the UBM variances.

        Parameters
        ----------
        X : list of GMMStats, or a dask bag of them
            One per utterance, of the UBM's shape (C, D).
        y : None
            Ignored.

        Returns
        -------
        self
        """
        ubm = self._check_ubm()
        self._check_params()
        X = _check_stats_sequence(X, "X")
        with computed_once(X) as X:  # a dask bag is computed once, not in every E-step
            return self._fit(X, ubm)

    def _fit(self, X, ubm) -> "IVectorMachine":
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
        dev = None if is_dask_collection(X) else configured_device()
        data = None if dev else training_data(X, means, batch_size, self.dim_t)  # validated here

        # the constants, accumulators and scratch arrays of one iteration are overwritten by
        # the next: at C=2048, R=400 fresh ones (1.7 GB each) cost up to seconds of page faults
        spare = {"scratch": {}}

        def e_step_():
            if is_dask_collection(data):
                return accumulate_dask(data, means, self.T, self.sigma, batch_size, "X")
            pre = spare["pre"] = kiv.Precomputed.from_parameters(
                means, self.T, self.sigma, _parallel_map, n_threads(), reuse=spare.pop("pre", None))
            return _accumulate(data, pre, batch_size, "X", recycle=spare.pop("stats", None),
                               scratch=spare["scratch"])

        def m_step_(stats):
            if stats.n_sessions == 0:
                raise ValueError("X is empty: the dask bag holds no GMMStats")
            m_step(self, stats)
            if not is_dask_collection(data):  # (the dask path gathers new sums every pass)
                spare["stats"] = stats
            return stats.log_likelihood / stats.n_sessions

        device, get_state = None, lambda: {"T": self.T, "sigma": self.sigma}
        if dev is not None:  # emkit.set_config(device=...): see ._device and docs/gpu.md
            from ._device import DeviceTraining

            device = DeviceTraining(self, X, means, batch_size, dev)
            e_step_, m_step_, get_state = device.e_step, device.m_step, device.state

        # emkit parallelises with its own threads over bounded blocks: BLAS threads on top only
        # oversubscribe the cores
        with small_products(), synced(device):  # T and sigma of a device back at the end
            resumable_em(self, X, initialize=initialize, set_state=restore,
                         get_state=get_state,
                         state_shapes={"T": (C, D, self.dim_t), "sigma": (C, D)},
                         e_step=e_step_, m_step=m_step_, max_iterations=self.max_iterations,
                         convergence_threshold=self.convergence_threshold, name="IVector",
                         quantity="average log-likelihood per utterance",
                         finish=self._finish_fit)
        return self

    def _finish_fit(self, result) -> None:
        self.log_likelihood_ = result.history
        self.n_iter_, self.converged_ = result.n_iter, result.converged

    # -- projection --------------------------------------------------------------------------
    def _precomputed(self) -> kiv.Precomputed:
        """The projection constants, derived from T and sigma (dropped when either is assigned)
        and the UBM means (a mutable input, compared by value)."""
        T, sigma, means = self.T, self.sigma, self.ubm.means
        check_projection_parameters(T, sigma, *np.shape(means))

        def compute():
            return kiv.Precomputed.from_parameters(np.array(means, dtype=np.float64), T, sigma,
                                                   _parallel_map, n_threads())

        pre = derived(self, "projection", compute)
        if not np.array_equal(pre.means, means):  # the UBM's means changed since
            clear_derived(self)
            pre = derived(self, "projection", compute)
        return pre

    @small_products
    def _project_batches(self, X, name, indexed=True, partition=None):
        dev = configured_device()
        if dev is not None:  # emkit.set_config(device=...)
            from ._device import project

            return project(self, X, name, indexed, dev, partition)
        pre = self._precomputed()
        (C, D, R), S, threads = pre.shape, len(X), n_threads()
        # bounded batches (the threads' batches together), at least one per thread when there is
        # enough work
        size = min(_batch_size(self, projection=True, concurrent=threads),
                   max(_MIN_THREAD_BATCH, -(-S // threads)))
        out = np.empty((S, R))
        done = Progress("i-vectors", S, "utterance")

        def run(start):
            b = GMMStats.stack(X[start : start + size], name=name, shape=(C, D), indexed=indexed,
                               offset=start, partition=partition)
            fnorm = kiv.centre_in_place(b.n, b.sum_px, pre.means)  # no (S, C, D) product
            out[start : start + size] = kiv.project(b.n, fnorm, pre)
            done.advance(len(b.n))

        map_ordered(run, range(0, S, size))
        done.finish()
        return out

    def project(self, stats: GMMStats) -> np.ndarray:
        """The i-vector of one utterance.

        ``(I + sum_c n_c T_c' sigma_c^-1 T_c)^-1 sum_c T_c' sigma_c^-1 (F_c - n_c m_c)``.

        Parameters
        ----------
        stats : GMMStats
            Of the UBM's shape (C, D).

        Returns
        -------
        ndarray of shape (R,)
        """
        self._check_fitted("project")
        stats = as_stats_sequence(stats)  # a 0-D object array holding one GMMStats
        if not isinstance(stats, GMMStats):
            raise TypeError(f"stats must be a GMMStats; got {type(stats).__name__}")
        dev = configured_device()
        if dev is not None:  # emkit.set_config(device=...)
            from ._device import project

            return project(self, [stats], "stats", False, dev)[0]
        pre = self._precomputed()
        b = GMMStats.stack([stats], name="stats", shape=pre.shape[:2], indexed=False)
        with small_products():  # one utterance: BLAS threads only cost synchronisation
            return kiv.project(b.n, kiv.centre_in_place(b.n, b.sum_px, pre.means), pre)[0]

    def transform(self, X) -> np.ndarray:
        """i-vectors of many utterances (row s is ``project(X[s])``).

        Parameters
        ----------
        X : list of S GMMStats, or a dask bag of them

        Returns
        -------
        ndarray of shape (S, R), or a dask bag of arrays of shape (R,)
            The reference returned a list of (R,) arrays; an array iterates the same way.  A
            dask bag gives a (lazy) bag.
        """
        self._check_fitted("transform")
        X = _check_stats_sequence(X, "X")
        if is_dask_collection(X):
            return X.map_partitions(_project_partition, self, _partition_numbers(X))
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

    def _more_tags(self) -> dict:
        """The reference's tags, which bob.pipelines reads (``fit`` takes a dask bag)."""
        return {"requires_fit": True, "bob_fit_supports_dask_bag": True}

    # -- HDF5 (emkit.io.ivector's layout, through the registry) ----------------------------------
    def save(self, hdf5):
        """Write the machine, its UBM and its parameters.

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A path (written atomically) or an open, writable group.
        """
        _registry.save(self, hdf5)

    @classmethod
    def from_hdf5(cls, hdf5) -> "IVectorMachine":
        """Read a machine written by :meth:`save`.

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group

        Returns
        -------
        IVectorMachine

        Raises
        ------
        InvalidFileError
            Not an i-vector machine file, or a damaged one.
        """
        return _registry.load(hdf5, expected=cls)

    def load(self, hdf5):
        """Replace the state of ``self`` by the machine stored in ``hdf5``.

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
        """
        loaded = self.from_hdf5(hdf5)
        self.__dict__.clear()  # (no fitted attribute of the machine replaced survives: n_iter_...)
        self.__dict__.update(loaded.__dict__)


_registry.register(IVectorMachine, "IVectorMachine", write="emkit.io.ivector:write_ivector_machine",
                   read="emkit.io.ivector:read_ivector_machine")
