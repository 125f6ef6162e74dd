"""``FactorAnalysisBase``: the state, checks, training driver and scoring shared by ISV and JFA.

Public through :mod:`emkit.factor_analysis`; see there for the model.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
from sklearn.base import BaseEstimator

from ._backend import (
    bag_from_parts,
    is_dask_collection,
    map_reduce,
    n_threads,
    single_threaded_blas,
    thread_map,
)
from ._checkpoint import TrainingInput, resumable_em
from ._factor_analysis_data import (
    SessionAccumulator,
    SessionParams,
    block_terms,
    session_chunk,
    class_totals_chunk,
    prepare_training_set,
)
from ._factor_analysis_params import ParametersMixin
from ._factor_analysis_scoring import ScoringMixin
from ._factor_analysis_steps import ReferenceStepsMixin
from ._kernels import factor_analysis as kfa
from ._validation import check_frames
from .gmm import GMMMachine

logger = logging.getLogger("emkit")

#: Threads for a pass over in-memory sessions (None: the CPUs this process may use).  The blocks
#: of sessions go to the threads as they come (one BLAS thread each) and their terms are added in
#: block order, so the numbers do not depend on the thread count.  On the 2-core development
#: machine (ISV benchmark size, best of repeated runs), a pass took ~10 ms on two threads and
#: ~15 ms on one when idle; with another process keeping a core busy, two threads were about as
#: fast as one (ISV) or faster (JFA).  Dask inputs are spread by dask's scheduler.
SESSION_THREADS = None


def _session_threads() -> int:
    return n_threads() if SESSION_THREADS is None else SESSION_THREADS


def _one_blas_thread(method):
    """Decorator: enrolment and scoring multiply small matrices, where BLAS threads cost more than
    they give (ten times more on a loaded machine)."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with single_threaded_blas():
            return method(*args, **kwargs)

    return wrapper


def _transform_block(ubm, block):
    return ubm.transform(np.asarray(block))


# ---------------------------------------------------------------------------------------------
# base class
# ---------------------------------------------------------------------------------------------


