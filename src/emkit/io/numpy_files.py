"""``.npy`` and ``.npz`` files read without trusting their headers.

``numpy.load`` allocates whatever shape a header declares and inflates whatever a zip member
claims; here the header is parsed first (its length bounded, ``ast.literal_eval`` only, never
pickles), only numeric dtypes are accepted (no object, structured, sub-array, string or complex
dtypes), and the declared data size must equal the bytes the file holds after the header.  In an
``.npz``, every member must be a ``.npy`` array stored or deflated (no encryption, no other
compression), the members may not overlap, a member may expand at most
:data:`~emkit.io.untrusted.MAX_COMPRESSION_RATIO` times, and its ``.npy`` header is checked
against the member's declared size before any data are inflated.  Fortran order and big-endian
data are accepted (returned C-ordered in native byte order).  See :mod:`emkit.io.untrusted`.
"""

from __future__ import annotations

import ast
import struct
import zipfile
import zlib

import numpy as np

from .untrusted import (MAX_COMPRESSION_RATIO, MAX_UTTERANCE_BYTES, FeatureError, check_declared,
                        check_limit, check_utterance_size, file_size, open_regular, read_values,
                        show_key)

__all__ = ["npy_layout", "read_npy", "read_npy_header", "read_npz"]

_MAGIC = b"\x93NUMPY"
_MAX_HEADER = 65536


def read_npy_header(f, where: str, available: int):
    """Parse and check a ``.npy`` header (format versions 1 to 3) from a binary stream.

    Parameters
    ----------
    f : binary file object
        Positioned at the magic string; left just after the header.
    where : str
        The file (or member) to name in error messages.
    available : int
        Bytes the stream holds from its start: a header declared longer raises.

    Returns
    -------
    dtype : numpy.dtype
        An integer or float dtype.
    shape : tuple of int
        The array's shape, as declared (at most 32 dimensions).
    fortran_order : bool
        Whether the data are in column-major order.
    header_bytes : int
        Bytes from the magic string to the data.
    data_bytes : int
        The data's size in bytes implied by ``dtype`` and ``shape``.

    Raises
    ------
    FeatureError
        No magic string, an unsupported version, a header over 64 KiB or past ``available``, not
        a literal dict of ``descr``, ``fortran_order`` and ``shape``, a dtype that is not integer
        or float (object, structured, string, complex), a malformed shape.
    """
    magic = f.read(10)
    if len(magic) < 10 or magic[:6] != _MAGIC:
        raise FeatureError(f"{where}: not a .npy array (the magic string '\\x93NUMPY' is missing)")
    major = magic[6]
    if major == 1:
        length, header_bytes = struct.unpack("<H", magic[8:10])[0], 10
    elif major in (2, 3):
        more = f.read(2)
        if len(more) < 2:
            raise FeatureError(f"{where}: the .npy header is truncated")
        length, header_bytes = struct.unpack("<I", magic[8:10] + more)[0], 12
    else:
        raise FeatureError(f"{where}: unsupported .npy format version {major}")
    if length > _MAX_HEADER:
        raise FeatureError(f"{where}: the .npy header declares {length} bytes (at most "
                           f"{_MAX_HEADER} accepted)")
    check_declared(length, available - header_bytes, where, ".npy header")
    raw = f.read(length)
    header_bytes += length
    try:
        header = ast.literal_eval(raw.decode("utf-8" if major == 3 else "latin-1"))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, UnicodeDecodeError):
        header = None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise FeatureError(f"{where}: the .npy header is not a dictionary with the keys 'descr', "
                           "'fortran_order' and 'shape'")
    descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    if not isinstance(descr, str):
        raise FeatureError(f"{where}: structured dtypes are not features (a numeric dtype is "
                           "needed)")
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError, SyntaxError):
        raise FeatureError(f"{where}: the .npy header names no valid dtype") from None
    if dtype.kind not in "fiu" or dtype.fields is not None or dtype.subdtype is not None:
        raise FeatureError(f"{where}: dtype {dtype.name} is not numeric (integers or floats; "
                           "object, structured, string and complex arrays are refused)")
    if not isinstance(fortran, bool):
        raise FeatureError(f"{where}: 'fortran_order' in the .npy header is not True or False")
    if (not isinstance(shape, tuple) or len(shape) > 32
            or not all(type(n) is int and 0 <= n < 2**63 for n in shape)):
        raise FeatureError(f"{where}: 'shape' in the .npy header is not a tuple of sizes >= 0 (and "
                           "below 2**63)")
    data_bytes = dtype.itemsize
    for n in shape:
        data_bytes *= n
    return dtype, shape, fortran, header_bytes, data_bytes


def _read_data(f, dtype, shape, fortran: bool, where: str, float64: bool) -> np.ndarray:
    """The data after the header (their size already checked), C order, native byte order."""
    count = 1
    for n in shape:
        count *= n
    values = read_values(f, count, dtype, where, np.float64 if float64 else None)
    return np.ascontiguousarray(values.reshape(shape, order="F" if fortran else "C"))


def _checked_header(f, where: str):
    """The header of an open ``.npy`` file, its data size checked against the file's size."""
    size = file_size(f)
    dtype, shape, fortran, header_bytes, data_bytes = read_npy_header(f, where, size)
    if data_bytes != size - header_bytes:
        raise FeatureError(f"{where}: the .npy header declares shape {shape} of {dtype.name} "
                           f"({data_bytes} bytes) but the file holds {size - header_bytes} bytes "
                           "of data")
    return dtype, shape, fortran, data_bytes


