"""The command's log lines on stderr: ``emkit: MESSAGE``, one line each, printed between the
tqdm bars of ``--progress`` (cleared before the line, redrawn after) instead of over them."""

from __future__ import annotations

import logging
import sys


def one_line(text) -> str:
    """``text`` with every run of white space (new lines included) made one space."""
    return " ".join(str(text).split())


class LineFormatter(logging.Formatter):
    """``emkit: MESSAGE`` for information, ``emkit: warning: MESSAGE`` above; one line."""

    def format(self, record):
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"emkit: {level}{one_line(record.getMessage())}"


class LineHandler(logging.StreamHandler):
    """A :class:`logging.StreamHandler` of :class:`LineFormatter` lines that clears the tqdm bars
    shown on the terminal before each line and redraws them below it (tqdm's own
    ``external_write_mode``, as ``tqdm.write``): a bar redrawn with ``\\r`` would otherwise
    overwrite the line, or the line be appended to the bar.

    Parameters
    ----------
    stream : file-like, optional
        Where the lines go (default ``sys.stderr``).
    """

    def __init__(self, stream=None):
        super().__init__(stream)
        self.setFormatter(LineFormatter())

    def emit(self, record):
        tqdm_std = sys.modules.get("tqdm.std")  # not imported: no bar to clear (and none loaded)
        if tqdm_std is None:
            super().emit(record)
            return
        with tqdm_std.tqdm.external_write_mode(file=self.stream):
            super().emit(record)
