"""``emkit.metrics``: kept for compatibility; the module is :mod:`emkit.evaluation.metrics`.

``import emkit.metrics`` gives that very module (same object, same names).
"""

import sys

from .evaluation import metrics as _module

sys.modules[__name__] = _module