class FactorAnalysisBase(ParametersMixin, ScoringMixin, ReferenceStepsMixin, BaseEstimator):
    """Shared state and maths of :class:`ISVMachine` and :class:`JFAMachine`.

    Parameters
    ----------
    r_U : int
        Rank of the session subspace U (>= 1).
    r_V : int or None
        Rank of the class subspace V (JFA); None for ISV.
    relevance_factor : float
        D starts at ``sqrt(variance_supervector / relevance_factor)``.
    em_iterations : int
        EM iterations (ISV), or iterations of each of the V, U and D phases (JFA).
    random_state : int, None, numpy RandomState or Generator
        Draws the initial U (then V) from N(0, 1), as ``np.random.RandomState(seed).normal`` does
        (the reference's numbers), without touching numpy's global generator (None: from numpy's
        global generator, as the reference).
    enroll_iterations : int
        Iterations of the latent-variable updates in ``enroll`` (>= 1).
    ubm : GMMMachine or None
        The UBM; trained by ``fit_using_array`` when it is untrained (or None, from ``ubm_kwargs``).
    ubm_kwargs : dict or None
        Arguments of the ``GMMMachine`` created when ``ubm`` is None.

    Attributes
    ----------
    U : ndarray (CD, r_U), V : ndarray (CD, r_V) (JFA), D : ndarray (CD,)
        Set by ``fit``; before it, with a trained ``ubm``, the reference's initial values (drawn
        on first use; user-assigned ones are kept).
    classes_ : ndarray (K,)
        The class labels seen by the last ``fit``, in the order of the class indices.
    """

    _has_V = False

    def __init__(
        self,
        r_U,
        r_V=None,
        relevance_factor=4.0,
        em_iterations=10,
        random_state=0,
        enroll_iterations=1,
        ubm=None,
        ubm_kwargs=None,
        checkpoint=None,
    ):
        self.r_U = r_U
        self.r_V = r_V
        self.relevance_factor = relevance_factor
        self.em_iterations = em_iterations
        self.random_state = random_state
        self.enroll_iterations = enroll_iterations
        self.ubm = ubm
        self.ubm_kwargs = ubm_kwargs
        self.checkpoint = checkpoint

    # -- UBM-derived properties ----------------------------------------------------------------
    def _trained_ubm(self, action: str = "this operation") -> GMMMachine:
        if self.ubm is None:
            raise ValueError(
                f"ubm is None: {action} needs a trained GMMMachine as ubm "
                "(fit_using_array trains one from frames)"
            )
        if getattr(self.ubm, "_means", None) is None:
            raise ValueError(
                f"ubm is not trained: {action} needs its means and variances "
                "(fit_using_array trains it from frames)"
            )
        return self.ubm

    @property
    def feature_dimension(self) -> int:
        """D, the dimension of the features."""
        return self._trained_ubm().means.shape[1]

    @property
    def supervector_dimension(self) -> int:
        """C * D."""
        return self._trained_ubm().n_gaussians * self.feature_dimension

    @property
    def mean_supervector(self) -> np.ndarray:
        """The UBM means flattened, (CD,)."""
        return np.asarray(self._trained_ubm().means, dtype=np.float64).flatten()

    @property
    def variance_supervector(self) -> np.ndarray:
        """The UBM variances flattened, (CD,)."""
        return np.asarray(self._trained_ubm().variances, dtype=np.float64).flatten()

    def _shape(self, action="this operation"):
        ubm = self._trained_ubm(action)
        return tuple(ubm.means.shape)

    def _session_params(self, n_classes, class_offsets=None, accumulate=True, totals=False):
        """:class:`SessionParams` of a pass with the current U; ``class_offsets`` (K, CD) are the
        ``o_k`` of the statistics' centring ``m + o_k`` (JFA: ``V y_k``), None for zero."""
        c = self._derived()
        (C, _), Uov = c["shape"], c["U_over_var"]
        return SessionParams(
            shape=c["shape"],
            U_over_var=Uov,
            uprod=c["uprod"],
            W_mean=c["W_mean"],
            n_classes=n_classes,
            offset_proj=None
            if class_offsets is None
            else kfa.block_projections(class_offsets, Uov, C),
            accumulate=accumulate,
            totals=totals,
        )

    def _U_accumulator(self, acc, class_offsets=None):
        """``sum_h (F_h - N_h (m + o_k)) x_h^T`` (CD, r_U) from a SessionAccumulator, with the
        per-class offsets ``o_k`` (K, CD) (None for zero)."""
        c = self._derived()
        (C, D), r = c["shape"], acc.G.shape[2]
        g = acc.G.sum(axis=0)  # sum_h N_h x_h, (C, r)
        A2 = acc.A2F - (c["means"][:, :, None] * g[:, None, :]).reshape(C * D, r)
        if class_offsets is not None:
            A2 -= kfa.offset_outer_products(class_offsets, acc.G)
        return A2

    # -- training ----------------------------------------------------------------------------
    @_one_blas_thread  # the passes over sessions run in parallel threads; the rest is small
    def fit(self, X, y=None):
        """Train the subspaces from per-session statistics.

        Parameters
        ----------
        X : list of GMMStats, list of dask.delayed GMMStats, dask bag of GMMStats, or dask bag of
            ``(label, GMMStats)`` pairs (then ``y=None``).  The reference's per-class form (a list
            of per-class lists, or of delayed lists, with ``y`` a list of per-class label arrays)
            is accepted too.
        y : sequence of hashable labels, one per session (any type; mapped to ``0..K-1`` in sorted
            order).

        Calling ``fit`` again continues from the current parameters.
        """
        self._validate_hyperparameters()
        shape = self._shape("fit")
        data = prepare_training_set(X, y, shape, _session_threads())
        self._create_missing()
        self.classes_ = data.classes
        self._train(data, TrainingInput(X, y))  # what a checkpoint's fingerprint covers
        return self

    def _em(self, X, e_step, m_step, *, state, name, quantity, phase=0):
        """``em_iterations`` of ``m_step(e_step())``, resumable from ``checkpoint``: ``state`` names
        the parameters (of "U", "V", "D") saved after every iteration."""
        return resumable_em(
            self,
            X,
            initialize=lambda: None,  # the parameters exist already (_create_missing)
            get_state=lambda: {k: self._get(k) for k in state},
            set_state=lambda arrays: [self._store(k, arrays[k]) for k in state],
            phase=phase,
            e_step=e_step,
            m_step=m_step,
            max_iterations=self.em_iterations,
            convergence_threshold=None,
            name=name,
            quantity=quantity,
        )

    def _class_totals(self, data):
        """Per-class sums of the statistics (summed while stacking, or one pass over the sessions)."""
        if data.totals is not None:
            return data.totals
        return map_reduce(class_totals_chunk, data.rows, self._shape(), data.n_classes)

    @staticmethod
    def _session_pass(data, params):
        """The E-step over all sessions: a :class:`SessionAccumulator`.

        In memory, the blocks are spread over threads (:data:`SESSION_THREADS`) as they come, and
        their terms added in block order: the result does not depend on the number of threads,
        and a thread slowed down by other processes simply takes fewer blocks.
        """
        rows = data.rows
        if not isinstance(rows, list):
            return map_reduce(session_chunk, rows, params)
        terms = thread_map(lambda block: block_terms(block, params), rows, _session_threads())
        acc = SessionAccumulator.zeros(params)
        for block, block_sums in zip(rows, terms):
            acc.add_block(block, block_sums)
        return acc

    def initialize_using_array(self, X):
        """Train the UBM on the frames ``X`` (N, D) if it is None (from ``ubm_kwargs``) or untrained."""
        if self.ubm is None:
            if not isinstance(self.ubm_kwargs, dict):
                raise ValueError(
                    "ubm_kwargs must be a dict of GMMMachine arguments (e.g. "
                    f"{{'n_gaussians': 8}}) when ubm is None; got {self.ubm_kwargs!r}"
                )
            logger.info("Creating a new GMMMachine and training it.")
            self.ubm = GMMMachine(**self.ubm_kwargs)
            self.ubm.fit(X)
        elif getattr(self.ubm, "_means", None) is None:
            logger.info("UBM means are None, training the UBM.")
            self.ubm.fit(X)

    def _sessions(self, X, name="X"):
        """``(sessions, frames)``: one item per session, and all frames as one (N, D) array.

        A 2-D array is one frame per session (the reference's convention), a 3-D array or a list of
        2-D arrays one session per element; dask arrays (2-D or 3-D) are kept lazy.
        """
        if is_dask_collection(X):
            if X.ndim not in (2, 3):
                raise ValueError(f"{name} must be a 2-D or 3-D dask array; got {X.ndim}-D")
            X = X.rechunk({i: -1 for i in range(1, X.ndim)})
            return X, (X if X.ndim == 2 else X.reshape(-1, X.shape[-1]))
        if isinstance(X, (list, tuple)):
            if not X:
                raise ValueError(f"{name} is empty: expected at least one session")
            sessions = [check_frames(x, f"{name}[{i}]", allow_empty=True) for i, x in enumerate(X)]
            return sessions, np.concatenate(sessions, axis=0)
        X = np.asarray(X)
        if X.ndim == 3:
            return X, check_frames(X.reshape(-1, X.shape[-1]), name)
        if X.ndim == 2:
            return X, check_frames(X, name)
        raise ValueError(
            f"{name} must be frames: a 2-D or 3-D array or a list of 2-D arrays; got shape {X.shape}"
        )

    def fit_using_array(self, X, y):
        """Train the UBM if needed, compute one GMMStats per session of ``X`` and ``fit``.

        ``X``: 2-D array (each row a session of one frame, as in the reference), 3-D array
        (sessions, frames, D), list of (frames, D) arrays, or a dask array.  ``y``: one label per
        session (a dask array is computed).
        """
        if is_dask_collection(y):
            y = y.compute()
        if isinstance(y, np.ndarray):
            y = y.ravel() if y.ndim > 1 else y
        sessions, frames = self._sessions(X)
        n_sessions = sessions.shape[0] if hasattr(sessions, "shape") else len(sessions)
        if n_sessions != len(y):
            raise ValueError(
                f"X and y have inconsistent numbers of sessions: {n_sessions} in X, {len(y)} in y"
            )
        self.initialize_using_array(frames)
        if is_dask_collection(sessions):
            stats = bag_from_parts(_transform_block, [(self.ubm, b) for b in sessions.to_delayed().ravel()])
        else:
            stats = self.ubm.transform(sessions)
        return self.fit(stats, y)

    def enroll_using_array(self, X):
        """``enroll`` of the statistics of the frames ``X`` (N, D); a list of arrays is several sessions."""
        ubm = self._trained_ubm("enroll_using_array")
        if isinstance(X, (list, tuple)) or np.ndim(X) == 3:
            return self.enroll([ubm.acc_stats(x) for x in X])
        return self.enroll([ubm.acc_stats(X)])

    def score_using_array(self, model, data):
        """``score`` of a probe given as frames: a 2-D array (N, D) or a list of frame arrays."""
        ubm = self._trained_ubm("score_using_array")
        if isinstance(data, np.ndarray) and data.ndim == 2:
            return self.score(model, [ubm.acc_stats(data)])
        return self.score(model, [ubm.acc_stats(d) for d in data])

    # -- persistence -------------------------------------------------------------------------
    def save(self, hdf5):
        """Write parameters, U/V/D and the UBM to an HDF5 path (atomically) or an open h5py group."""
        from .io.factor_analysis import write_factor_analysis

        write_factor_analysis(self, hdf5)

    @classmethod
    def from_hdf5(cls, hdf5):
        """Read a machine written by :meth:`save`."""
        from .io.factor_analysis import read_factor_analysis

        return read_factor_analysis(hdf5, cls)

    def load(self, hdf5):
        """Replace the state of ``self`` by the machine stored in ``hdf5``."""
        loaded = self.from_hdf5(hdf5)
        self.__dict__.clear()
        self.__dict__.update(loaded.__dict__)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.target_tags.required = True
        return tags

    # -- enrolment helpers ----------------------------------------------------------------------
    def _enroll_arrays(self, X):
        """Cached constants and the client's ``n`` (S, C) and ``F`` (S, CD)."""
        c = self._scoring_constants("enroll")
        n, F = self._stack(X)
        return c, n, F
