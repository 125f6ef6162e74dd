"""Inter-session variability (ISV) and joint factor analysis (JFA) on top of a GMM (McCool et al. 2013).

Compatible with ``bob.learn.em.factor_analysis`` 3.3.1 (``FactorAnalysisBase``, ``ISVMachine``,
``JFAMachine``): same parameters, training schedules, enrolment and scoring.  Session models are
supervectors of length CD (row-major (C, D)):

* ISV: ``mu_{i,h} = m + U x_{i,h} + D z_i``
* JFA: ``mu_{i,h} = m + U x_{i,h} + V y_i + D z_i``

Training works on one :class:`GMMStats` per session with a class label.  Each EM iteration is a
single pass over the sessions: in memory, over blocks stacked once per ``fit`` and spread over
threads; for dask inputs, a chunk function summed by :func:`emkit._backend.map_reduce` (lists,
dask bags and lists of ``dask.delayed`` statistics give the same parameters, up to rounding).
Posteriors are computed for stacked sessions or classes with Cholesky factorisations (see
:mod:`emkit._kernels.factor_analysis`).  Scoring keeps the constants of the last model scored, so
the reference's usage (one ``score`` call per probe) costs little more than the batched one.

Differences from the reference shared by both classes (each class lists its own):

* labels may be any hashable values (mapped to ``0..K-1`` in sorted order, ``classes_``);
* ``enroll_iterations`` is a constructor parameter, so ``get_params``/``clone`` keep it;
* U, V and D get the reference's initial values on first use (reading them, enrolling, scoring,
  ``fit``) rather than in ``__init__``: U then V from a private generator seeded by
  ``random_state`` (same numbers as the reference's ``np.random.seed`` + ``normal``; None draws
  from numpy's global generator, as the reference), which may also be a ``RandomState`` or
  ``Generator``; only missing parameters are initialised, so a user-assigned U, V or D is never
  re-drawn, and initial values are drawn again if the hyper-parameters or the UBM change;
* U, V and D are read-only arrays (assign a new array to change them);
* ``score`` also takes a list of probe templates and returns one score per template;
* a Gaussian that no statistic reaches keeps its previous subspace block (the reference hit a
  singular matrix); NaN or infinite statistics raise ``ValueError``;
* the public step methods (``update_z``, ``update_y``, ...) return new arrays instead of
  modifying their inputs;
* ``save``/``from_hdf5``/``load`` (emkit's versioned HDF5 layout; the reference had none).
* ``score_matrix(models, probes)`` scores M models against P probes in one call ((M, P)).

The package is organised by stage: :mod:`._model` (hyper-parameters, UBM, U/V/D, initial values,
persistence), :mod:`._constants` (what is derived from them), :mod:`._training` (training set,
passes, the ISV and JFA schedules; with :mod:`._blocks`, :mod:`._estep`, :mod:`._dask`,
:mod:`._labels`), :mod:`._scoring` (enrolment and scores), :mod:`._steps`,
:mod:`._latent_steps` and :mod:`._training_steps` (the reference's step API, compatibility
only), and the classes last (:mod:`.isv`, :mod:`.jfa`).
"""

# (the names the reference's factor_analysis module imports, so that importing them from it works)
from ..gmm import GMMMachine, GMMStats
from ..linear_scoring import linear_scoring
from ..utils import check_and_persist_dask_input
from ._dask import check_dask_input_samples_per_class, is_input_dask_nested
from ._model import FactorAnalysisBase
from ._steps import mult_along_axis, reduce_iadd
from .isv import ISVMachine
from .jfa import JFAMachine

__all__ = [
    "FactorAnalysisBase",
    "ISVMachine",
    "JFAMachine",
    "mult_along_axis",
    "reduce_iadd",
    "is_input_dask_nested",
    "check_dask_input_samples_per_class",
    # imported by the reference's module (code may import them from here)
    "GMMMachine",
    "GMMStats",
    "linear_scoring",
    "check_and_persist_dask_input",
]
