"""Warnings attributed to the user's line: the first frame outside emkit (and scikit-learn).

A fixed ``stacklevel`` points at emkit's own lines as soon as the warning is given one call
deeper than it was written for (one public method calling another, a generator consumed by
emkit, scikit-learn's ``set_output`` wrapper around ``transform``).
"""

from __future__ import annotations

import os
import sys
import warnings

#: this package's folder: frames there are emkit's own, not the user's call
_PACKAGE_DIRECTORY = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _library_directories() -> tuple:
    """The folders whose frames are left out when a warning looks for the user's line: emkit's,
    and scikit-learn's when it is imported (its ``set_output`` wraps ``transform``)."""
    folders = [_PACKAGE_DIRECTORY]
    sklearn = sys.modules.get("sklearn")
    if getattr(sklearn, "__file__", None):
        folders.append(os.path.dirname(os.path.abspath(sklearn.__file__)) + os.sep)
    return tuple(folders)


def warn_at_caller(message: str, category=UserWarning) -> None:
    """``warnings.warn`` attributed to the first frame outside emkit (and scikit-learn): the
    user's call, however deep in emkit the check ran (a fixed ``stacklevel`` pointed at emkit's
    own lines whenever one public method called another)."""
    skipped, frame, level = _library_directories(), sys._getframe(0), 1
    while frame is not None and frame.f_code.co_filename.startswith(skipped):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
