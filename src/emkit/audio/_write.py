"""Writing features: a directory of ``.npy`` files or a Kaldi ark/scp pair, each file replaced
only when complete.

Every output file is first written under a temporary name in its directory
(:func:`emkit.io.atomic.atomic_path`) and renamed only when every utterance has been computed
and written (the files one after the other, not together); a failure before then removes the
temporary files, so no output is ever half written, and the previous outputs of the same names
are kept.

The ark holds binary float32 matrices, Kaldi's ``FM`` format: ``key``, a space, ``\\0B``,
``FM ``, then the row and column counts (each a size byte 4 and a little-endian int32) and the
values row by row.  The scp lines are ``key /absolute/path.ark:offset``, the offset of the
``\\0B`` of each matrix, so Kaldi's tools and :func:`emkit.features.read_features` read them
from any directory.
"""

from __future__ import annotations

import contextlib
import os
import struct
from pathlib import Path

import numpy as np

from ..io._message_text import MAX_KEY_BYTES, show_key, show_path
from ..io.atomic import atomic_path

__all__ = ["write_npy_dir", "write_kaldi_ark", "kaldi_matrix_bytes", "output_kind",
           "utt2num_frames_path", "write_utt2num_frames"]

#: suffixes of the feature files emkit reads (emkit.io.features), other than .ark: an output
#: named so would be taken for such a file, not for the directory of .npy files written
_FILE_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5", ".hdf", ".scp")


def output_kind(output) -> str:
    """``"ark"`` for a ``.ark`` path (a Kaldi archive and its ``.scp``), ``"npy"`` for a
    directory of ``.npy`` files; ``ValueError`` for a name with the suffix of another feature
    file (``feats.h5`` would have been a directory of ``.npy`` files named like an HDF5 file)."""
    path = Path(output)
    suffix = path.suffix.lower()
    if suffix == ".ark":
        return "ark"
    if suffix in _FILE_SUFFIXES and not path.is_dir():
        raise ValueError(f"{str(output)!r}: features are written as a Kaldi archive (a PATH.ark, "
                         f"and its PATH.scp) or as a directory of <utterance-id>.npy files (a "
                         f"name without a feature-file suffix); not as a {suffix} file")
    return "npy"


def utt2num_frames_path(output) -> Path:
    """Where the ``utt2num_frames`` of features written to ``output`` goes.

    Parameters
    ----------
    output : str or path-like
        Where the features go: ``DIR/feats.ark`` (with ``DIR/feats.scp``, a Kaldi data
        directory's names), another ``NAME.ark``, or a directory of ``.npy`` files ``DIR``.

    Returns
    -------
    Path
        ``DIR/utt2num_frames``; for another ``NAME.ark``, ``NAME.utt2num_frames`` (two
        archives in one directory keep their own).
    """
    path = Path(output)
    if output_kind(output) == "npy":
        return path / "utt2num_frames"
    if path.stem == "feats":
        return path.with_name("utt2num_frames")
    return path.with_suffix(".utt2num_frames")


def write_utt2num_frames(f, shapes) -> None:
    """Write Kaldi's ``utt2num_frames`` lines, ``<utterance id> <frames>``, of ``shapes``
    ``{utterance id: (n_frames, n_features)}`` (in its order) to the open text file ``f``."""
    for key, shape in shapes.items():
        f.write(f"{_check_key(key)} {int(shape[0])}\n")


def kaldi_matrix_bytes(matrix: np.ndarray) -> bytes:
    """The binary Kaldi ``FM`` encoding of a 2-D matrix (``\\0BFM `` header, float32 values)."""
    m = np.ascontiguousarray(matrix, dtype="<f4")
    if m.ndim != 2:
        raise ValueError(f"a Kaldi matrix must be 2-D; got shape {m.shape}")
    return b"\0BFM " + struct.pack("<bibi", 4, m.shape[0], 4, m.shape[1]) + m.tobytes()


