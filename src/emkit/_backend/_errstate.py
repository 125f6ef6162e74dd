"""numpy's floating-point error state (``np.errstate``) belongs to a thread: a worker of emkit's
thread pool does not see the ``np.errstate`` block its caller is in, so an overflow the caller
chose to ignore (and then refuses by name) would surface in the worker as numpy's warning."""

from __future__ import annotations

import numpy as np


def in_callers_errstate(fn):
    """``fn`` wrapped to run under the ``np.errstate`` of the thread calling this function: its
    settings and its ``np.seterrcall`` function (which ``'call'`` settings need)."""
    settings, error_call = np.geterr(), np.geterrcall()

    def call(item):
        with np.errstate(call=error_call, **settings):
            return fn(item)

    return call
