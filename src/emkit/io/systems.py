"""Layouts of the files of :mod:`emkit.experiment`: ``IVectorBackend`` and ``EnrolledModels``.

Layouts (emkit's, version 1; written by ``IVectorBackend.save`` / ``EnrolledModels.save``):

* ``IVectorBackend``: group ``ivector`` (an ``IVectorMachine``), optional groups ``whitening``
  and ``wccn`` (``weights`` (R, R), ``input_subtract`` scalar or (R,), ``input_divide``), optional
  group ``lda`` (``weights`` (R, K), ``input_subtract`` (R,), ``eigenvalues`` (K,)), optional
  group ``plda`` (a ``PLDA`` on R-dimensional vectors, K-dimensional after an LDA).
* ``EnrolledModels``: root attribute ``system`` and scalar parameters, dataset ``model_ids`` (M,)
  of UTF-8 text, per-model arrays (see :class:`~emkit.experiment.EnrolledModels`), group
  ``machine`` (the machine that scores them).

Every array is checked against the machine's sizes before it is read (see :mod:`emkit.io.h5`).
The readers build the objects through the classes they are given (``cls``): no estimator module
is imported here; nested machines go through the registry (:mod:`emkit.io._registry`).
"""

from __future__ import annotations


import numpy as np

from . import _registry
from .errors import InvalidFileError
from .h5 import (check_values, child, filename, open_for_reading, open_for_writing, read_array,
                 read_attr, read_scalar, read_stamp, write_stamp)
from .read_back import write_array
from .untrusted import show_key

__all__ = ["write_ivector_backend", "read_ivector_backend", "write_enrolled_models",
           "read_enrolled_models"]


# ---------------------------------------------------------------------------------------------
# nested objects
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# IVectorBackend
# ---------------------------------------------------------------------------------------------


def _write_projection(group, step) -> None:
    write_array(group, "weights", step.weights)
    write_array(group, "input_subtract", step.input_subtract)
    group["input_divide"] = np.float64(step.input_divide)


def write_ivector_backend(backend, hdf5) -> None:
    """Write an i-vector back-end in emkit's layout ``IVectorBackend`` (see the module docstring).

    Called by ``IVectorBackend.save`` and :func:`emkit.io.save`.

    Parameters
    ----------
    backend : IVectorBackend
        Its extractor and the steps it has.
    hdf5 : str, path-like or h5py.Group
        A path (written atomically) or an open, writable group.

    Raises
    ------
    ValueError
        A PLDA that is not fitted; nothing is written.
    """
    if backend.plda is not None and not backend.plda.__sklearn_is_fitted__():
        raise ValueError("cannot save an IVectorBackend whose plda is not fitted")
    with open_for_writing(hdf5) as f:
        write_stamp(f, "IVectorBackend", 1)
        f.attrs["plda_model"] = backend.plda_model  # (what a later fit trains)
        if backend.plda_dim_f is not None:
            f.attrs["plda_dim_f"] = np.int64(backend.plda_dim_f)
        _registry.save_into(f, "ivector", backend.ivector)
        for name in ("whitening", "wccn"):
            step = getattr(backend, name)
            if step is not None:
                _write_projection(f.create_group(name), step)
        if backend.lda is not None:
            g = f.create_group("lda")
            g["weights"] = backend.lda.weights
            g["input_subtract"] = backend.lda.input_subtract
            g["eigenvalues"] = backend.lda.eigenvalues_
        if backend.plda is not None:
            _registry.save_into(f, "plda", backend.plda)


def _read_projection(g, R) -> dict:
    """The arrays of a fitted Whitening/WCCN on R-dimensional vectors, from group ``g``."""
    weights = read_array(g, "weights", shape=(R, R))
    ds = child(g, "input_subtract")
    if ds.shape in ((), (1,)):
        subtract = float(read_scalar(g, "input_subtract"))
    else:
        subtract = read_array(g, "input_subtract", shape=(R,))
    divide = float(read_scalar(g, "input_divide"))
    check_values(g, "input_divide", divide != 0, "must not be 0")
    return {"weights": weights, "input_subtract": subtract, "input_divide": divide}


