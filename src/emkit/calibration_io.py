"""``emkit.calibration_io``: kept for compatibility; the module is :mod:`emkit.evaluation.calibration_io`.

``import emkit.calibration_io`` gives that very module (same object, same names).
"""

import sys

from .evaluation import calibration_io as _module

sys.modules[__name__] = _module
