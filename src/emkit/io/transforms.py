"""``Whitening``, ``WCCN`` and ``LDA`` in emkit's versioned HDF5 layouts.

bob.learn.em 3.x saves none of them.  Layout version 1 (attributes ``emkit_class`` =
``"Whitening"`` / ``"WCCN"`` / ``"LDA"`` and ``emkit_format_version = 1`` on the group):

* ``Whitening``: ``pinv`` (bool); when fitted, ``weights`` (D, D), ``input_subtract`` (D,) or a
  scalar, ``input_divide`` (float64, non-zero).
* ``WCCN``: the same, plus ``classes`` (K,) when the labels are numbers, booleans or text (labels
  of other types are not stored; text labels read back as a list of ``str``).
* ``LDA``: ``n_components`` (int64); when fitted, ``weights`` (D, k) with k = ``n_components``,
  ``input_subtract`` (D,), ``eigenvalues`` (k,).

Version 0 is the unstamped ``whitening``/``wccn``/``lda`` group of the i-vector system files of
earlier emkit versions: the fitted datasets only (``pinv`` False, no ``classes``).  The registry
(:func:`emkit.io.load`) reads stamped groups only; call the readers directly for version 0.

Readers build objects through the classes' ``_from_fitted`` classmethods; writers read public
attributes.  The classes register these functions at the bottom of their modules.
"""

from __future__ import annotations

import numpy as np

from .fit_summary import (read_classes, read_feature_names, storable_classes,
                          write_feature_names)
from .h5 import (CLASS_ATTR, check_values, child, open_for_reading, open_for_writing, read_array,
                 read_scalar, read_stamp, write_stamp)
from .read_back import write_array

__all__ = ["write_whitening", "read_whitening", "write_wccn", "read_wccn", "write_lda", "read_lda"]

FORMAT_VERSION = 1


def _is_fitted(obj, name: str = "weights") -> bool:
    return getattr(obj, name, None) is not None  # (unfitted: NotFittedError, an AttributeError)


def _has(f, name: str) -> bool:
    """Whether ``f`` links ``name`` (of any kind; ``in`` would follow an external link)."""
    return f.id.links.exists(name.encode())


def _stamp_version(f, class_name: str) -> int:
    """The layout version of group ``f``: 0 for an unstamped group, else the checked stamp's."""
    if CLASS_ATTR not in f.attrs:
        return 0
    return read_stamp(f, class_name, FORMAT_VERSION)


def _write_projection(f, step) -> None:
    write_array(f, "weights", step.weights)
    write_array(f, "input_subtract", step.input_subtract)
    f["input_divide"] = np.float64(step.input_divide)


def _read_projection(f) -> dict:
    """``weights`` (D, D), ``input_subtract`` (scalar or (D,)), ``input_divide`` (non-zero)."""
    weights = read_array(f, "weights", shape=(None, None))
    D = weights.shape[0]
    check_values(f, "weights", D >= 1 and weights.shape == (D, D), "must be a square matrix")
    if child(f, "input_subtract").shape in ((), (1,)):
        subtract = float(read_scalar(f, "input_subtract"))
    else:
        subtract = read_array(f, "input_subtract", shape=(D,))
    divide = float(read_scalar(f, "input_divide"))
    check_values(f, "input_divide", divide != 0, "must not be 0")
    return dict(weights=weights, input_subtract=subtract, input_divide=divide)


def _read_pinv(f, version) -> bool:
    return bool(read_scalar(f, "pinv", "bool")) if version >= 1 else False


# -- Whitening ------------------------------------------------------------------------------------

def write_whitening(white, hdf5) -> None:
    """Write a Whitening in emkit's layout ``Whitening`` (see the module docstring).

    Called by :func:`emkit.io.save` (Whitening has no ``save`` method).

    Parameters
    ----------
    white : Whitening
        Fitted or not (then only ``pinv``).
    hdf5 : str, path-like or h5py.Group
        A path (written atomically) or an open, writable group.
    """
    with open_for_writing(hdf5) as f:
        write_stamp(f, "Whitening", FORMAT_VERSION)
        f["pinv"] = bool(white.pinv)
        if _is_fitted(white):
            _write_projection(f, white)
            write_feature_names(f, getattr(white, "feature_names_in_", None))


