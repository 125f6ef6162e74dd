"""``emkit.calibration``: kept for compatibility; the module is :mod:`emkit.evaluation.calibration`.

``import emkit.calibration`` gives that very module (same object, same names).
"""

import sys

from .evaluation import calibration as _module

sys.modules[__name__] = _module
