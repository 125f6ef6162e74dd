"""``emkit.cohort``: kept for compatibility; the module is :mod:`emkit.evaluation.cohort`.

``import emkit.cohort`` gives that very module (same object, same names).
"""

import sys

from .evaluation import cohort as _module

sys.modules[__name__] = _module
