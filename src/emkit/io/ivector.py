"""``IVectorMachine`` in emkit's versioned HDF5 layout (the reference could only pickle it).

Layout version 1 (root attributes ``emkit_class = "IVectorMachine"``, ``emkit_format_version = 1``):

* datasets ``dim_t``, ``max_iterations`` (-1 for None), ``convergence_threshold`` (NaN for None),
  ``update_sigma``, ``variance_floor``, ``batch_size`` (-1 for None), ``random_state`` (only when
  it is an int);
* datasets ``T`` (C, D, R) and ``sigma`` (C, D) once the machine is trained;
* group ``ubm``: the UBM, written by ``GMMMachine.save`` in bob.learn.em's GMM layout.
"""

from __future__ import annotations

import numbers

import numpy as np

from .h5 import open_for_reading, open_for_writing, read_optional, read_stamp, write_stamp

CLASS_NAME = "IVectorMachine"
FORMAT_VERSION = 1


def _int_or_minus_one(value):
    return np.int64(-1 if value is None else value)


def write_ivector_machine(machine, hdf5) -> None:
    if machine.ubm is None or getattr(machine.ubm, "_means", None) is None:
        raise ValueError("cannot save an IVectorMachine whose ubm is not a trained GMMMachine")
    with open_for_writing(hdf5) as f:
        write_stamp(f, CLASS_NAME, FORMAT_VERSION)
        f["dim_t"] = np.int64(machine.dim_t)
        f["max_iterations"] = _int_or_minus_one(machine.max_iterations)
        threshold = machine.convergence_threshold
        f["convergence_threshold"] = np.float64(np.nan if threshold is None else threshold)
        f["update_sigma"] = bool(machine.update_sigma)
        f["variance_floor"] = np.float64(machine.variance_floor)
        f["batch_size"] = _int_or_minus_one(machine.batch_size)
        if isinstance(machine.random_state, numbers.Integral):
            f["random_state"] = np.int64(machine.random_state)
        if machine.T is not None:
            f["T"] = np.asarray(machine.T, dtype=np.float64)
        if machine.sigma is not None:
            f["sigma"] = np.asarray(machine.sigma, dtype=np.float64)
        machine.ubm.save(f.create_group("ubm"))


def read_ivector_machine(hdf5, cls):
    from ..gmm import GMMMachine

    with open_for_reading(hdf5) as f:
        read_stamp(f, CLASS_NAME, FORMAT_VERSION)
        ubm = GMMMachine.from_hdf5(f["ubm"])
        max_iterations = int(f["max_iterations"][()])
        batch_size = int(f["batch_size"][()])
        threshold = float(f["convergence_threshold"][()])
        random_state = read_optional(f, "random_state")
        machine = cls(
            ubm=ubm,
            dim_t=int(f["dim_t"][()]),
            convergence_threshold=None if np.isnan(threshold) else threshold,
            max_iterations=None if max_iterations < 0 else max_iterations,
            update_sigma=bool(f["update_sigma"][()]),
            variance_floor=float(f["variance_floor"][()]),
            random_state=None if random_state is None else int(random_state),
            batch_size=None if batch_size < 0 else batch_size,
        )
        T, sigma = read_optional(f, "T"), read_optional(f, "sigma")
    machine.dim_c, machine.dim_d = np.shape(ubm.means)
    machine.T, machine.sigma = T, sigma
    return machine
