"""``IVectorMachine`` in emkit's versioned HDF5 layout (the reference could only pickle it).

Layout version 1 (root attributes ``emkit_class = "IVectorMachine"``, ``emkit_format_version = 1``):

* datasets ``dim_t``, ``max_iterations`` (-1 for None), ``convergence_threshold`` (NaN for None),
  ``update_sigma``, ``variance_floor``, ``batch_size`` (-1 for None), ``random_state``
  (:mod:`emkit.io.random_state`: int64 for an integer, attribute ``random_state_generator`` for a
  RandomState or Generator, nothing for None);
* datasets ``T`` (C, D, R) and ``sigma`` (C, D) once the machine is trained;
* group ``ubm``: the UBM, written by ``GMMMachine.save`` in bob.learn.em's GMM layout;
* group ``emkit_fit`` (:mod:`emkit.io.fit_summary`): ``n_iter_``, ``converged_`` and
  ``log_likelihood_`` of a fitted machine (optional).

``IVectorMachine`` registers these functions (:mod:`emkit.io._registry`); the UBM goes through the
registry too, and the machine is built by its own ``_from_fitted``.
"""

from __future__ import annotations

import numpy as np

from ._registry import load_from, save_into
from .h5 import (check_values, int_or_minus_one, read_array, read_scalar, read_stamp,
                 write_stamp)
from .read_back import write_array
from .fit_summary import read_fit_summary, write_fit_summary
from .random_state import MISSING, read_random_state, write_random_state

__all__ = ["write_ivector_machine", "read_ivector_machine"]

CLASS_NAME = "IVectorMachine"
FORMAT_VERSION = 1



def _trained(ubm) -> bool:
    try:
        ubm.means, ubm.variances
    except (ValueError, AttributeError):  # unset parameters (NotFittedError is both), or no GMM
        return False
    return True


def write_ivector_machine(machine, f) -> None:
    """Write an IVectorMachine in emkit's layout ``IVectorMachine`` (see the module docstring).

    Called by ``IVectorMachine.save`` and :func:`emkit.io.save`.

    Parameters
    ----------
    machine : IVectorMachine
        With a trained UBM.
    f : h5py.Group
        An open, writable group (the registry's, :func:`emkit.io.save`).

    Raises
    ------
    ValueError
        No UBM, or an untrained one; nothing is written.
    """
    if machine.ubm is None or not _trained(machine.ubm):
        raise ValueError("cannot save an IVectorMachine whose ubm is not a trained GMMMachine")
    write_stamp(f, CLASS_NAME, FORMAT_VERSION)
    f["dim_t"] = np.int64(machine.dim_t)
    f["max_iterations"] = int_or_minus_one(machine.max_iterations)
    threshold = machine.convergence_threshold
    f["convergence_threshold"] = np.float64(np.nan if threshold is None else threshold)
    f["update_sigma"] = bool(machine.update_sigma)
    f["variance_floor"] = np.float64(machine.variance_floor)
    f["batch_size"] = int_or_minus_one(machine.batch_size)
    write_random_state(f, machine.random_state)
    if machine.T is not None:
        write_array(f, "T", machine.T)
    if machine.sigma is not None:
        write_array(f, "sigma", machine.sigma)
    write_fit_summary(f, machine._fit_summary())
    save_into(f, "ubm", machine.ubm)


def read_ivector_machine(f, cls):
    """Read an IVectorMachine from emkit's layout ``IVectorMachine``.

    Parameters
    ----------
    f : h5py.Group
        An open group (the registry's, :func:`emkit.io.load`).
    cls : type
        The class to build (IVectorMachine or a subclass), through its own constructor.

    Returns
    -------
    IVectorMachine

    Raises
    ------
    InvalidFileError
        A file of another object, an unsupported layout version, or damaged or inconsistent
        contents (shapes, types and values are checked before use).
    """
    read_stamp(f, CLASS_NAME, FORMAT_VERSION)
    ubm = load_from(f, "ubm", expected="GMMMachine")
    max_iterations = read_scalar(f, "max_iterations", "int")
    batch_size = read_scalar(f, "batch_size", "int")
    check_values(f, "batch_size", batch_size != 0, "must be >= 1 (or -1 for None)")
    threshold = read_scalar(f, "convergence_threshold", "float", low=0.0, allow_nan=True)
    random_state = read_random_state(f)
    dim_t = int(read_scalar(f, "dim_t", "int", low=1))
    params = dict(
        ubm=ubm,
        dim_t=dim_t,
        convergence_threshold=None if np.isnan(threshold) else float(threshold),
        max_iterations=None if max_iterations < 0 else int(max_iterations),
        update_sigma=bool(read_scalar(f, "update_sigma", "bool")),
        variance_floor=float(read_scalar(f, "variance_floor", "float", low=0.0)),
        random_state=None if random_state is MISSING else random_state,
        batch_size=None if batch_size < 0 else int(batch_size),
    )
    C, D = np.shape(ubm.means)
    T = read_array(f, "T", shape=(C, D, dim_t), required=False)
    sigma = read_array(f, "sigma", shape=(C, D), required=False, positive=True)
    machine = cls._from_fitted(params, T=T, sigma=sigma)
    return machine._restore_fit_summary(read_fit_summary(f, cls._FIT_SUMMARY))