def _read_lda(g, R) -> dict:
    """The arrays of a fitted LDA from R-dimensional vectors, from group ``g``."""
    weights = read_array(g, "weights", shape=(R, None))
    K = weights.shape[1]
    check_values(g, "weights", 1 <= K <= R, f"must have 1 to {R} columns")
    return {"weights": weights, "input_subtract": read_array(g, "input_subtract", shape=(R,)),
            "eigenvalues": read_array(g, "eigenvalues", shape=(K,))}


def read_ivector_backend(hdf5, cls):
    """Read an i-vector back-end from emkit's layout ``IVectorBackend``.

    Parameters
    ----------
    hdf5 : str, path-like or h5py.Group
        A path or an open group.
    cls : type
        The class to build (IVectorBackend or a subclass), through its own constructor.

    Returns
    -------
    IVectorBackend

    Raises
    ------
    InvalidFileError
        A file of another object, an unsupported layout version, or damaged or inconsistent
        contents (shapes, types and values are checked before use).
    """
    with open_for_reading(hdf5, "IVectorBackend") as f:
        read_stamp(f, "IVectorBackend", 1)
        settings = {"plda_model": read_attr(f, "plda_model", "str", required=False,
                                            default="two-covariance"),
                    "plda_dim_f": read_attr(f, "plda_dim_f", "int", required=False)}
        if settings["plda_model"] not in ("two-covariance", "simplified", "full"):
            check_values(f, "plda_model", False, "must be 'two-covariance', 'simplified' or 'full'")
        if settings["plda_dim_f"] is not None:
            check_values(f, "plda_dim_f", settings["plda_dim_f"] >= 1, "must be >= 1")
        ivector = _registry.load_from(f, "ivector", expected="IVectorMachine")
        R = int(ivector.dim_t)
        parts = {}
        g = child(f, "whitening", "group", required=False)
        if g is not None:
            parts["whitening"] = _read_projection(g, R)
        g = child(f, "lda", "group", required=False)
        if g is not None:  # an LDA (R, K) after whitening: WCCN and PLDA are K-dimensional
            parts["lda"] = _read_lda(g, R)
            R = parts["lda"]["weights"].shape[1]
        g = child(f, "wccn", "group", required=False)
        if g is not None:
            parts["wccn"] = _read_projection(g, R)
        g = child(f, "plda", "group", required=False)
        if g is not None:
            if child(g, "fitted", "group", required=False) is None:
                raise InvalidFileError(f"{filename(f)}: group '/plda' holds a PLDA that is not "
                                       "fitted (group '/plda/fitted' missing)")
            parts["plda"] = _registry.load_from(f, "plda", expected="PLDA")
            check_values(f, "plda", parts["plda"].n_features_in_ == R,
                         f"must be a PLDA of {R}-dimensional vectors")
    return cls._from_arrays(ivector, **settings, **parts)


# ---------------------------------------------------------------------------------------------
# EnrolledModels
# ---------------------------------------------------------------------------------------------


def write_enrolled_models(models, hdf5) -> None:
    """Write enrolled models in emkit's layout ``EnrolledModels`` (see the module docstring).

    Called by ``EnrolledModels.save`` and :func:`emkit.io.save`.

    Parameters
    ----------
    models : EnrolledModels
        With their machine.
    hdf5 : str, path-like or h5py.Group
        A path (written atomically) or an open, writable group.

    Raises
    ------
    ValueError
        No model, or model ids that are not unique; nothing is written.
    TypeError
        A model id that is not a non-empty string without NUL characters.
    """
    ids = list(models.model_ids)
    if not ids:
        raise ValueError("cannot save enrolled models without any model (the file would not load)")
    for m in ids:  # (an int had no .encode; a NUL ended the id in the file)
        if not (isinstance(m, str) and m and "\x00" not in m):
            raise TypeError(f"model ids must be non-empty strings without NUL characters; got "
                            f"{type(m).__name__} {show_key(str(m))}")
    if len(set(ids)) != len(ids):
        raise ValueError("cannot save enrolled models whose model ids are not unique")
    with open_for_writing(hdf5) as f:
        write_stamp(f, "EnrolledModels", 1)
        f.attrs["system"] = models.system
        for key, value in models.parameters.items():
            f.attrs[key] = value
        f["model_ids"] = np.array([m.encode("utf-8") for m in models.model_ids])
        for key, value in models.arrays.items():
            write_array(f, key, value)
        _registry.save_into(f, "machine", models.machine)