def read_whitening(hdf5, cls):
    """Read a Whitening from emkit's layout ``Whitening`` (version 1, or the unstamped
    version 0 group).

    Parameters
    ----------
    hdf5 : str, path-like or h5py.Group
        A path or an open group.
    cls : type
        The class to build (Whitening or a subclass), through its own constructor.

    Returns
    -------
    Whitening

    Raises
    ------
    InvalidFileError
        A file of another object, an unsupported layout version, or damaged or inconsistent
        contents (shapes, types and values are checked before use).
    """
    with open_for_reading(hdf5, "Whitening") as f:
        version = _stamp_version(f, "Whitening")
        pinv = _read_pinv(f, version)
        if version >= 1 and not _has(f, "weights"):
            return cls(pinv=pinv)
        projection = _read_projection(f)
        names = read_feature_names(f, projection["weights"].shape[0])
        # (copy=False: the reader's arrays are fresh, a copy would double a load's memory)
        return cls._from_fitted(**projection, pinv=pinv, copy=False)._restore_feature_names(names)


# -- WCCN -----------------------------------------------------------------------------------------

def write_wccn(wccn, hdf5) -> None:
    """Write a WCCN in emkit's layout ``WCCN`` (see the module docstring).

    Called by :func:`emkit.io.save` (WCCN has no ``save`` method).

    Parameters
    ----------
    wccn : WCCN
        Fitted or not (then only ``pinv``).
    hdf5 : str, path-like or h5py.Group
        A path (written atomically) or an open, writable group.
    """
    with open_for_writing(hdf5) as f:
        write_stamp(f, "WCCN", FORMAT_VERSION)
        f["pinv"] = bool(wccn.pinv)
        if not _is_fitted(wccn):
            return
        _write_projection(f, wccn)
        write_feature_names(f, getattr(wccn, "feature_names_in_", None))
        classes = getattr(wccn, "classes_", None)
        storable = None if classes is None else storable_classes(classes)
        if storable is not None:
            f["classes"] = storable


def read_wccn(hdf5, cls):
    """Read a WCCN from emkit's layout ``WCCN`` (version 1, or the unstamped version 0 group).

    Parameters
    ----------
    hdf5 : str, path-like or h5py.Group
        A path or an open group.
    cls : type
        The class to build (WCCN or a subclass), through its own constructor.

    Returns
    -------
    WCCN

    Raises
    ------
    InvalidFileError
        A file of another object, an unsupported layout version, or damaged or inconsistent
        contents (shapes, types and values are checked before use).
    """
    with open_for_reading(hdf5, "WCCN") as f:
        version = _stamp_version(f, "WCCN")
        pinv = _read_pinv(f, version)
        if version >= 1 and not _has(f, "weights"):
            return cls(pinv=pinv)
        projection = _read_projection(f)
        names = read_feature_names(f, projection["weights"].shape[0])
        return cls._from_fitted(**projection, classes=read_classes(f), pinv=pinv,
                                copy=False)._restore_feature_names(names)


# -- LDA ------------------------------------------------------------------------------------------

def write_lda(lda, hdf5) -> None:
    """Write an LDA in emkit's layout ``LDA`` (see the module docstring).

    Called by ``LDA.save`` and :func:`emkit.io.save`.

    Parameters
    ----------
    lda : LDA
        Fitted or not (then only ``n_components``).
    hdf5 : str, path-like or h5py.Group
        A path (written atomically) or an open, writable group.
    """
    with open_for_writing(hdf5) as f:
        write_stamp(f, "LDA", FORMAT_VERSION)
        f["n_components"] = np.int64(lda.n_components)
        if _is_fitted(lda):
            write_array(f, "weights", lda.weights)
            write_array(f, "input_subtract", lda.input_subtract)
            write_array(f, "eigenvalues", lda.eigenvalues_)
            write_feature_names(f, getattr(lda, "feature_names_in_", None))


def read_lda(hdf5, cls):
    """Read an LDA from emkit's layout ``LDA`` (version 1, or the unstamped version 0 group).

    Parameters
    ----------
    hdf5 : str, path-like or h5py.Group
        A path or an open group.
    cls : type
        The class to build (LDA or a subclass), through its own constructor.

    Returns
    -------
    LDA

    Raises
    ------
    InvalidFileError
        A file of another object, an unsupported layout version, or damaged or inconsistent
        contents (shapes, types and values are checked before use).
    """
    with open_for_reading(hdf5, "LDA") as f:
        version = _stamp_version(f, "LDA")
        k = int(read_scalar(f, "n_components", "int", low=1)) if version >= 1 else None
        if version >= 1 and not _has(f, "weights"):
            return cls(k)
        weights = read_array(f, "weights", shape=(None, k))
        D, k = weights.shape
        check_values(f, "weights", 1 <= k <= D, f"must have 1 to {D} columns")
        return cls._from_fitted(weights, read_array(f, "input_subtract", shape=(D,)),
                                read_array(f, "eigenvalues", shape=(k,)),
                                copy=False)._restore_feature_names(read_feature_names(f, D))
