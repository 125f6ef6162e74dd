"""Vectors (i-vectors) to and from Kaldi archives: what Kaldi's ``ivector-extract`` writes and its
``ivector-plda-scoring`` reads, ``ark:ivector.ark`` or ``ark,scp:ivector.ark,ivector.scp``.

A vector in an archive is ``key``, a space, ``\\0B``, ``FV `` (float32) or ``DV `` (float64), its
length (a size byte 4 and a little-endian int32), then its values: the bytes Kaldi and kaldiio
write.  The ``.scp`` lines are ``key /absolute/path.ark:offset`` (the offset of the ``\\0B``), as
:func:`emkit.audio.write_kaldi_ark` writes them, so that the scp is read from any directory.
Each file is written atomically (:func:`emkit.io.atomic.atomic_path`) and replaced only when
complete: a failed write leaves the previous files as they were.  The two are renamed one after
the other, not together.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .._describe import describe
from ._message_text import MAX_KEY_BYTES, show_key, show_path
from .atomic import atomic_path
from .kaldi import read_kaldi_ark, read_kaldi_scp, strip_specifier
from .untrusted import MAX_UTTERANCE_BYTES, FeatureError

__all__ = ["write_kaldi_vectors", "read_kaldi_vectors", "vector_write_specifier"]

_TOKENS = {np.dtype(np.float32): b"FV ", np.dtype(np.float64): b"DV "}
#: options of a Kaldi write specifier that change nothing in what is written (b: binary, the
#: default; f / nf: flush or not after each object)
_HARMLESS_OPTIONS = {"b", "f", "nf"}
_OPTIONS_SHOWN = 3  # unknown options named in a message


def _listed(options: list) -> str:
    """The first few options, each shortened (a specifier can hold any number, of any length)."""
    shown = ", ".join(map(show_key, options[:_OPTIONS_SHOWN]))
    more = len(options) - _OPTIONS_SHOWN
    return shown if more <= 0 else f"{shown} and {more} more"


def vector_write_specifier(spec) -> tuple:
    """The archive and script file a Kaldi write specifier names.

    Parameters
    ----------
    spec : str
        ``ark:PATH.ark`` (an archive) or ``ark,scp:PATH.ark,PATH.scp`` (an archive and its
        script file); the options ``b``, ``f`` and ``nf`` may be added (``ark,scp,f:...``).

    Returns
    -------
    (str, str or None)
        The archive's path and the script file's (None for ``ark:``).

    Raises
    ------
    ValueError
        Anything else: no ``ark`` option, ``t`` (text archives are not written), a read option
        (``s``, ``cs``, ``p``, ``o``), ``scp:`` alone, a piped command or standard output, an
        ``ark,scp:`` without two paths, or one path named twice.
    """
    text = os.fspath(spec)
    match = re.match(r"^([a-z]+(?:,[a-z]+)*):(.*)$", text, re.DOTALL)
    if match is None:
        raise ValueError(f"{show_path(text)}: expected a Kaldi write specifier 'ark:PATH.ark' or "
                         "'ark,scp:PATH.ark,PATH.scp'")
    options, rest = match.group(1).split(","), match.group(2)
    unknown = sorted(set(options) - _HARMLESS_OPTIONS - {"ark", "scp"})
    if "ark" not in options or unknown:
        why = "no 'ark' in its options" if "ark" not in options else (
            "'t': text archives are not written (Kaldi reads binary ones)" if unknown == ["t"]
            else f"the option {_listed(unknown)}, which does not apply to writing")
        raise ValueError(f"{show_path(text)}: expected a Kaldi write specifier 'ark:PATH.ark' or "
                         f"'ark,scp:PATH.ark,PATH.scp'; got {why}")
    paths = rest.split(",") if "scp" in options else [rest]
    if len(paths) != (2 if "scp" in options else 1) or not all(paths):
        wanted = ("two paths, the archive's and the script file's, separated by a comma"
                  if "scp" in options else "the archive's path")
        raise ValueError(f"{show_path(text)}: expected {wanted} after the ':'")
    if any(p == "-" or p.lstrip().startswith("|") or p.rstrip().endswith("|") for p in paths):
        raise ValueError(f"{show_path(text)}: piped commands and standard output are not "
                         "supported; write to files")
    if len(paths) == 2 and os.path.abspath(paths[0]) == os.path.abspath(paths[1]):
        raise ValueError(f"{show_path(text)}: the archive and the script file are the same file")
    return paths[0], (paths[1] if len(paths) == 2 else None)


def _kaldi_key(key) -> str:
    if (not isinstance(key, str) or not key or not key.isprintable()
            or any(c.isspace() for c in key) or len(key.encode("utf-8")) > MAX_KEY_BYTES):
        raise ValueError(f"a Kaldi key must be a non-empty printable str without white space, of "
                         f"at most {MAX_KEY_BYTES} UTF-8 bytes; got {show_key(key)} "
                         f"({type(key).__name__})")
    return key


def _vector_bytes(key: str, vector, dtype) -> bytes:
    """The ``\\0BFV``/``\\0BDV`` object of one vector, checked (1-D, non-empty, finite)."""
    array = np.asarray(vector)
    if array.dtype.kind not in "iuf":  # (complex would lose its imaginary part in float32)
        raise ValueError(f"vector {show_key(key)}: expected real numbers; got an array of "
                         f"{describe(str(array.dtype))}")
    if dtype is None and array.dtype not in _TOKENS:
        raise ValueError(f"vector {show_key(key)}: expected float32 (written as FV) or float64 "
                         f"(DV) values, or give dtype; got {describe(str(array.dtype))}")
    with np.errstate(over="ignore"):  # (a float64 beyond float32: refused as infinite below)
        array = np.ascontiguousarray(array, dtype=(array.dtype if dtype is None else dtype))
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"vector {show_key(key)}: expected a 1-D array of at least one value; "
                         f"got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"vector {show_key(key)}: expected finite values; got NaN or infinity "
                         f"(in {array.dtype})")
    values = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return b"\0B" + _TOKENS[array.dtype] + struct.pack("<bi", 4, array.size) + values.tobytes()


def _written_dtype(dtype):
    """``dtype`` as a numpy dtype (None kept); ValueError unless float32 or float64."""
    if dtype is None:
        return None
    with contextlib.suppress(TypeError):
        if np.dtype(dtype) in _TOKENS:
            return np.dtype(dtype)
    raise ValueError(f"dtype: expected None, 'float32' or 'float64'; got {describe(dtype)}")


def _pairs(vectors):
    return vectors.items() if isinstance(vectors, Mapping) else vectors


def write_kaldi_vectors(vectors, ark, scp=None, *, dtype=None) -> tuple:
    """Write vectors to a Kaldi archive (and its script file), each replaced only when complete.

    Parameters
    ----------
    vectors : dict of str to ndarray of shape (dim,), or iterable of (str, ndarray) pairs
        The vectors by key (utterance id), in the order written; each key once.
    ark : str or path-like
        The archive, without a line break in its path (the script file names it).
    scp : str or path-like or None, default None
        The script file (``key /absolute/path.ark:offset`` lines); None: none is written.
    dtype : {None, "float32", "float64"}, keyword-only, default None
        The values written: float32 (``FV``, what Kaldi's ``ivector-extract`` writes) or float64
        (``DV``); None: each vector's own, which must be float32 or float64.

    Returns
    -------
    (Path, Path or None)
        The archive and the script file written.

    Raises
    ------
    ValueError
        A key that Kaldi cannot read (empty, white space, not printable) or written twice, a
        vector that is not 1-D, empty, not finite (after the conversion to ``dtype``) or of
        another dtype without ``dtype``; ``dtype`` not one of those above; a line break in
        ``ark``'s path; ``scp`` naming the archive.
    """
    dtype = _written_dtype(dtype)
    ark, scp = Path(ark), None if scp is None else Path(scp)
    final = os.path.abspath(ark)
    if "\n" in final or "\r" in final:
        raise ValueError(f"{show_path(ark)}: the archive's path must not contain a line break (the "
                         "script file, one line per vector, could not name it)")
    if scp is not None and os.path.abspath(scp) == final:
        raise ValueError(f"{show_path(scp)}: the script file cannot be the archive")
    seen = set()
    with contextlib.ExitStack() as stack:
        tmp_scp = None if scp is None else stack.enter_context(atomic_path(scp, suffix=".scp"))
        tmp_ark = stack.enter_context(atomic_path(ark, suffix=".ark"))
        out = stack.enter_context(open(tmp_ark, "wb"))
        lines = None if scp is None else stack.enter_context(
            open(tmp_scp, "w", encoding="utf-8", newline="\n"))
        for key, vector in _pairs(vectors):
            if _kaldi_key(key) in seen:
                raise ValueError(f"vector {show_key(key)} would be written twice to "
                                 f"{show_path(ark)}")
            seen.add(key)
            data = _vector_bytes(key, vector, dtype)
            out.write(key.encode("utf-8") + b" ")
            if lines is not None:
                lines.write(f"{key} {final}:{out.tell()}\n")
            out.write(data)
    return ark, scp


def read_kaldi_vectors(path, *, max_utterance_bytes: int = MAX_UTTERANCE_BYTES) -> dict:
    """The vectors of a Kaldi archive or script file (``FV``, ``DV``, or one-row matrices).

    Parameters
    ----------
    path : str or path-like
        An archive (``ark:`` prefix allowed), or a script file: an ``scp:`` prefix or a name
        ending in ``.scp``.
    max_utterance_bytes : int, keyword-only
        Largest float64 size of one vector, in bytes (default 2 GiB).

    Returns
    -------
    dict of str to ndarray
        ``{key: vector}`` in file order, each a finite float64 array of shape (dim,).

    Raises
    ------
    FeatureError
        Any error of :func:`~emkit.io.kaldi.read_kaldi_ark` or
        :func:`~emkit.io.kaldi.read_kaldi_scp`, or a matrix of more than one row.
    """
    text = os.fspath(path)
    prefix = re.match(r"^(ark|scp)(,[a-z]+)*:", text)
    is_scp = prefix.group(1) == "scp" if prefix else text.lower().endswith(".scp")
    read = read_kaldi_scp if is_scp else read_kaldi_ark
    out = {}
    for key, matrix in read(text, max_utterance_bytes=max_utterance_bytes).items():
        if matrix.shape[0] != 1:
            raise FeatureError(f"{show_path(strip_specifier(text, 'file'))}: utterance "
                               f"{show_key(key)} is a matrix of {matrix.shape[0]} rows, not a "
                               "vector")
        out[key] = matrix[0]
    return out
