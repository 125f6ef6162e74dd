"""``emkit.score_norm``: kept for compatibility; the module is :mod:`emkit.evaluation.score_norm`.

``import emkit.score_norm`` gives that very module (same object, same names).
"""

import sys

from .evaluation import score_norm as _module

sys.modules[__name__] = _module