def npy_layout(path, where: str = ""):
    """The shape and dtype of a ``.npy`` file, read from its header only.

    Parameters
    ----------
    path : str or path-like
        A regular file.
    where : str, default ""
        The name for error messages (default: ``path``).

    Returns
    -------
    shape : tuple of int
    dtype : numpy.dtype

    Raises
    ------
    FeatureError
        A header :func:`read_npy_header` refuses, or one declaring more or fewer data bytes
        than the file holds.
    """
    with open_regular(path) as f:
        dtype, shape, _, _ = _checked_header(f, where or str(path))
    return shape, dtype


def read_npy(path, *, max_utterance_bytes: int = MAX_UTTERANCE_BYTES, where: str = "",
             float64: bool = False):
    """The array of a ``.npy`` file (integer or float dtypes only).

    The header's declared size is checked against the file's size before anything is read.

    Parameters
    ----------
    path : str or path-like
        A regular file.
    max_utterance_bytes : int, keyword-only
        Largest float64 size of one array, in bytes (default 2 GiB); a larger one raises before
        anything is allocated.
    where : str, keyword-only, default ""
        The name for error messages (default: ``path``).
    float64 : bool, keyword-only
        Convert the values to float64 (default False: the file's dtype is kept).

    Returns
    -------
    ndarray
        Of the shape the header declares, in native byte order and C order.

    Raises
    ------
    FeatureError
        As :func:`npy_layout`; an array over ``max_utterance_bytes``.
    """
    limit = check_limit(max_utterance_bytes)
    where = where or str(path)
    with open_regular(path) as f:
        dtype, shape, fortran, _ = _checked_header(f, where)
        check_utterance_size(shape, where, limit)
        return _read_data(f, dtype, shape, fortran, where, float64)


def _members(zf: zipfile.ZipFile, path, size: int):
    """(key, ZipInfo) of the members, after checking names, methods, sizes and overlaps."""
    seen, total = set(), 0
    for info in zf.infolist():
        if not info.filename.endswith(".npy"):
            raise FeatureError(f"{path}: member {show_key(info.filename)} is not a .npy array")
        key = info.filename[:-4]
        where = f"{path}: utterance {show_key(key)}"
        if key in seen:
            raise FeatureError(f"{where} appears twice")
        seen.add(key)
        if info.flag_bits & 0x1:
            raise FeatureError(f"{where} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise FeatureError(f"{where} uses zip compression method {info.compress_type}; only "
                               "stored and deflated members (numpy.savez, savez_compressed) are "
                               "read")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise FeatureError(f"{where}: a stored (uncompressed) member declares {info.file_size}"
                               f" bytes but occupies {info.compress_size}")
        if info.file_size > MAX_COMPRESSION_RATIO * info.compress_size + 1024:
            raise FeatureError(f"{where}: {info.compress_size} compressed bytes declare "
                               f"{info.file_size} bytes of data, more than {MAX_COMPRESSION_RATIO}"
                               " times as many (refused as a possible zip bomb)")
        total += info.compress_size
        if total > size:
            raise FeatureError(f"{path}: the members declare more compressed bytes than the file "
                               "holds (overlapping or damaged entries)")
        yield key, info


def read_npz(path, *, max_utterance_bytes: int = MAX_UTTERANCE_BYTES,
             float64: bool = False) -> dict:
    """The arrays of an ``.npz`` file (integer or float dtypes only), in file order.

    Parameters
    ----------
    path : str or path-like
        A regular file, a zip archive of ``.npy`` members (``numpy.savez`` or
        ``savez_compressed``).
    max_utterance_bytes : int, keyword-only
        Largest float64 size of one array, in bytes (default 2 GiB); a larger one raises before
        anything is allocated.
    float64 : bool, keyword-only
        Convert the values to float64 (default False: the file's dtype is kept).

    Returns
    -------
    dict of str to ndarray
        ``{key: array}`` (the member's name without ``.npy``), each of the shape its header
        declares, in native byte order and C order.

    Raises
    ------
    FeatureError
        Not a zip archive; a member that is not ``.npy``, repeated, encrypted, compressed other
        than by deflate, more than 100 times smaller than its data, or damaged; compressed sizes
        past the file's end; any header :func:`read_npy_header` refuses.
    """
    limit = check_limit(max_utterance_bytes)
    out = {}
    with open_regular(path) as f:
        size = file_size(f)
        try:
            zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
                struct.error, NotImplementedError, UnicodeDecodeError):
            raise FeatureError(f"{path}: not a valid .npz file (not a zip archive, or a damaged "
                               "one)") from None
        with zf:
            for key, info in _members(zf, path, size):
                where = f"{path}: utterance {show_key(key)}"
                try:
                    with zf.open(info) as member:
                        dtype, shape, fortran, header_bytes, data_bytes = read_npy_header(
                            member, where, info.file_size)
                        if header_bytes + data_bytes != info.file_size:
                            raise FeatureError(
                                f"{where}: the .npy header declares shape {shape} of "
                                f"{dtype.name} ({data_bytes} bytes) but the member holds "
                                f"{info.file_size - header_bytes} bytes of data")
                        check_utterance_size(shape, where, limit)
                        out[key] = _read_data(member, dtype, shape, fortran, where, float64)
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
                        struct.error, NotImplementedError, RuntimeError) as exc:
                    if isinstance(exc, FeatureError):
                        raise
                    raise FeatureError(f"{where}: the member is damaged (bad zip entry, bad "
                                       "compressed data or a checksum mismatch)") from None
    return out
