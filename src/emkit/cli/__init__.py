"""The ``emkit`` command line (click): ``emkit --help`` lists the commands and the exit codes.

Commands: ``demo`` (the whole experiment on embedded data), ``train-ubm``, ``train-isv``,
``train-jfa``, ``train-ivector``, ``enroll``, ``score`` and ``evaluate``.  Exit status: 0 success,
1 runtime failure, 2 usage error; errors are one line on stderr.
"""

from . import _commands, _demo  # noqa: F401  (register the commands)
from ._app import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, cli, main

__all__ = ["cli", "main", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE"]
