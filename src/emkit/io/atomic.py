"""Atomic file writes: write under a temporary name in the target directory, rename on success.

A crash or an exception never leaves a half-written file, and never clobbers an existing one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp"):
    """Yield a temporary path next to ``path``; it replaces ``path`` when the block succeeds.

    The temporary file is created empty, exclusively (never an existing file or link), with the
    permissions of any new file (``0o666`` less the umask, applied by the system: the umask is
    never changed, not even for an instant).  It is removed whatever ends the block, Ctrl-C
    included, even one that comes the moment the file is created.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path!r}: directory {directory!r} does not exist")
    tmp = None
    try:
        for _ in range(100):
            # named before it exists, so that an interruption right after the creation removes it
            tmp = os.path.join(directory, f".emkit-{secrets.token_hex(8)}{suffix}")
            try:
                fd = os.open(tmp, _CREATE_FLAGS, 0o666)
            except FileExistsError:
                tmp = None  # someone else's file: never removed
                continue
            os.close(fd)
            break
        else:
            raise FileExistsError(f"cannot write {path!r}: no free temporary name in {directory!r}")
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)


@contextlib.contextmanager
def atomic_write(path, mode: str = "w"):
    """Yield a file object (``"w"``: UTF-8 text, ``"wb"``: binary) that becomes ``path`` on success."""
    text_args = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
    with atomic_path(path) as tmp, open(tmp, mode, **text_args) as f:
        yield f


def _file_identity(path):
    """``(device, inode)`` of the regular file at ``path`` (links followed), else None."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def same_destination(a, b) -> bool:
    """True when writing paths ``a`` and ``b`` would write one file: the same path once links and
    ``..`` are resolved (whether or not it exists yet), or the same existing file (hard links)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    identity = _file_identity(a)
    return identity is not None and identity == _file_identity(b)


def overwritten_input(outputs, inputs):
    """The first ``(output label, output path, input label, input path)`` where an output is an
    existing input file (the same file: symbolic and hard links, relative paths included), or
    None.  ``outputs``, ``inputs``: iterables of ``(label, path)``; each path is looked at once."""
    written = {}
    for label, path in outputs:
        identity = _file_identity(path)
        if identity is not None:
            written.setdefault(identity, (label, path))
    if not written:
        return None
    for label, path in inputs:
        hit = written.get(_file_identity(path))
        if hit is not None:
            return (*hit, label, path)
    return None
