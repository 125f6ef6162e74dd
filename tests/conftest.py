"""Shared test set-up: ``tests/`` mirrors the package (one folder per part of emkit); helpers
shared by several folders live in ``tests/support/`` (parity tolerances, fixture cases, file
writers, CLI helpers) and are importable by their module name from every test."""

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
