"""Readers of the files of :mod:`emkit.experiment`: ``IVectorBackend`` and ``EnrolledModels``.

Layouts (emkit's, version 1; written by ``IVectorBackend.save`` / ``EnrolledModels.save``):

* ``IVectorBackend``: group ``ivector`` (an ``IVectorMachine``), optional groups ``whitening``
  and ``wccn`` (``weights`` (R, R), ``input_subtract`` scalar or (R,), ``input_divide``), optional
  group ``plda`` (a ``PLDA`` on R-dimensional vectors).
* ``EnrolledModels``: root attribute ``system`` and scalar parameters, dataset ``model_ids`` (M,)
  of UTF-8 text, per-model arrays (see :class:`~emkit.experiment.EnrolledModels`), group
  ``machine`` (the machine that scores them).

Every array is checked against the machine's sizes before it is read (see :mod:`emkit.io.h5`).
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidFileError
from .h5 import (check_values, child, filename, open_for_reading, read_array, read_attr,
                 read_scalar, read_stamp)


def _restore_projection(step, g, R):
    """A fitted Whitening/WCCN on R-dimensional vectors from group ``g``."""
    step.weights = read_array(g, "weights", shape=(R, R))
    ds = child(g, "input_subtract")
    if ds.shape in ((), (1,)):
        step.input_subtract = float(read_scalar(g, "input_subtract"))
    else:
        step.input_subtract = read_array(g, "input_subtract", shape=(R,))
    divide = float(read_scalar(g, "input_divide"))
    check_values(g, "input_divide", divide != 0, "must not be 0")
    step.input_divide = divide
    step.n_features_in_ = step._n_features_out = R
    return step


def read_ivector_backend(hdf5, cls):
    from ..ivector import IVectorMachine
    from ..plda import PLDA
    from ..wccn import WCCN
    from ..whitening import Whitening

    with open_for_reading(hdf5, "IVectorBackend") as f:
        read_stamp(f, "IVectorBackend", 1)
        backend = cls(IVectorMachine.from_hdf5(child(f, "ivector", "group")))
        R = int(backend.ivector.dim_t)
        g = child(f, "whitening", "group", required=False)
        if g is not None:
            backend.whitening = _restore_projection(Whitening(), g, R)
        g = child(f, "lda", "group", required=False)
        if g is not None:  # an LDA (R, K) after whitening: WCCN and PLDA are K-dimensional
            backend.lda = _read_lda(g, R)
            backend.lda_dim = R = backend.lda.n_components
        g = child(f, "wccn", "group", required=False)
        if g is not None:
            backend.wccn = _restore_projection(WCCN(), g, R)
        g = child(f, "plda", "group", required=False)
        if g is not None:
            backend.plda = PLDA.from_hdf5(g)
            D = getattr(backend.plda, "n_features_in_", R)
            check_values(f, "plda", D == R, f"must be a PLDA of {R}-dimensional vectors")
    return backend


def _read_lda(g, R):
    """A fitted :class:`~emkit.lda.LDA` from R-dimensional vectors, from group ``g``."""
    from ..lda import LDA

    weights = read_array(g, "weights", shape=(R, None))
    K = weights.shape[1]
    check_values(g, "weights", 1 <= K <= R, f"must have 1 to {R} columns")
    lda = LDA(K)
    lda.weights = weights
    lda.input_subtract = read_array(g, "input_subtract", shape=(R,))
    lda.eigenvalues_ = read_array(g, "eigenvalues", shape=(K,))
    lda.n_features_in_ = R
    return lda


#: The per-model arrays of each system, with their shapes given the machine ("M": the models).
_ARRAYS = {
    "gmm-map": ("GMMMachine", {"means": ("M", "C", "D")}),
    "isv": ("ISVMachine", {"z": ("M", "CD")}),
    "jfa": ("JFAMachine", {"y": ("M", "r_V"), "z": ("M", "CD")}),
    "ivector-cosine": ("IVectorBackend", {"vectors": ("M", "R")}),
    "ivector-plda": ("IVectorBackend", {"means": ("M", "R"), "counts": ("M",)}),
}


def _read_machine(g):
    from ..experiment import IVectorBackend
    from ..factor_analysis import ISVMachine, JFAMachine
    from ..gmm import GMMMachine

    kind = read_attr(g, "emkit_class", "str", required=False)
    classes = {"GMMMachine": GMMMachine, "ISVMachine": ISVMachine, "JFAMachine": JFAMachine,
               "IVectorBackend": IVectorBackend}
    if kind not in classes:
        raise InvalidFileError(f"{filename(g)}: group '/machine' must hold a GMMMachine, "
                               "ISVMachine, JFAMachine or IVectorBackend")
    return kind, classes[kind].from_hdf5(g)


def _can_score(kind, machine) -> bool:
    if kind == "GMMMachine":
        return True
    if kind == "IVectorBackend":
        return machine.ivector.T is not None and machine.ivector.sigma is not None
    return machine.ubm is not None and machine.__sklearn_is_fitted__()


def _sizes(kind, machine, M) -> dict:
    if kind == "IVectorBackend":  # the dimension of the back-end's vectors (after an LDA)
        lda = getattr(machine, "lda", None)
        return {"M": M, "R": int(machine.ivector.dim_t if lda is None else lda.n_components)}
    ubm = machine if kind == "GMMMachine" else machine.ubm
    C, D = np.shape(ubm.means)
    sizes = {"M": M, "C": C, "D": D, "CD": C * D}
    if kind == "JFAMachine":
        sizes["r_V"] = int(machine.r_V)
    return sizes


def _read_parameters(f) -> dict:
    params = {}
    for key in f.attrs:
        if key in ("system", "emkit_class", "emkit_format_version"):
            continue
        params[key] = read_attr(f, key, "auto")
    return params


def read_enrolled_models(hdf5, cls):
    with open_for_reading(hdf5, "EnrolledModels") as f:
        read_stamp(f, "EnrolledModels", 1)
        system = read_attr(f, "system", "str")
        if system not in _ARRAYS:
            raise InvalidFileError(f"{filename(f)}: attribute '/system' must be one of "
                                   f"{tuple(_ARRAYS)}")
        ids = read_array(f, "model_ids", "str", shape=(None,))
        kind, machine = _read_machine(child(f, "machine", "group"))
        expected, shapes = _ARRAYS[system]
        if kind != expected:
            raise InvalidFileError(f"{filename(f)}: group '/machine' holds a {kind}; system "
                                   f"{system!r} needs a {expected}")
        if not _can_score(kind, machine):
            raise InvalidFileError(f"{filename(f)}: group '/machine' holds an untrained {kind} "
                                   "(parameters missing)")
        sizes = _sizes(kind, machine, len(ids))
        arrays = {}
        for key, dims in shapes.items():
            arrays[key] = read_array(f, key, shape=tuple(sizes[d] for d in dims),
                                     positive=key == "counts")
        params = _read_parameters(f)
    return cls(system, ids, arrays, machine, params)