def _read_parameters(f) -> dict:
    params = {}
    for key in f.attrs:
        if key in ("system", "emkit_class", "emkit_format_version"):
            continue
        if key == "relevance_factor":  # GMM-MAP enrolment, as ``enroll --relevance-factor``
            params[key] = float(read_attr(f, key, "float"))
            if not params[key] > 0:
                raise InvalidFileError(f"{filename(f)}: attribute '/relevance_factor' must be a "
                                       "number > 0")
        else:
            params[key] = read_attr(f, key, "auto")
    return params


def _read_model_ids(f) -> list:
    ids = read_array(f, "model_ids", "str", shape=(None,))
    seen = set()
    for model in ids:
        if model in seen:
            raise InvalidFileError(f"{filename(f)}: dataset '/model_ids' lists model "
                                   f"{show_key(model)} more than once")
        seen.add(model)
    return ids


def _read_machine(f, machines: list):
    g = child(f, "machine", "group")
    kind = read_attr(g, "emkit_class", "str", required=False)
    if kind not in machines:
        listed = ", ".join(machines[:-1]) + f" or {machines[-1]}"
        raise InvalidFileError(f"{filename(g)}: group '/machine' must hold a {listed}")
    return kind, _registry.load_from(f, "machine", expected=kind)


def read_enrolled_models(hdf5, cls):
    """Read enrolled models from emkit's layout ``EnrolledModels``.

    The arrays and the machine are checked against ``cls.systems``: system name -> its class
    (``machine_class``, ``model_arrays``, ``sizes``, ``missing``).

    Parameters
    ----------
    hdf5 : str, path-like or h5py.Group
        A path or an open group.
    cls : type
        ``EnrolledModels`` (or a subclass), with its ``systems``.

    Returns
    -------
    EnrolledModels

    Raises
    ------
    InvalidFileError
        A file of another object, an unsupported layout version, or damaged or inconsistent
        contents (shapes, types and values are checked before use).
    """
    with open_for_reading(hdf5, "EnrolledModels") as f:
        read_stamp(f, "EnrolledModels", 1)
        system = read_attr(f, "system", "str")
        if system not in cls.systems:
            raise InvalidFileError(f"{filename(f)}: attribute '/system' must be one of "
                                   f"{tuple(cls.systems)}")
        spec = cls.systems[system]
        ids = _read_model_ids(f)
        machines = list(dict.fromkeys(s.machine_class.__name__ for s in cls.systems.values()))
        kind, machine = _read_machine(f, machines)
        expected = spec.machine_class.__name__
        if kind != expected:
            raise InvalidFileError(f"{filename(f)}: group '/machine' holds a {kind}; system "
                                   f"{system!r} needs a {expected}")
        missing = spec.missing(machine)
        if missing:
            raise InvalidFileError(f"{filename(f)}: group '/machine' holds an untrained {kind} "
                                   f"(missing: {', '.join(missing)})")
        sizes = spec.sizes(machine, len(ids))
        arrays = {}
        for key, dims in spec.model_arrays.items():
            arrays[key] = read_array(f, key, shape=tuple(sizes[d] for d in dims),
                                     positive=key == "counts")
        params = _read_parameters(f)
    return cls(system, ids, arrays, machine, params)
