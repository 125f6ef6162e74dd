"""Sizes declared by untrusted files, checked before anything is allocated (the second rule of
:mod:`emkit.io.untrusted`, which re-exports these names)."""

from __future__ import annotations

import numpy as np

from .._describe import describe
from .errors import FeatureError


def check_declared(needed: int, available: int, where: str, what: str = "data") -> None:
    """Refuse a header that declares more bytes than the file has left.

    Parameters
    ----------
    needed : int
        Bytes the header declares.
    available : int
        Bytes left in the file.
    where : str
        The file (and utterance), for the message.
    what : str, default "data"
        What the bytes hold, for the message.

    Raises
    ------
    FeatureError
        ``needed`` > ``available``.
    """
    if needed > available:
        raise FeatureError(f"{where}: the file ends in the middle of the {what}: its header "
                           f"declares {needed} bytes but only {available} remain")


def check_utterance_size(shape, where: str, max_utterance_bytes: int) -> None:
    """Refuse an utterance whose float64 size ``prod(shape) * 8`` exceeds the limit.

    Parameters
    ----------
    shape : tuple of int
        The utterance's declared shape.
    where : str
        The file and utterance, for the message.
    max_utterance_bytes : int
        The limit, in bytes.

    Raises
    ------
    FeatureError
        A larger utterance.
    """
    n_bytes = 8
    for n in shape:
        n_bytes *= int(n)
    if n_bytes > max_utterance_bytes:
        dims = " x ".join(str(int(n)) for n in shape)
        raise FeatureError(f"{where}: a {dims} matrix ({n_bytes} bytes as float64) exceeds "
                           f"max_utterance_bytes={max_utterance_bytes}; raise the limit if the "
                           "file is trusted")


def check_limit(max_utterance_bytes) -> int:
    """Check a ``max_utterance_bytes`` argument.

    Parameters
    ----------
    max_utterance_bytes : int
        A limit in bytes, at least 8 (one float64).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        Not an integer (a bool included), or below 8.
    """
    if (isinstance(max_utterance_bytes, bool)
            or not isinstance(max_utterance_bytes, (int, np.integer)) or max_utterance_bytes < 8):
        raise ValueError("max_utterance_bytes must be an integer >= 8 (bytes); got "
                         f"{describe(max_utterance_bytes)}")
    return int(max_utterance_bytes)
