"""Evaluation of verification scores: :mod:`~emkit.evaluation.metrics` (EER, DCF, Cllr, DET),
:mod:`~emkit.evaluation.calibration` (linear calibration) and
:mod:`~emkit.evaluation.calibration_io` (on score files), :mod:`~emkit.evaluation.score_norm`
(Z-, T-, ZT-, S- and adaptive S-norm), :mod:`~emkit.evaluation.cohort` (cohorts of enrolled
models for score normalisation) and :mod:`~emkit.evaluation.text` (measures as printed text).

The old paths ``emkit.metrics``, ``emkit.calibration``, ``emkit.calibration_io``,
``emkit.score_norm`` and ``emkit.cohort`` import the same modules.  Submodules are imported on
first use (``import emkit.evaluation`` loads no numpy).
"""

import importlib

__all__ = ["metrics", "calibration", "calibration_io", "score_norm", "cohort", "text"]


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module 'emkit.evaluation' has no attribute {name!r}")
    return importlib.import_module(f".{name}", __name__)  # (binds itself as an attribute)


def __dir__():
    return sorted(set(globals()) | set(__all__))
