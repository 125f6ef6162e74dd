"""Persistence by registry: ``save(obj, path)`` and ``load(path)`` for every emkit class.

Each class registers its layout next to its own definition (the estimator module imports
``register``; no ``io`` module imports an estimator)::

    register(GMMMachine, "GMMMachine", write="emkit.io.gmm:write_gmm_machine",
             read="emkit.io.gmm:read_gmm_machine")

``write(obj, group)`` writes the layout into an open h5py group and ``read(group, cls)`` builds
the object through the class's own constructor or classmethods.  Files name their class in the
``emkit_class`` attribute (the reference's GMMMachine/GMMStats files are recognised by their
datasets); a stamp is resolved to its class through emkit's table of persistent classes, which
imports the defining module (and so registers it) on first use.  Nested objects (the UBM inside an
ISV file) go through :func:`save_into`/:func:`load_from`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Union

from .errors import InvalidFileError

#: a function, or "module:function" imported on first use (so that registering a class at import
#: time loads neither h5py nor the layout module)
Function = Union[Callable, str]


@dataclass(frozen=True)
class Layout:
    cls: type
    stamp: str
    writer: Function
    reader: Function

    def write(self, obj, group) -> None:
        _resolve(self.writer)(obj, group)

    def read(self, group, cls):
        return _resolve(self.reader)(group, cls)


def _resolve(function: Function) -> Callable:
    if callable(function):
        return function
    module, _, name = function.partition(":")
    return getattr(importlib.import_module(module), name)


_BY_CLASS: dict = {}
_BY_STAMP: dict = {}


def register(cls, stamp: str, *, write: Function, read: Function) -> None:
    """Register the HDF5 layout of a class, for :func:`save` and :func:`load`.

    Parameters
    ----------
    cls : type
        The class (its subclasses use the layout too, unless they register their own).
    stamp : str
        The class stamp written in its files.
    write : callable or str
        ``write(obj, group)``, or a ``"module:function"`` string imported on first use.
    read : callable or str
        ``read(group, cls) -> obj``, or a ``"module:function"`` string.
    """
    layout = Layout(cls, stamp, write, read)
    _BY_CLASS[cls] = layout
    _BY_STAMP[stamp] = layout


def layout_of(cls) -> Layout:
    """The registered layout of ``cls`` (or of its nearest registered base class)."""
    for klass in cls.__mro__:
        if klass in _BY_CLASS:
            return _BY_CLASS[klass]
    raise TypeError(f"emkit cannot save a {cls.__name__}: no file layout is registered for it")


def save(obj, hdf5) -> None:
    """Write any emkit model to HDF5.

    What was written is read back before the file is complete, block by block and compared with
    the model's arrays (:mod:`emkit.io.read_back`, no second copy of the model).

    Parameters
    ----------
    obj : object
        An instance of a registered class (every emkit model).
    hdf5 : str, path-like, h5py.File or h5py.Group
        A path (written atomically: a temporary file, then a rename) or an open, writable
        File/Group holding no saved object yet.

    Raises
    ------
    TypeError
        No layout is registered for ``obj``'s class, or ``hdf5`` is neither a path nor a group.
    ValueError
        Its reader refuses what was written (an attribute assigned, or a ``set_params`` value,
        that disagrees with the rest of the model): nothing is written (a group given open is
        left as it was).
    """
    from .h5 import filename, open_for_writing
    from .read_back import reading_back

    layout = layout_of(type(obj))
    with open_for_writing(hdf5) as group:
        names, attributes = set(group), set(group.attrs)
        try:
            with reading_back():
                layout.write(obj, group)
                _read(group, type(obj))
        except BaseException as exc:
            for name in set(group) - names:
                del group[name]
            for name in set(group.attrs) - attributes:
                del group.attrs[name]
            if not isinstance(exc, InvalidFileError):
                raise
            reason = str(exc).removeprefix(filename(group)).lstrip(": ")
            raise ValueError(f"{type(obj).__name__} not saved, nothing was written: emkit would "
                             f"refuse to load the file ({reason}); an attribute assigned, or a "
                             "set_params value, disagrees with the rest of the model") from None


def save_into(group, name: str, obj) -> None:
    """Write ``obj`` into a new subgroup ``name`` of the open group ``group``."""
    layout_of(type(obj)).write(obj, group.create_group(name))


def load(hdf5, expected=None):
    """The object stored in an HDF5 file, of the class its stamp names.

    Parameters
    ----------
    hdf5 : str, path-like, h5py.File or h5py.Group
        A path (opened read-only, closed afterwards) or an open group.
    expected : type or str, optional
        A class or a stamp: a file holding another class is refused.

    Returns
    -------
    object
        A new instance of the stored class (or of ``expected``, a subclass of it).

    Raises
    ------
    FileNotFoundError
        No such file.
    InvalidFileError
        Not a file emkit reads, another class than ``expected``, a damaged or hostile file
        (naming the file and the dataset, never echoing its contents).
    """
    from .h5 import open_for_reading

    with open_for_reading(hdf5, _expected_stamp(expected)) as group:
        return _read(group, expected)


def load_from(group, name: str, expected=None):
    """The object stored in subgroup ``name`` of the open group ``group``."""
    from .h5 import child

    return _read(child(group, name, kind="group"), expected)


def _read(group, expected):
    from .h5 import filename
    from .untrusted import with_article

    stamp = stamp_of(group)
    want = _expected_stamp(expected)
    if want is not None and stamp != want and not _is_subclass_stamp(stamp, expected):
        raise InvalidFileError(f"{filename(group)} holds {with_article(stamp)}, not {with_article(want)}")
    layout = _layout_for_stamp(stamp, group)
    cls = expected if isinstance(expected, type) and issubclass(expected, layout.cls) else layout.cls
    return layout.read(group, cls)


def stamp_of(group) -> str:
    """The class stored in ``group``: its ``emkit_class`` attribute, else recognised from the
    reference's layouts (GMMMachine, GMMStats, current or bob 2.x)."""
    from .h5 import CLASS_ATTR, filename, read_attr

    stamp = read_attr(group, CLASS_ATTR, "str", required=False)
    if stamp is not None:
        if not (stamp.isidentifier() and len(stamp) <= 64):
            raise InvalidFileError(f"{filename(group)}: attribute {CLASS_ATTR!r} does not name a class")
        return stamp
    writer = read_attr(group, "writer_class", "str", required=False) or ""
    for name in ("GMMMachine", "GMMStats"):
        if writer.endswith(f".{name}'>"):
            return name
    if "m_n_gaussians" in group or "gaussians" in group or "weights" in group:
        return "GMMMachine"
    if "sumPx" in group:
        return "GMMStats"
    raise InvalidFileError(f"{filename(group)} holds no object emkit can load (attribute "
                           f"{CLASS_ATTR!r} missing and not a bob.learn.em GMM layout)")


def _expected_stamp(expected):
    if expected is None or isinstance(expected, str):
        return expected
    return layout_of(expected).stamp


def _is_subclass_stamp(stamp, expected) -> bool:
    if not isinstance(expected, type):
        return False
    layout = _BY_STAMP.get(stamp)
    return layout is not None and issubclass(layout.cls, expected)


def _layout_for_stamp(stamp: str, group) -> Layout:
    from .h5 import filename

    if stamp not in _BY_STAMP:
        emkit = importlib.import_module("emkit")
        emkit._import_persistent(stamp)  # the defining module registers the class
    layout = _BY_STAMP.get(stamp)
    if layout is None:
        raise InvalidFileError(f"{filename(group)} holds an emkit {stamp}, which this emkit "
                               "cannot load")
    return layout
