"""emkit: EM-trained models for speaker and face verification.

Class for class compatible with bob.learn.em 3.3.1 (``KMeansMachine``, ``GMMMachine``,
``GMMStats``, ``linear_scoring`` ...), with kernels written as BLAS matrix products over bounded
row blocks, and dask support for data that outgrow one machine.  Beyond the reference: ``PLDA``,
``LDA`` (:mod:`emkit.lda`), score normalisation, ``LinearCalibration`` and the metrics
(:mod:`emkit.evaluation`), the ``emkit`` command line and its recipes (:mod:`emkit.recipe`).

The public names (``emkit.__all__``) are imported on first use (module ``__getattr__``), so
``import emkit`` and the ``emkit`` command start without loading numpy, scipy, scikit-learn,
dask or h5py.
"""

from __future__ import annotations

import importlib
import sys
import types

# read OMP_NUM_THREADS now, as OpenMP and OpenBLAS do when they load (standard library only): a
# dask nanny started later sets it to 1 in this process's environment too
from . import _cpus  # noqa: F401

__version__ = "0.1.0"  # also the distribution's version: pyproject.toml reads it

#: public name -> submodule that defines it (a submodule itself when the name is the module's)
_LAZY = {
    "GMMMachine": ".gmm",
    "GMMStats": ".stats",
    "KMeansMachine": ".kmeans",
    "linear_scoring": ".linear_scoring",
    "ISVMachine": ".factor_analysis",
    "JFAMachine": ".factor_analysis",
    "IVectorMachine": ".ivector",
    "IVectorStats": ".ivector",
    "WCCN": ".wccn",
    "Whitening": ".whitening",
    "PLDA": ".plda",
    "PLDAEnrollment": ".plda",
    "LinearCalibration": ".evaluation.calibration",
    "znorm": ".evaluation.score_norm",
    "tnorm": ".evaluation.score_norm",
    "ztnorm": ".evaluation.score_norm",
    "snorm": ".evaluation.score_norm",
    "adaptive_snorm": ".evaluation.score_norm",
    "cohort_scores": ".evaluation.score_norm",
    "datasets": ".datasets",
    "metrics": ".evaluation.metrics",
    "set_config": "._config",
    "get_config": "._config",
    "config_context": "._config",
    "release_staging_buffers": "._backend._device",
    "CheckpointMismatchError": "._checkpoint",
    # the reference's submodules, reachable as attributes as they are in bob.learn.em
    # (``bob.learn.em.gmm.e_step``); linear_scoring is the function, as there
    "factor_analysis": ".factor_analysis",
    "gmm": ".gmm",
    "ivector": ".ivector",
    "kmeans": ".kmeans",
    "utils": ".utils",
    "wccn": ".wccn",
    "whitening": ".whitening",
}

_MODULES = {"datasets", "metrics", "factor_analysis", "gmm", "ivector", "kmeans", "utils", "wccn",
            "whitening"}

#: class stamp of a model file -> the module that defines the class and registers its layout
#: (:mod:`emkit.io._registry` resolves stamps through this table, so no ``io`` module imports an
#: estimator module)
_PERSISTENT = {
    "GMMMachine": ".gmm",
    "GMMStats": ".stats",
    "KMeansMachine": ".kmeans",
    "ISVMachine": ".factor_analysis",
    "JFAMachine": ".factor_analysis",
    "IVectorMachine": ".ivector",
    "WCCN": ".wccn",
    "Whitening": ".whitening",
    "PLDA": ".plda",
    "LDA": ".lda",
    "LinearCalibration": ".evaluation.calibration",
    "IVectorBackend": ".experiment",
    "EnrolledModels": ".experiment",
}

__all__ = list(_LAZY)


#: public subpackages and modules reachable as attributes after a plain ``import emkit``
#: (``emkit.io.load(...)``), imported on first use too
_SUBMODULES = {"io", "features", "experiment", "evaluation", "calibration", "calibration_io",
               "score_norm", "cohort", "plda", "lda", "stats", "audio", "recipe",
               "demo", "cli"}


def __getattr__(name: str):
    module_name = _LAZY.get(name)
    if module_name is None and name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)  # (sets the attribute itself)
    if module_name is None:
        raise AttributeError(f"module 'emkit' has no attribute {name!r}")
    module = importlib.import_module(module_name, __name__)
    value = module if name in _MODULES else getattr(module, name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def _import_persistent(stamp: str) -> None:
    """Import the module defining the persistent class ``stamp`` (which registers its layout)."""
    module_name = _PERSISTENT.get(stamp)
    if module_name is not None:
        importlib.import_module(module_name, __name__)


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """``emkit.linear_scoring`` stays the function when its submodule is first imported later
    (the import system binds a loaded submodule as an attribute of its package)."""

    def __setattr__(self, name, value):
        if name == "linear_scoring" and isinstance(value, types.ModuleType):
            value = value.linear_scoring
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
