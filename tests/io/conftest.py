"""Fixtures of the untrusted-file tests."""

import signal

import pytest


@pytest.fixture
def no_hang():
    """A reader that blocks (a named pipe opened for reading) fails the test after 20 s."""
    def alarm(signum, frame):
        raise TimeoutError("the reader blocked")
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
