"""Shared test set-up: ``tests/`` mirrors the package (one folder per part of emkit); helpers
shared by several folders live in ``tests/support/`` (parity tolerances, fixture cases, file
writers, CLI helpers) and are importable by their module name from every test."""

import os
import pathlib
import signal
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent / "support"))


class Blocked(BaseException):
    """Raised by :func:`no_hang`'s alarm in a read that blocked.  Not an ``OSError`` (as
    ``TimeoutError`` is), which a reader under test might take for an unreadable file and so pass,
    nor an ``Exception`` that a broad handler would swallow."""


@pytest.fixture
def no_hang():
    """A read that blocks (a named pipe opened for reading) fails the test after 20 s."""
    def alarm(signum, frame):
        raise Blocked("the reader blocked")
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


#: Thread counts that dask's nanny writes into this process's environment for the worker
#: processes it spawns, and never takes back: a later test's child process (a CLI run, another
#: interpreter) would inherit them and run emkit's pool and BLAS on one thread.  Taken at start-up
#: (a module-scoped cluster is set up before a test's own fixtures) and put back after each test.
_THREAD_VARIABLES = {name: os.environ.get(name)
                     for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


@pytest.fixture(autouse=True)
def _thread_variables_restored():
    yield
    for name, value in _THREAD_VARIABLES.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
