"""Atomic file writes: write under a temporary name in the target directory, rename on success.

A crash or an exception never leaves a half-written file, and never clobbers an existing one.

A temporary file is named after its writer: ``.emkit-XXXX.<target key>.<host>.<pid><suffix>``.
One left behind by a process that was killed (SIGKILL, the out-of-memory killer, a scheduler's
hard limit) is removed by the next write of the same target on the same host, once its writer
process is gone.  Temporary files of live writers, of other targets and of other hosts are left
alone.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import secrets
import socket
import stat
from hashlib import blake2b
from ._message_text import short_path, show_path
from .._describe import describe

#: (emkit.features re-exports atomic_write; the other functions are internal helpers of
#: emkit's writers, the command line and checkpoints)
__all__ = ["atomic_write"]

logger = logging.getLogger("emkit")


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp"):
    """Yield a temporary path next to ``path``; it replaces ``path`` when the block succeeds.

    The temporary file is created empty, exclusively (never an existing file or link), with the
    permissions of any new file (``0o666`` less the umask, applied by the system: the umask is
    never changed, not even for an instant), or those of the file it replaces (a model file
    kept private, ``0o600``, stays so).  It is removed whatever ends the block, Ctrl-C
    included, even one that comes the moment the file is created.  As ``open`` does, a
    symbolic link is written through (its target is replaced, the link kept), and a file this
    process may not write is refused (``PermissionError``), not replaced.
    """
    shown = os.fspath(path)
    path = os.path.realpath(shown) if os.path.islink(shown) else shown
    if not path:
        raise FileNotFoundError("cannot write '': the path is empty")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {show_path(shown)}: it is a directory")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise PermissionError(f"cannot write {show_path(shown)}: the file is read-only (make it "
                              "writable or remove it first)")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {show_path(shown)}: directory "
                                f"{show_path(directory)} does not exist")
    if not suffix.startswith("."):
        raise ValueError(f"suffix must start with '.'; got {describe(suffix)}")
    _remove_listed_stale_temporaries(path)
    owner = f"{_name_key(path)}.{_HOST}.{os.getpid()}"
    tmp = None
    try:
        for _ in range(100):
            # named before it exists, so that an interruption right after the creation removes it
            tmp = os.path.join(directory, f".emkit-{secrets.token_hex(8)}.{owner}{suffix}")
            try:
                fd = os.open(tmp, _CREATE_FLAGS, 0o666)
            except FileExistsError:
                tmp = None  # someone else's file: never removed
                continue
            except OSError as exc:  # named after the target, as open() would, not the temporary
                tmp = None
                raise disk_error(exc, shown) from None
            os.close(fd)
            break
        else:
            raise FileExistsError(f"cannot write {show_path(path)}: no free temporary name in "
                                  f"{show_path(directory)}")
        yield tmp
        with contextlib.suppress(FileNotFoundError):  # the mode of the file replaced, if any
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(error, OSError) and _about_the_target(error, {path, shown}):
            raise disk_error(error, shown) from None
        raise


def _about_the_target(error: OSError, target: set) -> bool:
    """Whether ``error`` is named after the target (bounded: a path can be any length): a
    failed write names no file, and an ``os.stat`` or ``os.replace`` of the target names it."""
    if error.filename is None:
        return error.errno in _DISK_ERRNOS
    return error.filename in target or error.filename2 in target


#: What a write of a file meets when the disk, the quota or the process's file size limit is
#: full (not EIO: a read of an input meets it too)
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def disk_error(error: OSError, path) -> OSError:
    """A failed write of a temporary file as the error of the file it would have become.

    Parameters
    ----------
    error : OSError
        The failure (a full disk: errno ``ENOSPC``), which names no file or the temporary one.
    path : str or path-like
        The file being written.

    Returns
    -------
    OSError
        Of ``error``'s class and errno, naming ``path`` as Python's own errors name a file
        (``[Errno 28] No space left on device: 'model.h5'``); a path longer than 200
        characters by its last 80, after ``...``, in the message and ``filename`` alike.  Not
        chained to ``error`` (raise it ``from None``): ``error`` only named the temporary file.
    """
    return type(error)(error.errno, error.strerror or str(error) or type(error).__name__,
                       short_path(path))


_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)


# -- temporary files of killed writers -------------------------------------------------------------
_HOST = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:48] or "host"
# ("ckpt." : the names of checkpoint saves of emkit 0.x, before every write was named this way)
_TEMPORARY = re.compile(r"^\.emkit-[A-Za-z0-9_]+\.(?:ckpt\.)?(?P<key>[0-9a-f]{16})\."
                        r"(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>[0-9]+)\.")
#: directory -> target key -> stale temporaries, listed once per process and directory (a
#: writer of 10^5 files into one folder must not list it 10^5 times; a dead writer stays dead)
_LISTED: dict = {}


def _name_key(path: str) -> str:
    return blake2b(os.path.basename(path).encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process (or an absurd pid): keep
        return True
    return True


def _stale_temporaries(directory: str) -> dict:
    """Target key -> names of the temporary files in ``directory`` whose writer on this host is gone."""
    try:
        names = os.listdir(directory)
    except OSError:
        return {}
    stale = {}
    for name in names:
        match = _TEMPORARY.match(name)
        if match and match["host"] == _HOST and not _process_exists(int(match["pid"])):
            stale.setdefault(match["key"], []).append(name)
    return stale


def _remove(directory: str, names) -> list:
    removed = []
    for name in names:
        stale = os.path.join(directory, name)
        with contextlib.suppress(FileNotFoundError, PermissionError, IsADirectoryError):
            os.unlink(stale)
            removed.append(stale)
            logger.info("removed %s, left by an interrupted write", stale)
    return removed


def remove_stale_temporaries(path) -> list:
    """Remove the temporary files that writes of ``path`` left behind when their process was
    killed (same target name, this host, writer process gone); return their paths.  The folder
    is listed afresh at each call."""
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    return _remove(directory, _stale_temporaries(directory).get(_name_key(os.fspath(path)), []))


def _remove_listed_stale_temporaries(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in _LISTED:
        _LISTED[directory] = _stale_temporaries(directory)
    _remove(directory, _LISTED[directory].pop(_name_key(path), []))


@contextlib.contextmanager
def atomic_write(path, mode: str = "w"):
    """Write a file atomically: a file object that becomes ``path`` when the block succeeds.

    The data go to a temporary file next to ``path`` (see :func:`atomic_path`), which replaces
    ``path`` only when the ``with`` block ends without an exception; otherwise ``path`` is left
    as it was and the temporary file removed.

    Parameters
    ----------
    path : str or path-like
        The file to write; its directory must exist.
    mode : str, default "w"
        ``"w"``: UTF-8 text, lines ended by a line feed whatever the platform; ``"wb"``:
        binary.

    Yields
    ------
    file object
        Open for writing; closed at the end of the block.

    Raises
    ------
    FileNotFoundError
        An empty path, or a directory that does not exist.
    IsADirectoryError
        ``path`` is a directory.
    PermissionError
        ``path`` exists and is not writable.
    """
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
