"""How names and contents of untrusted files appear in emkit's messages (escaped, shortened,
never quoted at length), and how a number in a text file must be written.  The rules of
untrusted input are in :mod:`emkit.io.untrusted`, which re-exports these names.
"""

from __future__ import annotations

import os
import re
import stat


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


def file_kind(mode: int) -> str:
    """What a file of ``os.stat`` mode ``mode`` is, in words: ``"a named pipe"``, ``"a symbolic
    link"``... (``"not a regular file"`` for any other)."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


#: How many of its last characters a path read from a file keeps in a message: the file name
#: survives a long folder, and no run of 100 of the file's characters is echoed.
PATH_TAIL = 80

#: A path longer than this (a user's value can be any string) is shown by its last PATH_TAIL
#: characters only, whoever gave it.
LONG_PATH = 200


def message_subject(path, what: str) -> str:
    """How a message starts: ``"scp line 3: 'x.ark'"`` with ``what`` (a path read from a file:
    its last 80 characters at most, as :func:`show_key` quotes an id's first 80), else the path
    itself (quoted and cut as :func:`show_path` cuts it when longer than ``LONG_PATH``)."""
    if what:
        return f"{what}: {show_path(path, tail=PATH_TAIL)}"
    path = os.fspath(path)
    return path if len(path) <= LONG_PATH else show_path(path)


def not_regular_message(subject: str, mode: int) -> str:
    """Why a file of ``os.stat`` mode ``mode`` is refused, after ``subject``."""
    return f"{subject} is {file_kind(mode)}, not a regular file; emkit reads regular files only"


def show_path(path, tail: int | None = None) -> str:
    """A path for a message: its ``repr``, so that control characters in a file name (an
    escape sequence) are shown escaped, never sent to the terminal.

    Parameters
    ----------
    path : str or path-like
    tail : int or None, default None
        For a path read from a file (whose length the file decides): at most its last ``tail``
        characters, after ``...``, so that its file name survives a long folder.  None: the
        whole path, unless it is longer than ``LONG_PATH`` (then its last ``PATH_TAIL``).

    Returns
    -------
    str
    """
    return repr(short_path(path, tail))


def short_path(path, tail: int | None = None):
    """``path`` as :func:`show_path` shows it, unquoted: the filename of an ``OSError``, whose
    message Python quotes itself.

    Parameters
    ----------
    path : str or path-like
    tail : int or None, default None
        As for :func:`show_path`.

    Returns
    -------
    str or bytes
        ``path`` (``os.fspath``), or ``...`` and its last characters when it is longer.
    """
    path = os.fspath(path)
    if tail is None and len(path) > LONG_PATH:
        tail = PATH_TAIL
    if tail is not None and len(path) > tail:
        path = ("..." if isinstance(path, str) else b"...") + path[-tail:]
    return path


def with_article(name: str) -> str:
    """A class name after its article, for messages: ``"a GMMMachine"``, ``"an ISVMachine"``.

    Parameters
    ----------
    name : str

    Returns
    -------
    str
    """
    return f"{'an' if name[:1] in tuple('AEIOU') else 'a'} {name}"


def show_key(key) -> str:
    """An utterance id for a message: its ``repr``, shortened to 80 characters when longer.

    Parameters
    ----------
    key : object
        The id (converted with ``str``).

    Returns
    -------
    str
    """
    key = str(key)
    return repr(key if len(key) <= 80 else key[:77] + "...")


#: The longest utterance id, in UTF-8 bytes, that emkit reads from or writes to a Kaldi archive:
#: a longer "key" means the file is not an archive.
MAX_KEY_BYTES = 1024


def plausible_key(raw: bytes) -> str | None:
    """The id as text if some bytes look like an utterance id, else None.

    Messages name an utterance by such an id only, so that a file that is not an archive at all
    does not get its first bytes quoted back as a "key".

    Parameters
    ----------
    raw : bytes

    Returns
    -------
    str or None
        The UTF-8 text of ``raw`` when it is printable, not empty and at most
        ``MAX_KEY_BYTES`` (1024) bytes long; None otherwise.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text and len(raw) <= MAX_KEY_BYTES and text.isprintable() else None


#: A number as Kaldi, BOSARIS and C's ``strtod`` write one: ASCII digits, an optional sign,
#: fraction and exponent.  Python's ``float`` also takes ``1_0``, non-ASCII digits (``\u0661``)
#: and surrounding white space; every text reader of numbers (score files, Kaldi text matrices,
#: segments times) accepts this pattern only.  Written so that a run of digits splits one way
#: only: ``[0-9]+\.?[0-9]*`` let a failed match try every split of the run (quadratic: a
#: 500,000-digit score followed by a letter took hours to refuse).
ASCII_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
#: What ``float`` reads as NaN or infinity (an error of its own: "must be finite")
NOT_FINITE = re.compile(r"[+-]?(?:inf|infinity|nan)", re.ASCII | re.IGNORECASE)


def number_advice(text: str) -> str:
    """How a number must be written, for a message refusing some text.

    Parameters
    ----------
    text : str
        The text refused; its first non-ASCII character, if any, is named.

    Returns
    -------
    str
    """
    foreign = next((c for c in text if not c.isascii()), None)
    why = f"; U+{ord(foreign):04X} is not ASCII" if foreign else ""
    return f"ASCII digits, an optional sign, '.' and exponent, e.g. -1.5e-3{why}"
