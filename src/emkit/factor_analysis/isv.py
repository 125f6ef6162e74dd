"""``ISVMachine``: inter-session variability modelling, ``mu_{i,h} = m + U x_{i,h} + D z_i``.

See :mod:`emkit.factor_analysis` for the model and the differences from bob.learn.em 3.3.1.
"""

from __future__ import annotations

import numpy as np

from .._backend import computed_once, small_products
from .._checkpoint import TrainingInput
from ..io._registry import register
from ..stats import GMMStats, as_stats_sequence
from . import _training_steps
from ._docs import with_shared_parameters
from ._model import FactorAnalysisBase
from ._scoring import check_latent, enroll_isv, probe_x, score, score_matrix, stack_sessions
from ._training import train_isv

__all__ = ["ISVMachine"]


class ISVMachine(FactorAnalysisBase):
    __doc__ = with_shared_parameters("""Inter-session variability modelling: ``mu_{i,h} = m + U x_{i,h} + D z_i``.

    Training (as the reference, McCool et al. 2013 / bob 2.x): every iteration computes the
    session factors x at z = 0, then the class offsets z, then accumulates the U update with the
    new z; D stays ``sqrt(variance_supervector / relevance_factor)``.

    Differences from bob.learn.em 3.3.1 besides those of the module docstring: ``transform``
    works (the reference's raised for every input); ``enroll`` returns (1, CD) as the reference;
    ``score_matrix`` scores many models against many probes at once.

    Parameters
    ----------
    r_U : int
        Rank of the session subspace U (>= 1).
    em_iterations : int
        EM iterations (a fixed number, as the reference).
    relevance_factor : float
        D starts at ``sqrt(variance_supervector / relevance_factor)``.
    random_state : int, None, numpy RandomState or Generator
        Draws the initial U from N(0, 1) as the reference does (None: numpy's global
        generator, as the reference).
        A RandomState or Generator given is advanced by ``fit`` (docs/reproducibility.md).
    %(shared parameters)s
    checkpoint : path or None
        Resumable training (see :class:`emkit.GMMMachine`): U, saved after every iteration.

    See Also
    --------
    FactorAnalysisBase : inputs, training and scoring in detail.
    """)

    def __init__(self, r_U, em_iterations=10, relevance_factor=4.0, random_state=0, ubm=None,
                 ubm_kwargs=None, enroll_iterations=1, checkpoint=None):
        super().__init__(r_U=r_U, r_V=None, relevance_factor=relevance_factor,
                         em_iterations=em_iterations, random_state=random_state,
                         enroll_iterations=enroll_iterations, ubm=ubm, ubm_kwargs=ubm_kwargs,
                         checkpoint=checkpoint)

    @property
    def V(self) -> int:
        """0: ISV has no class subspace (the reference's ``ISVMachine.V`` is the integer 0)."""
        return 0

    @small_products  # the passes over sessions run in parallel threads; the rest is small
    def fit(self, X, y=None):
        """Train U from per-session statistics (D stays at its initial value).

        Parameters
        ----------
        X : list of GMMStats, list of dask.delayed GMMStats, dask bag of GMMStats, or dask bag of
            ``(label, GMMStats)`` pairs (then ``y=None``).  The reference's per-class form (a list
            of per-class lists, or of delayed lists, with ``y`` a list of per-class label arrays)
            is accepted too.
        y : sequence of hashable labels, one per session
            Any type (the reference needed ``0..K-1``); mapped to ``0..K-1`` in sorted order.

        Returns
        -------
        self
            Calling ``fit`` again continues from the current parameters.
        """
        with computed_once(X) as X:  # a dask bag is computed once, not in every pass
            data = self._training_set(X, y)
            # TrainingInput: what a checkpoint's fingerprint covers
            result = train_isv(self, data, TrainingInput(X, y))
        self.n_iter_, self.converged_ = result.n_iter, result.converged
        return self

    def enroll(self, X) -> np.ndarray:
        """Class offset z of one client from its sessions.

        z = 0, then ``enroll_iterations`` times: x_h with the current z, then z with the new x.

        Parameters
        ----------
        X : list of GMMStats
            The client's enrolment sessions.

        Returns
        -------
        ndarray of shape (1, CD)
            As the reference.
        """
        c = self._constants("enroll")
        n, F = stack_sessions(X, c.shape)
        return enroll_isv(c, n, F, self.enroll_iterations)[None, :]

    def score(self, latent_z, data):
        """Linear score of the model ``m + D z`` against a probe template.

        The probe's channel offset ``U x`` is estimated with the probe centred on the UBM mean;
        the score is normalised by the probe's frame count (0 for an empty probe).

        Parameters
        ----------
        latent_z : array-like of shape (CD,) or (1, CD)
            What :meth:`enroll` returned.
        data : list of GMMStats, or list of P such lists
            One probe template (their statistics are summed), or P templates at once.

        Returns
        -------
        numpy.float64, or ndarray of shape (P,) for P templates
        """
        c = self._constants("score")
        z = check_latent(latent_z, c.m.shape, "latent_z")
        return score(c, (z,), lambda: c.D * z, data)

    def score_matrix(self, models, probes) -> np.ndarray:
        """Scores of M models against P probes: ``score(models[i], [probes[j]])`` (emkit's).

        Parameters
        ----------
        models : array-like of shape (M, CD), or list of M arrays of shape (1, CD)
            The models' z (what :meth:`enroll` returns).
        probes : list of P GMMStats, or of P probe templates (lists of GMMStats)

        Returns
        -------
        ndarray of shape (M, P)
        """
        c = self._constants("score_matrix")
        CD = c.m.shape[0]
        Z = np.asarray(models, dtype=np.float64)
        if Z.ndim == 3 and Z.shape[1] == 1:  # a list of (1, CD) enrolments
            Z = Z[:, 0, :]
        if Z.ndim != 2 or Z.shape[1] != CD:
            raise ValueError(f"models must have shape (M, {CD}) (or be a list of enroll results); "
                             f"got {Z.shape}")
        return score_matrix(c, c.D * Z, probes)

    @small_products
    def transform(self, X) -> np.ndarray:
        """Session offsets ``U x`` (the reference's ``estimate_ux`` per session).

        The reference's ``transform`` raised for every input.

        Parameters
        ----------
        X : GMMStats, ndarray of shape (n_frames, D), a list of them, or a 3-D array
            One session, or several.

        Returns
        -------
        ndarray of shape (CD,) for one session, or (n_sessions, CD)
        """
        c = self._constants("transform")
        X = as_stats_sequence(X)
        single = isinstance(X, GMMStats) or (isinstance(X, np.ndarray) and X.ndim <= 2)
        items = [X] if single else list(X)
        stats = [s if isinstance(s, GMMStats) else c.ubm.acc_stats(s) for s in items]
        n, F = stack_sessions(stats, c.shape)
        out = probe_x(c, n, F) @ c.U.T
        return out[0] if single else out

    # the reference's ISV steps (compatibility only)
    e_step = _training_steps.e_step
    m_step = _training_steps.m_step


register(ISVMachine, "ISVMachine", write="emkit.io.factor_analysis:write_factor_analysis",
         read="emkit.io.factor_analysis:read_factor_analysis")
