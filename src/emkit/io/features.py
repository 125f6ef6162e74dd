"""Reading feature files: one dispatch over the formats emkit reads.

Features are named matrices (one per utterance, ``(n_frames, n_features)``), read from:

``.npy``
    One 2-D array: one utterance, named after the file (``spk1_utt3.npy`` -> ``spk1_utt3``).
``.npz``
    One utterance per array, named by its key.  A file whose only array is ``arr_0``
    (``np.savez(path, X)``) is one utterance named after the file.
``.h5``, ``.hdf5``, ``.hdf``
    One utterance per 2-D numeric dataset, named by its path in the file without the leading
    ``/`` (``spk1/utt3``).  A file whose only dataset is ``array`` (bob's convention) is one
    utterance named after the file.
``.ark`` (or ``ark:PATH``)
    A Kaldi archive, binary (``FM``/``DM`` float matrices, ``FV``/``DV`` vectors read as one
    row, and the compressed ``CM``/``CM2``/``CM3`` matrices) or text (``key [ rows ]``).
``.scp`` (or ``scp:PATH``)
    A Kaldi script file: ``key path.ark:offset`` lines, optionally with a row range
    ``[first:last]`` or row and column ranges ``[r1:r2,c1:c2]`` (inclusive, as in Kaldi; ``:``
    alone for all rows or columns, ``[:,13:25]``; a last row up to 2 past the matrix's end is
    cut there with a warning, as Kaldi does);
    ``key path`` without an offset reads the first matrix of ``path``.  Piped commands
    (``cmd |``) are not supported.

Every matrix is returned as float64.  Kaldi's binary format is read by emkit's own code (no
kaldiio): after the key and a space, ``\\0B``, a type token (``FM `` ...), and for plain
matrices two int32 sizes, each preceded by a size byte (4), then the values row by row.

Feature files are treated as untrusted (:mod:`emkit.io.untrusted`): regular files only (no pipes
or devices, also when an scp points to one), every size a header declares checked against the
bytes present before anything is allocated, at most ``max_utterance_bytes`` (default 2 GiB as
float64) per utterance, no pickles, and errors (:class:`FeatureError`, an
:class:`~emkit.io.errors.InvalidFileError`) that name the file and the utterance without quoting
the file's bytes.  An scp may name any regular file, as in Kaldi: use scp files you trust.

The format readers themselves are :mod:`emkit.io.kaldi`, :mod:`emkit.io.numpy_files` and
:mod:`emkit.io.hdf5_features`; id lists, trials and score files are :mod:`emkit.io.lists`.
(:mod:`emkit.features` re-exports both modules' public names.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path

from .._progress import Progress, format_duration, in_words, plural
from .kaldi import read_kaldi_ark, read_kaldi_scp, scp_targets
from .kaldi import strip_specifier as _strip_specifier
from .numpy_files import read_npy, read_npz
from ._message_text import show_path
from .untrusted import (MAX_UTTERANCE_BYTES, FeatureError, as_features, check_limit,
                        check_regular, open_regular, show_key)

#: (FeatureError: what the readers raise, re-exported)
__all__ = ["read_features", "read_feature_sources", "list_feature_directory",
           "DIRECTORY_SUFFIXES", "FeatureError"]

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _read_npy(path: Path, limit: int) -> dict:
    return {path.stem: read_npy(path, max_utterance_bytes=limit, float64=True,
                                where=f"{path}: utterance {path.stem!r}")}


def _read_npz(path: Path, limit: int) -> dict:
    arrays = read_npz(path, max_utterance_bytes=limit, float64=True)
    if list(arrays) == ["arr_0"]:
        return {path.stem: arrays["arr_0"]}
    return arrays


def _read_h5(path: Path, limit: int) -> dict:
    from .hdf5_features import read_hdf5_features

    return read_hdf5_features(path, max_utterance_bytes=limit)


def _sniff(path: Path) -> str:
    with open_regular(path) as f:
        head = f.read(8)
    if head.startswith(_NPY_MAGIC):
        return "npy"
    if head.startswith(_ZIP_MAGIC):
        return "npz"
    if head.startswith(_HDF5_MAGIC):
        return "h5"
    return ""


_SUFFIXES = {".npy": "npy", ".npz": "npz", ".h5": "h5", ".hdf5": "h5", ".hdf": "h5", ".ark": "ark",
             ".scp": "scp"}
_READERS = {"npy": _read_npy, "npz": _read_npz, "h5": _read_h5,
            "ark": lambda p, limit: read_kaldi_ark(p, max_utterance_bytes=limit),
            "scp": lambda p, limit: read_kaldi_scp(p, max_utterance_bytes=limit)}


def feature_kind(path) -> tuple:
    """``(file, format)`` of a feature file as :func:`read_features` decides it: an ``ark:``/
    ``scp:`` prefix, else the extension, else the first bytes ("" when unknown)."""
    text = os.fspath(path)
    kind = ""
    m = re.match(r"^(ark|scp)(,[a-z]+)*:", text)
    if m:
        kind = m.group(1)
        text = _strip_specifier(text, "archive")
    if not os.path.lexists(text):
        raise FileNotFoundError(f"no such feature file: {show_path(text)}")
    try:
        check_regular(text)
    except FileNotFoundError:  # a dangling symbolic link
        raise FeatureError(f"{text}: a symbolic link to a missing file") from None
    return text, kind or _SUFFIXES.get(Path(text).suffix.lower(), "") or _sniff(Path(text))


def script_file_targets(path) -> list:
    """The existing files a feature file names when it is a Kaldi script file (decided as
    :func:`read_features` decides), resolved as its reader resolves them; else ``[]``.  For
    checks that an output is no input."""
    try:
        text, kind = feature_kind(path)
    except (OSError, ValueError):
        return []
    return scp_targets(text) if kind == "scp" else []


def read_features(path, *, n_features: int | None = None,
                  max_utterance_bytes: int = MAX_UTTERANCE_BYTES) -> dict:
    """The utterances of one feature file.

    The format comes from the extension (or an ``ark:``/``scp:`` prefix; otherwise the file's
    first bytes): see the module docstring.  Every utterance has at least one frame and one
    feature, and finite values.

    Parameters
    ----------
    path : str or path-like
        A ``.npy``, ``.npz``, ``.h5``/``.hdf5``/``.hdf``, ``.ark`` or ``.scp`` file (a regular
        file).
    n_features : int or None, keyword-only
        The feature dimension every utterance must have; None: not checked.
    max_utterance_bytes : int, keyword-only
        Largest float64 size of one utterance, ``n_frames * n_features * 8`` bytes (default
        2 GiB); a larger one raises before it is allocated.

    Returns
    -------
    dict of str to ndarray
        ``{utterance id: frames}``, each a float64 array of shape (n_frames, n_features), in
        file order.

    Raises
    ------
    FileNotFoundError
        A missing file.
    FeatureError
        (an :class:`~emkit.io.errors.InvalidFileError`) An unknown format, a file that is
        unreadable, inconsistent, empty or oversized, or an utterance of another dimension
        than ``n_features``; the message names the file and the utterance, never the file's
        bytes.
    """
    limit = check_limit(max_utterance_bytes)
    text, kind = feature_kind(path)
    if kind not in _READERS:
        raise FeatureError(f"{text}: unknown feature format (expected .npy, .npz, .h5/.hdf5, .ark "
                           "or .scp)")
    raw = _READERS[kind](Path(text), limit)
    if not raw:
        raise FeatureError(f"{text}: contains no feature matrix")
    checked = kind in ("ark", "scp")  # the Kaldi readers return finite float64 already
    return {key: as_features(value, f"{text}: utterance {show_key(key)}", n_features,
                             check_finite=not checked)
            for key, value in raw.items()}


def _twice(key, first: str, second: str) -> str:
    with contextlib.suppress(OSError):
        if os.path.samefile(feature_kind(first)[0], feature_kind(second)[0]):
            return (f"{first} is given twice (directly and through its directory, or under two "
                    f"names): its utterance {show_key(key)} would count twice")
    return f"utterance {show_key(key)} is in both {first} and {second}"


def read_feature_sources(paths, *, n_features: int | None = None,
                         max_utterance_bytes: int = MAX_UTTERANCE_BYTES) -> dict:
    """The utterances of several feature files, merged.

    The ``emkit`` logger says how far the reading is (INFO, at most every 30 s: files read of
    all) and what was read (utterances, frames, memory, time).

    Parameters
    ----------
    paths : iterable of str or path-like
        Feature files, each read by :func:`read_features`.
    n_features : int or None, keyword-only
        The feature dimension of every utterance; None: that of the first utterance read.
    max_utterance_bytes : int, keyword-only
        Largest float64 size of one utterance, ``n_frames * n_features * 8`` bytes (default
        2 GiB); a larger one raises before it is allocated.

    Returns
    -------
    dict of str to ndarray
        ``{utterance id: frames}``, each a float64 array of shape (n_frames, n_features), in
        the order of ``paths``.

    Raises
    ------
    FileNotFoundError
        A missing file.
    FeatureError
        No path given; an id found in two files (or one file given twice); utterances of two
        dimensions; any error of :func:`read_features`.
    """
    merged, origin = {}, {}
    found = n_features
    paths = list(paths)
    done = Progress("reading features", len(paths), "file")
    for path in paths:
        for key, array in read_features(path, n_features=n_features,
                                        max_utterance_bytes=max_utterance_bytes).items():
            if key in merged:
                raise FeatureError(_twice(key, origin[key], os.fspath(path)))
            if found is None:
                found = array.shape[1]
            elif array.shape[1] != found:
                first = next(iter(origin.values()))
                raise FeatureError(f"{os.fspath(path)}: utterance {show_key(key)} has {array.shape[1]} "
                                   f"features per frame, but those of {first} have {found}")
            merged[key] = array
            origin[key] = os.fspath(path)
        done.advance()
    if not merged:
        raise FeatureError("no feature file given")
    logging.getLogger("emkit").info(
        "read %s (%s x %s, %s in memory) from %s in %s", plural(len(merged), "utterance"),
        plural(sum(a.shape[0] for a in merged.values()), "frame"), plural(found, "feature"),
        in_words(sum(a.nbytes for a in merged.values())), plural(len(paths), "file"),
        format_duration(done.elapsed))
    return merged


#: Files of a directory read as features (not ``.scp``: its archives would be read twice).
DIRECTORY_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5", ".hdf", ".ark")


def list_feature_directory(path) -> list:
    """The feature files directly in a directory (not recursive), sorted by name.

    Files whose extension is one of :data:`DIRECTORY_SUFFIXES` (case-insensitive); hidden files
    (``.name``) are skipped.

    Parameters
    ----------
    path : str or path-like
        The directory.

    Returns
    -------
    list of str
        The files' paths (``path`` joined with each name).

    Raises
    ------
    FeatureError
        A directory without any feature file.
    OSError
        ``path`` is not a readable directory (``FileNotFoundError``, ``NotADirectoryError``...).
    """
    path = os.fspath(path)
    names = sorted(entry.name for entry in os.scandir(path)
                   if not entry.name.startswith(".") and entry.is_file()
                   and os.path.splitext(entry.name)[1].lower() in DIRECTORY_SUFFIXES)
    if not names:
        raise FeatureError(f"{path}: the directory holds no feature file (expected "
                           f"{', '.join(DIRECTORY_SUFFIXES)} files; subdirectories are not read)")
    return [os.path.join(path, name) for name in names]
