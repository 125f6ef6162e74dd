"""Speaker-verification systems end to end, and the demo experiment of ``emkit demo``.

Building blocks (used by the demo, the recipes and the ``emkit`` commands on the user's own data):

- :func:`train_ubm`: k-means initialisation, then maximum-likelihood EM of a diagonal GMM
  (means, variances and weights); :func:`ubm_of`: the UBM behind any machine.
- :func:`compute_stats`: one :class:`~emkit.GMMStats` per utterance (with a progress bar);
  :class:`KeptStatistics` keeps them in a file that a resumed training run reads back.
- Systems (:data:`SYSTEMS`: name -> class, one :class:`System` subclass each), each with an
  enrol and a score step, all scoring every model against every probe: GMM-MAP with linear
  scoring; ISV and JFA (linear scoring with the probe's channel offset); i-vectors with
  whitening, length normalisation, WCCN and cosine scoring (:class:`IVectorBackend`); i-vectors
  with PLDA.  :func:`enroll` and :func:`score` pick the system from the machine and the models.
- :class:`EnrolledModels`: enrolled models in one HDF5 file (emkit layout ``EnrolledModels``),
  holding the machine needed to score them, so a model file is all ``emkit score`` needs.
- :func:`enroll_lists` and :func:`score_trials`: an enrolment list and a trial list (with
  optional score normalisation) on features in memory, with bounded memory: what ``emkit enroll``
  and ``emkit score`` run.

:func:`run_demo` (in :mod:`emkit.demo`, importable from here too) runs the whole experiment on
the embedded Japanese Vowels data.
"""

from __future__ import annotations

from ._common import (FIGURE_FORMATS, PROBE_BLOCK, SYSTEM_TITLES, SystemUnavailable, length_norm,
                      progress_bar, save_figure, save_png)
from ._ivector_backend import IVectorBackend
from ._models import EnrolledModels, enroll, load_machine, score, selection_mismatch
from ._systems import (SYSTEMS, GMMMAPSystem, ISVSystem, IVectorCosineSystem, IVectorPLDASystem,
                       JFASystem, System, system_for)
from ._stats_file import KeptStatistics
from ._trials import enroll_lists, score_trials
from ._ubm import (MIN_FRAMES_PER_GAUSSIAN, compute_stats, stats_per_block, too_few_frames,
                   train_ubm, ubm_of)

__all__ = ["DemoConfig", "DemoResult", "EnrolledModels", "IVectorBackend", "SystemUnavailable",
           "train_ubm", "too_few_frames", "MIN_FRAMES_PER_GAUSSIAN", "compute_stats", "KeptStatistics", "stats_per_block", "enroll", "score", "load_machine",
           "run_demo", "length_norm", "save_png", "save_figure", "FIGURE_FORMATS", "ubm_of",
           "enroll_lists", "score_trials", "selection_mismatch",
           "System", "SYSTEMS", "system_for", "GMMMAPSystem", "ISVSystem", "JFASystem",
           "IVectorCosineSystem", "IVectorPLDASystem", "SYSTEM_TITLES", "PROTOCOL"]

# The demo lives in emkit.demo, which imports this package: its names are looked up there on
# first use, so that either module can be imported first.
_DEMO_NAMES = ("DATA_NOTES", "PROTOCOL", "DemoConfig", "DemoResult", "format_table", "run_demo")


def __getattr__(name: str):
    if name in _DEMO_NAMES:
        from .. import demo

        return getattr(demo, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