def _check_key(key: str) -> str:
    # (at most the bytes emkit's archive readers take as a key: what is written reads back)
    if (not key or any(c.isspace() for c in key) or not key.isprintable()
            or len(key.encode("utf-8")) > MAX_KEY_BYTES):
        raise ValueError(f"an utterance id must be non-empty printable text without white space, "
                         f"of at most {MAX_KEY_BYTES} UTF-8 bytes; got {show_key(key)}")
    return key


def _file_name_key(key: str) -> str:
    """``key`` as a file name inside the output folder: never a path that leaves it."""
    if "/" in _check_key(key) or "\\" in key or key.startswith("."):
        raise ValueError(f"utterance id {show_key(key)} cannot name a file (no '/', '\\' or "
                         "leading '.')")
    return key


def write_npy_dir(items, directory) -> list:
    """Write ``(utterance id, matrix)`` pairs as ``directory/<id>.npy`` files (float32).

    Parameters
    ----------
    items : iterable of (str, ndarray of shape (n_frames, n_features))
        The utterances, each id once.
    directory : str or path-like
        Created when missing (its parent must exist).

    Returns
    -------
    list of Path
        The files written, in the order of ``items``.

    Raises
    ------
    ValueError, NotADirectoryError
        A repeated or unusable id (also one that cannot name a file in ``directory``: with
        ``/``, ``\\`` or a leading ``.``), a matrix that is not 2-D; ``directory`` a file.
    """
    directory = Path(directory)
    created = not directory.is_dir()
    if created:
        if directory.exists():
            raise NotADirectoryError(f"cannot write features into {str(directory)!r}: it is a "
                                     "file, not a directory")
        directory.mkdir()
    try:
        return _write_npy(items, directory)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only when empty
        raise


def _write_npy(items, directory: Path) -> list:
    written = []
    with contextlib.ExitStack() as stack:
        for key, matrix in items:
            target = directory / f"{_file_name_key(key)}.npy"
            if target in written:
                raise ValueError(f"utterance {show_key(key)} would be written twice to "
                                 f"{show_path(directory)}")
            tmp = stack.enter_context(atomic_path(target, suffix=".npy"))
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(matrix, dtype=np.float32), allow_pickle=False)
            written.append(target)
    return written


def write_kaldi_ark(items, ark) -> tuple:
    """Write ``(utterance id, matrix)`` pairs to a Kaldi archive and its ``.scp`` (same stem).

    Parameters
    ----------
    items : iterable of (str, ndarray of shape (n_frames, n_features))
        The utterances, each id once (written as float32 matrices).
    ark : str or path-like
        ``PATH.ark``, without a line break in its path (spaces are fine: the ``.scp`` names
        it by its absolute path, the rest of each line).

    Returns
    -------
    (Path, Path)
        The archive and its script file.

    Raises
    ------
    ValueError
        A repeated or unusable id, a matrix that is not 2-D, a line break in ``ark``.
    """
    ark = Path(ark)
    scp = ark.with_suffix(".scp")
    final = os.path.abspath(ark)
    # an scp line is 'key rxfilename': Kaldi (and emkit's reader) take the rest of the line as
    # the file name, spaces included, so only a line break cannot be written in it
    if "\n" in final or "\r" in final:
        raise ValueError(f"{str(ark)!r}: the archive's path must not contain a line break (the "
                         ".scp, one line per utterance, could not name it)")
    seen = set()
    with atomic_path(scp, suffix=".scp") as tmp_scp, atomic_path(ark, suffix=".ark") as tmp_ark:
        with open(tmp_ark, "wb") as out, open(tmp_scp, "w", encoding="utf-8",
                                              newline="\n") as lines:
            for key, matrix in items:
                if _check_key(key) in seen:
                    raise ValueError(f"utterance {show_key(key)} would be written twice to "
                                     f"{show_path(ark)}")
                seen.add(key)
                out.write(key.encode("utf-8") + b" ")
                lines.write(f"{key} {final}:{out.tell()}\n")
                out.write(kaldi_matrix_bytes(matrix))
    return ark, scp
