"""Atomic file writes: write under a temporary name in the target directory, rename on success.

A crash or an exception never leaves a half-written file, and never clobbers an existing one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp"):
    """Yield a temporary path next to ``path``; it replaces ``path`` when the block succeeds."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path!r}: directory {directory!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".emkit-", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path, mode: str = "w"):
    """Yield a file object (``"w"``: UTF-8 text, ``"wb"``: binary) that becomes ``path`` on success."""
    text_args = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
    with atomic_path(path) as tmp, open(tmp, mode, **text_args) as f:
        yield f
