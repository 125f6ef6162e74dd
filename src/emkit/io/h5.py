"""HDF5 plumbing shared by every saveable object.

Files are written atomically: into a temporary file in the target directory, renamed over the
target only when the writer finished without error.  A crash never leaves a half-written file.

Files are read as untrusted input: every reader takes its datasets through :func:`read_array`
and :func:`read_scalar`, which check the link (no soft or external links), the storage (no
virtual datasets, no external raw data, no more bytes declared than the file holds), the type and
the shape *before* reading, and the finiteness and range of the values after.  Anything wrong is
an :class:`~emkit.io.errors.InvalidFileError` naming the file and the dataset, never quoting it.
A path is opened once, refused unless it is a regular file (a pipe would block), and HDF5 reads
that descriptor (:mod:`emkit.io.h5_files`) once its global heaps are found consistent
(:mod:`emkit.io.heaps`: HDF5 itself would loop forever).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os

import h5py
import numpy as np

from ._h5_open import check_target, hard_linked_child, is_path, open_file
from ._h5_new_file import new_h5_file
from .errors import InvalidFileError
from .h5_chunks import storage_problem
from .h5_values import as_read, bounds_text, check_read_values, describe_dtype, number_type_problem
from .read_back import read_compared, written_array
from .untrusted import with_article

#: (what emkit.io re-exports; the validated reads are its layouts' plumbing)
__all__ = ["atomic_h5_write", "open_for_writing", "open_for_reading", "write_stamp", "read_stamp"]

#: Root attribute naming the emkit class stored in a file of emkit's versioned layout.
CLASS_ATTR = "emkit_class"
#: Root attribute holding the integer version of that class's layout.
VERSION_ATTR = "emkit_format_version"
#: Longest string (characters) a reader accepts for a name-like dataset or attribute.
MAX_STRING = 65536
#: h5py failures that mean "damaged or hostile file" when they happen while reading one.
_READ_ERRORS = (OSError, KeyError, RuntimeError, TypeError, IndexError, AttributeError,
                OverflowError, UnicodeError, SystemError)


@contextlib.contextmanager
def atomic_h5_write(path):
    """A new HDF5 file written at a temporary name in ``path``'s directory, renamed to ``path``
    only when the ``with`` block ends without error (a crash leaves no half-written file).

    Parameters
    ----------
    path : str or path-like
        The file to write (replaced, if it exists, only on success).

    Yields
    ------
    h5py.File
        The temporary file, open for writing.
    """
    with new_h5_file(path) as handle:  # (not h5py.File(tmp): a full disk would crash libhdf5)
        yield handle


@contextlib.contextmanager
def open_for_writing(hdf5):
    """Where a ``save`` writes: a path atomically (:func:`atomic_h5_write`), an open h5py file
    or group as it is.

    Parameters
    ----------
    hdf5 : str, path-like or h5py.Group
        A path, or an open group writable and holding no saved object yet.

    Yields
    ------
    h5py.Group
        The file or group to write into.

    Raises
    ------
    TypeError
        ``hdf5`` is neither a path nor an h5py group.
    ValueError
        A closed or read-only group, or one that already holds a saved object.
    """
    check_target(hdf5)
    if is_path(hdf5):
        with atomic_h5_write(hdf5) as handle:
            yield handle
        return
    if hdf5.file.mode == "r":  # (h5py's own error named neither the file nor the mode)
        raise ValueError(f"hdf5: {hdf5.file.filename} is open read-only (h5py mode 'r'): "
                         "open it with mode 'r+' or 'a' to save into it")
    held = [name for name in (CLASS_ATTR, "writer_class") if name in hdf5.attrs]
    if held:  # a second object would fail halfway, leaving the first one unreadable
        raise ValueError(f"{filename(hdf5)}: group {hdf5.name!r} already holds a saved object "
                         f"(attribute {held[0]!r}); save into a new group or file")
    yield hdf5


def filename(group) -> str:
    """The name of the file ``group`` belongs to (for messages)."""
    try:
        return group.file.filename
    except Exception:  # a closed or broken handle
        return "the HDF5 file"


@contextlib.contextmanager
def open_for_reading(hdf5, what: str | None = None):
    """What a reader reads: a path opened read-only (closed afterwards), an h5py group as it is.

    h5py/HDF5 failures inside the ``with`` block (a damaged object header, a chunk beyond the
    end of the file...) become :class:`InvalidFileError` naming the file.

    Parameters
    ----------
    hdf5 : str, path-like or h5py.Group
        A path (a regular file: a directory or pipe is refused) or an open group.
    what : str, optional
        What the file should hold (e.g. ``"GMMMachine"``), for the messages.

    Yields
    ------
    h5py.Group
        The root of the file, or the group given.

    Raises
    ------
    FileNotFoundError
        No file at the path.
    InvalidFileError
        Not a regular file, not an HDF5 file, or damaged.
    TypeError, ValueError
        ``hdf5`` is neither a path nor an h5py group, or a closed one.
    """
    check_target(hdf5)
    handle_cm = open_file(os.fspath(hdf5)) if is_path(hdf5) else contextlib.nullcontext(hdf5)
    with handle_cm as handle:
        try:
            yield handle
        except InvalidFileError:
            raise
        except _READ_ERRORS as exc:
            if isinstance(exc, (FileNotFoundError, PermissionError)):
                raise
            holds = f" as a {what}" if what else ""
            raise InvalidFileError(f"{filename(handle)}: could not be read{holds} (damaged or "
                                   f"unsupported HDF5 structure: {type(exc).__name__})") from exc


# ---------------------------------------------------------------------------------------------
# validated reads
# ---------------------------------------------------------------------------------------------


def _where(group, name) -> str:
    parent = group.name if group.name != "/" else ""
    return f"{parent}/{name}"


def _fail(group, name, problem: str, kind: str = "dataset"):
    raise InvalidFileError(f"{filename(group)}: {kind} {_where(group, name)!r} {problem}")


def _guarded(label: str):
    """Any h5py/numpy failure inside a validated read (a damaged type, dataspace or chunk)
    becomes an :class:`InvalidFileError` naming the file and the dataset or attribute."""
    def wrap(fn):
        @functools.wraps(fn)
        def guarded(group, name, *args, **kwargs):
            try:
                return fn(group, name, *args, **kwargs)
            except InvalidFileError:
                raise
            except (ValueError, *_READ_ERRORS) as exc:
                raise InvalidFileError(f"{filename(group)}: {label} {_where(group, name)!r} could "
                                       f"not be read (damaged or unsupported: "
                                       f"{type(exc).__name__})") from exc
        return guarded
    return wrap


@_guarded("object")
def child(group, name: str, kind: str = "dataset", required: bool = True):
    """The dataset (``kind="dataset"``) or group ``name`` directly under ``group``, or None.

    Refuses soft links (dangling or not), external links (they would open another file), named
    types, objects of the other kind, virtual datasets and datasets whose raw data live in other
    files.  Missing: an error when ``required``, else None.
    """
    obj, _ = _child(group, name, kind, required)
    return obj


def _child(group, name, kind, required):
    """``child`` and, for a dataset, its creation property list (None for a group)."""
    return hard_linked_child(group, name, kind, required,
                             functools.partial(_fail, group, name, kind=kind))


def _check_storage(ds, dcpl, group, name) -> None:
    """The bytes the dataset declares must be in the file (checked before reading them)."""
    problem = storage_problem(ds, dcpl)
    if problem:
        _fail(group, name, problem)


def _check_dtype(ds, group, name, kind: str) -> None:
    dtype = ds.dtype
    if kind == "str":
        if dtype.kind == "S" and dtype.itemsize <= MAX_STRING:
            return
        if h5py.check_string_dtype(dtype) is not None and dtype.kind == "O":
            return
        _fail(group, name, f"must hold text; found {describe_dtype(dtype)}")
    problem = number_type_problem(dtype, kind)
    if problem:
        _fail(group, name, problem)


def _check_shape(ds, group, name, shape, size) -> None:
    found = ds.shape
    if shape is not None:
        ok = len(found) == len(shape) and all(e is None or e == f for e, f in zip(shape, found))
        if not ok:
            dims = ", ".join("*" if e is None else str(e) for e in shape)
            want = f"({dims}{',' if len(shape) == 1 else ''})"
            _fail(group, name, f"must have shape {want}; found {found}")
    if size is not None and int(np.prod(found, dtype=object)) != size:
        _fail(group, name, f"must hold {size} values; found shape {found}")


@_guarded("dataset")
def read_array(group, name: str, kind: str = "float", *, shape=None, size=None,
               required: bool = True, positive: bool = False, nonnegative: bool = False):
    """Dataset ``name`` of ``group`` as a C-contiguous float64 (``kind="float"``) / int64 / bool
    array, or (``kind="str"``) a flat list of ``str``.

    ``shape``: expected shape, ``None`` entries free; ``size``: expected number of values (any
    shape, for layouts that flatten).  Link, storage, type and shape are checked before the data
    are read; floats must then be finite (and ``positive``/``nonnegative`` when asked).  Missing
    and not ``required``: None.  While ``save`` reads back what it wrote, a dataset it wrote is
    checked block by block and returned as a read-only view of the array written
    (:mod:`emkit.io.read_back`).
    """
    ds, dcpl = _child(group, name, "dataset", required)
    if ds is None:
        return None
    _check_dtype(ds, group, name, kind)
    _check_shape(ds, group, name, shape, size)
    return _read_checked(ds, dcpl, group, name, kind, positive, nonnegative)


def _read_checked(ds, dcpl, group, name, kind, positive=False, nonnegative=False, rows=()):
    _check_storage(ds, dcpl, group, name)
    fail = functools.partial(_fail, group, name)
    written = written_array(ds) if kind != "str" else None
    if written is not None:  # save reads back what it wrote: block by block, no second copy
        return as_read(read_compared(ds, written, lambda block: check_read_values(
            block, kind, positive, nonnegative, fail)), kind)
    try:
        data = ds[rows]
    except _READ_ERRORS as exc:
        raise InvalidFileError(f"{filename(group)}: dataset {_where(group, name)!r} could not be "
                               f"read (damaged storage: {type(exc).__name__})") from exc
    if kind == "str":
        return [_as_text(v, group, name, "dataset") for v in np.asarray(data).reshape(-1)]
    check_read_values(np.asarray(data), kind, positive, nonnegative, fail)
    return as_read(data, kind)


@_guarded("dataset")
def read_scalar(group, name: str, kind: str = "float", *, required: bool = True, default=None,
                low=None, high=None, allow_nan: bool = False):
    """One value (shape () or, in bob 2.x files, (1,)) as ``numpy.float64``/``int64``/``bool_``/``str``.

    ``low``/``high``: inclusive bounds checked on numbers; ``allow_nan``: NaN accepted for floats
    (emkit writes NaN for None).  Missing and not ``required``: ``default``.
    """
    ds, dcpl = _child(group, name, "dataset", required)
    if ds is None:
        return default
    _check_dtype(ds, group, name, kind)
    if ds.shape not in ((), (1,)):
        _fail(group, name, f"must hold a single value; found shape {ds.shape}")
    if kind == "str":
        return _read_checked(ds, dcpl, group, name, kind)[0]
    if kind == "float" and allow_nan:
        _check_storage(ds, dcpl, group, name)
        try:
            value = np.float64(np.asarray(ds[()]).reshape(-1)[0])
        except _READ_ERRORS as exc:
            raise InvalidFileError(f"{filename(group)}: dataset {_where(group, name)!r} could not "
                                   f"be read ({type(exc).__name__})") from exc
        if np.isinf(value):
            _fail(group, name, "holds an infinite value")
    else:
        value = _read_checked(ds, dcpl, group, name, kind).reshape(-1)[0]
    if allow_nan and np.isnan(value):
        return value
    if low is not None and not value >= low or high is not None and not value <= high:
        _fail(group, name, f"must be {bounds_text(low, high)}")
    return value


def _as_text(value, group, name, kind) -> str:
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0]
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            _fail(group, name, "is not valid UTF-8 text", kind)
    if not isinstance(value, str):
        _fail(group, name, "must hold text", kind)
    if len(value) > MAX_STRING:
        _fail(group, name, f"holds a text longer than {MAX_STRING} characters", kind)
    return value


@_guarded("attribute")
def read_attr(group, name: str, kind: str = "str", *, required: bool = True, default=None):
    """Attribute ``name`` of ``group``: text (``kind="str"``), a JSON object as a dict
    (``kind="json"``), a single ``"int"``/``"float"`` number (``kind="auto"``: whichever it holds)
    or a ``"bool"`` (a boolean, or an integer 0 or 1).

    The attribute's type and size are checked before its value is read.
    """
    if name not in group.attrs:
        if required:
            _fail(group, name, "is missing", "attribute")
        return default
    aid = group.attrs.get_id(name)
    dtype, shape = aid.dtype, aid.shape
    if kind == "auto":
        kind = "str" if dtype.kind in "OS" else ("int" if dtype.kind in "iu" else "float")
    if shape is None or int(np.prod(shape, dtype=object)) != 1:
        _fail(group, name, f"must hold a single value; found shape {shape}", "attribute")
    if kind in ("str", "json"):
        text = h5py.check_string_dtype(dtype) is not None and dtype.kind in "OS"
        if not text or dtype.itemsize > MAX_STRING:
            _fail(group, name, f"must hold text; found {describe_dtype(dtype)}", "attribute")
        text = _as_text(group.attrs[name], group, name, "attribute")
        try:  # (nesting or numbers beyond the parser's limits are refused as well)
            value = text if kind == "str" else json.loads(text)
        except (ValueError, RecursionError):
            value = None
        if kind == "json" and not isinstance(value, dict):
            _fail(group, name, "must be a JSON object", "attribute")
        return value
    problem = number_type_problem(dtype, kind)
    if problem:
        _fail(group, name, problem, "attribute")
    value = np.asarray(group.attrs[name]).reshape(-1)[0]
    if kind == "float":
        value = np.float64(value)
        if not np.isfinite(value):
            _fail(group, name, "holds NaN or infinity", "attribute")
        return value
    if kind == "bool":
        if value not in (0, 1):
            _fail(group, name, "must be a boolean (0 or 1)", "attribute")
        return bool(value)
    return np.int64(value)


def check_values(group, name, ok: bool, problem: str) -> None:
    """Refuse dataset ``name`` of ``group`` with ``problem`` unless ``ok`` (cross-dataset checks)."""
    if not ok:
        _fail(group, name, problem)


def write_stamp(group, class_name: str, version: int) -> None:
    """Mark ``group`` as holding a ``class_name`` in emkit's layout number ``version`` (the
    root attributes :data:`CLASS_ATTR` and :data:`VERSION_ATTR`).

    Parameters
    ----------
    group : h5py.Group
        The group being written.
    class_name : str
        The emkit class stored (e.g. ``"PLDA"``).
    version : int
        The layout version written.
    """
    group.attrs[CLASS_ATTR] = class_name
    group.attrs[VERSION_ATTR] = np.int64(version)


def read_stamp(group, class_name: str, max_version: int) -> int:
    """Check that ``group`` holds a ``class_name`` in a layout this emkit reads.

    Parameters
    ----------
    group : h5py.Group
        The group being read.
    class_name : str
        The emkit class expected.
    max_version : int
        The newest layout version this emkit reads.

    Returns
    -------
    int
        The layout version, in ``[1, max_version]``.

    Raises
    ------
    InvalidFileError
        No stamp, another class (named only when it looks like a class name), or a version
        outside ``[1, max_version]`` (a newer one says to upgrade emkit).
    """
    found = read_attr(group, CLASS_ATTR, "str", required=False)
    if found is None:
        raise InvalidFileError(f"{filename(group)} is not an emkit {class_name} file (attribute "
                               f"{CLASS_ATTR!r} missing)")
    if found != class_name:
        shown = found if found.isidentifier() and len(found) <= 64 else "other emkit object"
        raise InvalidFileError(f"{filename(group)} holds an emkit {shown}, not "
                               f"{with_article(class_name)}")
    version = read_attr(group, VERSION_ATTR, "int")
    if version < 1:
        _fail(group, VERSION_ATTR, "must be a layout version >= 1", "attribute")
    if version > max_version:
        raise InvalidFileError(
            f"{filename(group)}: {class_name} file layout version {version} is newer than this "
            f"emkit reads (<= {max_version}); upgrade emkit"
        )
    return int(version)


def as_str(value) -> str:
    """h5py returns variable-length strings as bytes; turn them back into ``str``."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.shape == ():
        return as_str(value[()])
    return str(value)


def int_or_minus_one(value) -> np.int64:
    """An optional integer parameter as the layouts store it: -1 for None."""
    return np.int64(-1 if value is None else value)
