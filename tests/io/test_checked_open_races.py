"""A file checked, then replaced by a named pipe before it is opened: every reader refuses it,
naming the file, instead of blocking in ``open`` (it reads the descriptor it checked)."""

import os
import sys

import h5py
import numpy as np
import pytest

import emkit.io.untrusted as untrusted
from emkit import GMMMachine
from emkit.io.errors import InvalidFileError
from emkit.io.untrusted import FeatureError

@pytest.fixture
def pipe_after_check(monkeypatch, no_hang):
    """``swap(path)``: right after emkit's check of ``path``, the file there becomes a named
    pipe (as another process could make it); a reader that opens the path again blocks."""
    real = untrusted.check_regular
    targets = set()

    def check_then_swap(path, what=""):
        info = real(path, what)
        if os.fspath(path) in targets:
            targets.discard(os.fspath(path))
            os.unlink(path)
            os.mkfifo(path)
        return info

    for name, module in list(sys.modules.items()):  # and the modules that import it by name
        if name.startswith("emkit") and getattr(module, "check_regular", None) is real:
            monkeypatch.setattr(module, "check_regular", check_then_swap)
    yield lambda path: targets.add(os.fspath(path))
    assert not targets, f"never checked: {targets}"


def test_the_descriptor_checked_is_read_and_is_blocking(tmp_path, pipe_after_check):
    (tmp_path / "a.ark").write_bytes(b"x" * 10)
    with untrusted.open_regular(tmp_path / "a.ark") as f:
        assert os.get_blocking(f.fileno()) and f.read() == b"x" * 10
    pipe_after_check(tmp_path / "a.ark")
    with pytest.raises(FeatureError, match=r"'.*a\.ark' is a named pipe, not a regular file; "
                                           "emkit reads regular files only"):
        untrusted.open_regular(tmp_path / "a.ark", what="scp line 1")
