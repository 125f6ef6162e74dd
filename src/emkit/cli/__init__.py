"""The ``emkit`` command line (click): ``emkit --help`` lists the commands and the exit codes.

Commands: ``demo`` (the whole experiment on embedded data), ``features`` (MFCC/filterbanks
from audio), ``train-ubm``, ``train-isv``, ``train-jfa``, ``train-ivector``, ``extract-ivectors``
(i-vectors to a Kaldi archive or a .npz), ``enroll``, ``score``, ``calibrate``, ``evaluate`` and
``run`` (a whole experiment from a TOML recipe).  Exit status: 0 success, 1 runtime failure,
2 usage error, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM); errors are
one line on stderr.
"""

import os as _os
import signal as _signal
import sys as _sys


def _interrupted_at_start(signum, frame):
    _sys.stderr.write("\nemkit: interrupted\n")
    raise SystemExit(130)


# Run as the console script: Ctrl-C while the command is still loading exits with 130 and no
# traceback; main() installs Python's usual handler again once it has taken over.
if (_os.path.basename(getattr(_sys, "argv", [""])[0] or "") in ("emkit", "emkit.exe")
        and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler):  # not ignored
    _signal.signal(_signal.SIGINT, _interrupted_at_start)

# (imported to register the commands)
from . import _commands, _demo, _evaluate, _ivectors, _scoring  # noqa: E402,F401
from ._app import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, cli, main  # noqa: E402
from ._signals import EXIT_INTERRUPTED  # noqa: E402
from ._calibrate import calibrate as _calibrate  # noqa: E402
from ._features import features as _features  # noqa: E402
from ._run import run as _run  # noqa: E402

for _command in (_features, _calibrate, _run):
    cli.add_command(_command)

__all__ = ["cli", "main", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_INTERRUPTED"]
