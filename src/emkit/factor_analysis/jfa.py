"""``JFAMachine``: joint factor analysis, ``mu_{i,h} = m + U x_{i,h} + V y_i + D z_i``.

See :mod:`emkit.factor_analysis` for the model and the differences from bob.learn.em 3.3.1.
"""

from __future__ import annotations

import numpy as np

from .._backend import computed_once, small_products
from .._checkpoint import TrainingInput
from ..io._registry import register
from . import _training_steps
from ._docs import with_shared_parameters
from ._model import FactorAnalysisBase
from ._scoring import check_latent, enroll_jfa, score, score_matrix, stack_sessions
from ._training import train_jfa

__all__ = ["JFAMachine"]


class JFAMachine(FactorAnalysisBase):
    __doc__ = with_shared_parameters("""Joint factor analysis: ``mu_{i,h} = m + U x_{i,h} + V y_i + D z_i``.

    Training (as the reference, bob 2.x's ``train_jfa``): ``em_iterations`` of V (x = z = 0),
    then of U (with the final y), then of D (with the final y and x).

    Differences from bob.learn.em 3.3.1 besides those of the module docstring: the y posterior in
    ``enroll`` centres the statistics on ``m + D z`` (the reference used ``m - D z``; it matters
    only with ``enroll_iterations > 1``); a D entry whose accumulator is zero keeps its value
    (the reference divided 0 by 0); ``score_matrix`` scores many models against many probes.

    Parameters
    ----------
    r_U : int
        Rank of the session subspace U (>= 1).
    r_V : int
        Rank of the class subspace V (>= 1).
    em_iterations : int
        EM iterations of each of the V, U and D phases (a fixed number, as the reference).
    relevance_factor : float
        D starts at ``sqrt(variance_supervector / relevance_factor)``.
    random_state : int, None, numpy RandomState or Generator
        Draws the initial U, then V, from N(0, 1) as the reference does (None: numpy's global
        generator, as the reference).
        A RandomState or Generator given is advanced by ``fit`` (docs/reproducibility.md).
    %(shared parameters)s
    checkpoint : path or None
        Resumable training (see :class:`emkit.GMMMachine`): U, V, D and the training phase,
        saved after every iteration.

    See Also
    --------
    FactorAnalysisBase : inputs, training and scoring in detail.
    """)

    _has_V = True

    def __init__(self, r_U, r_V, em_iterations=10, relevance_factor=4.0, random_state=0, ubm=None,
                 ubm_kwargs=None, enroll_iterations=1, checkpoint=None):
        super().__init__(r_U=r_U, r_V=r_V, relevance_factor=relevance_factor,
                         em_iterations=em_iterations, random_state=random_state,
                         enroll_iterations=enroll_iterations, ubm=ubm, ubm_kwargs=ubm_kwargs,
                         checkpoint=checkpoint)

    @small_products  # the passes over sessions run in parallel threads; the rest is small
    def fit(self, X, y=None):
        """Train V, then U, then D from per-session statistics.

        Parameters
        ----------
        X : list of GMMStats, or a dask bag of them
            The sessions, in any form :meth:`ISVMachine.fit` takes.
        y : sequence of hashable labels, one per session
            As in :meth:`ISVMachine.fit`.

        Returns
        -------
        self
            ``n_iter_`` counts the iterations of the last (D) phase.
        """
        with computed_once(X) as X:  # a dask bag is computed once, not in every pass
            data = self._training_set(X, y)
            # TrainingInput: what a checkpoint's fingerprint covers
            result = train_jfa(self, data, TrainingInput(X, y))
        self.n_iter_, self.converged_ = result.n_iter, result.converged
        return self

    def enroll(self, X):
        """Latent ``(y, z)`` of one client from its sessions.

        x = y = z = 0, then ``enroll_iterations`` times: y (statistics centred on ``m + D z + U x``;
        the reference used ``m - D z``), x_h (on ``m + D z + V y``), z (on ``m + V y + U x``).

        Parameters
        ----------
        X : list of GMMStats
            The client's enrolment sessions.

        Returns
        -------
        (ndarray of shape (r_V,), ndarray of shape (CD,))
        """
        c = self._constants("enroll")
        n, F = stack_sessions(X, c.shape)
        return enroll_jfa(c, n, F, self.enroll_iterations)

    def score(self, model, data):
        """Linear score of ``m + V y + D z`` against a probe template (as :meth:`ISVMachine.score`).

        Parameters
        ----------
        model : (ndarray of shape (r_V,), ndarray of shape (CD,))
            The ``(y, z)`` pair :meth:`enroll` returns.
        data : list of GMMStats, or list of P such lists
            One probe template, or P templates at once.

        Returns
        -------
        numpy.float64, or ndarray of shape (P,) for P templates
        """
        c = self._constants("score")
        model = _as_pair(model)
        if not isinstance(model, (tuple, list)) or len(model) != 2:
            raise TypeError(
                f"model must be the (y, z) pair returned by enroll; got {type(model).__name__}"
            )
        y = check_latent(model[0], (c.V.shape[1],), "model[0] (y)")
        z = check_latent(model[1], c.m.shape, "model[1] (z)")
        return score(c, (y, z), lambda: c.V @ y + c.D * z, data)

    def score_matrix(self, models, probes) -> np.ndarray:
        """Scores of M models against P probes: ``score(models[i], [probes[j]])`` (emkit's).

        Parameters
        ----------
        models : list of M ``(y, z)`` pairs, or a tuple of arrays of shape (M, r_V) and (M, CD)
            What :meth:`enroll` returns, one per model, or ``(Y, Z)``.
        probes : list of P GMMStats, or of P probe templates (lists of GMMStats)

        Returns
        -------
        ndarray of shape (M, P)
        """
        c = self._constants("score_matrix")
        r_V, CD = c.V.shape[1], c.m.shape[0]
        if isinstance(models, np.ndarray) and models.dtype == object and models.ndim == 2:
            models = [_as_pair(row) for row in models]  # (M, 2) rows of (y, z)
        if (isinstance(models, tuple) and len(models) == 2
                and all(isinstance(a, np.ndarray) and a.ndim == 2 for a in models)):
            Y, Z = (np.asarray(a, dtype=np.float64) for a in models)
        else:
            if not isinstance(models, (list, tuple)) or not all(
                    isinstance(p, (list, tuple)) and len(p) == 2 for p in models):
                raise TypeError("models must be a list of the (y, z) pairs returned by enroll, "
                                f"or a tuple (Y, Z) of 2-D arrays; got {type(models).__name__}")
            Y = np.array([np.asarray(y, dtype=np.float64).reshape(-1) for y, _ in models])
            Z = np.array([np.asarray(z, dtype=np.float64).reshape(-1) for _, z in models])
        if Y.ndim != 2 or Y.shape[1] != r_V or Z.shape != (len(Y), CD):
            raise ValueError(f"models must hold y of shape (r_V,) = ({r_V},) and z of shape "
                             f"({CD},); got Y {Y.shape} and Z {Z.shape}")
        return score_matrix(c, Y @ c.V.T + c.D * Z, probes)

    # the reference's JFA phase steps (compatibility only)
    e_step_v = _training_steps.e_step_v
    m_step_v = _training_steps.m_step_v
    finalize_v = _training_steps.finalize_v
    e_step_u = _training_steps.e_step_u
    m_step_u = _training_steps.m_step
    finalize_u = _training_steps.finalize_u
    e_step_d = _training_steps.e_step_d
    m_step_d = _training_steps.m_step_d


def _as_pair(model):
    """A (y, z) model kept in a numpy object array of 2 (a row of ``np.array(models,
    dtype=object)``) as the tuple it holds; anything else unchanged (the reference indexed it)."""
    if isinstance(model, np.ndarray) and model.dtype == object and model.shape == (2,):
        return tuple(model)
    return model


register(JFAMachine, "JFAMachine", write="emkit.io.factor_analysis:write_factor_analysis",
         read="emkit.io.factor_analysis:read_factor_analysis")
