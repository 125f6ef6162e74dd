"""The directories of emkit's spill files (:mod:`._spill_files`, ``dask_cache="disk"``).

A fit's files are under ``<spill_directory>/<token>/<host>-<pid>/`` (``<token>``: this fit's,
``emkit-spill-<random>.<host>.<pid>`` of the client process, see :func:`new_token`;
``<host>-<pid>``: the worker process that wrote them), named so that they cannot collide between
fits, workers or retries; the directory is private to its owner (biometric data).

``fit`` removes its directory however it ends, but not when its process is killed (SIGKILL, the
out-of-memory killer; SIGTERM in a Python program that does not handle it).  The next disk fit
with the same spill directory removes such leftovers (:func:`remove_stale_spills`): the
directories of clients on this host whose process is gone, never those of a live process or of
another host, never anything through a symbolic link.  Left alone: directories of earlier
versions (``emkit-spill-<random>``: nothing says whose they are), and those that workers on
another host wrote to their own disk (no shared ``spill_directory``): a client sweeps the spill
directory as its own host sees it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile
import uuid

logger = logging.getLogger("emkit")

__all__ = ["spill_base", "new_token", "remove_stale_spills", "worker_directory", "remove_spill"]

_TOKEN = re.compile(r"^emkit-spill-[0-9a-f]{32}\.(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>[0-9]+)$")


def spill_base() -> str | None:
    from .._config import get_config

    return get_config()["spill_directory"]


def new_token() -> str:
    """The name of a new fit's spill directory: random, with this (client) process's host and
    pid, so that :func:`remove_stale_spills` knows whose it is."""
    from ..io.atomic import _HOST

    return f"emkit-spill-{uuid.uuid4().hex}.{_HOST}.{os.getpid()}"


def remove_stale_spills(base) -> list:
    """Remove the spill directories in ``base`` (None: the temporary directory) left by killed
    clients of this host (named by :func:`new_token`, process gone, owned by this user; not a
    symbolic link); return their paths."""
    from ..io.atomic import _HOST, _process_exists

    base = base or tempfile.gettempdir()
    removed = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        match = _TOKEN.match(entry.name)
        if not match or match["host"] != _HOST or _process_exists(int(match["pid"])):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat(
                    follow_symlinks=False).st_uid != os.getuid():
                continue
        except OSError:
            continue
        shutil.rmtree(entry.path, ignore_errors=True)  # (links inside: removed, not followed)
        removed.append(entry.path)
        logger.info("removed %s, the spill directory of a killed process", entry.path)
    return removed


def worker_directory(base, token) -> str:
    root = os.path.join(base or tempfile.gettempdir(), token)
    return os.path.join(root, f"{socket.gethostname()}-{os.getpid()}")


def remove_spill(base, token) -> None:
    shutil.rmtree(os.path.join(base or tempfile.gettempdir(), token), ignore_errors=True)
