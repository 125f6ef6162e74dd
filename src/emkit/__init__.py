"""emkit: EM-trained models for speaker and face verification.

Class for class compatible with bob.learn.em 3.3.1 (``KMeansMachine``, ``GMMMachine``,
``GMMStats``, ``linear_scoring`` ...), with kernels written as BLAS matrix products over bounded
row blocks, and dask support for data that outgrow one machine.
"""

from . import datasets, metrics
from ._checkpoint import CheckpointMismatchError
from ._config import config_context, get_config, set_config
from .calibration import LinearCalibration
from .factor_analysis import ISVMachine, JFAMachine
from .gmm import GMMMachine
from .ivector import IVectorMachine, IVectorStats
from .kmeans import KMeansMachine
from .linear_scoring import linear_scoring
from .plda import PLDA, PLDAEnrollment
from .score_norm import adaptive_snorm, cohort_scores, snorm, tnorm, znorm, ztnorm
from .stats import GMMStats
from .wccn import WCCN
from .whitening import Whitening

__version__ = "0.1.0"

__all__ = [
    "GMMMachine",
    "GMMStats",
    "KMeansMachine",
    "linear_scoring",
    "ISVMachine",
    "JFAMachine",
    "IVectorMachine",
    "IVectorStats",
    "WCCN",
    "Whitening",
    "PLDA",
    "PLDAEnrollment",
    "LinearCalibration",
    "znorm",
    "tnorm",
    "ztnorm",
    "snorm",
    "adaptive_snorm",
    "cohort_scores",
    "datasets",
    "metrics",
    "set_config",
    "get_config",
    "config_context",
    "CheckpointMismatchError",
]
