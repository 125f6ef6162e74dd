"""``ISVMachine`` and ``JFAMachine`` in emkit's versioned HDF5 layout (the reference had none).

Layout version 1 (root attributes ``emkit_class`` = the class name, ``emkit_format_version`` = 1):

* datasets ``r_U``, ``r_V`` (JFA), ``em_iterations``, ``enroll_iterations`` (int64),
  ``relevance_factor`` (float64), ``random_state`` (int64, only when it is an integer);
* datasets ``U`` (CD, r_U), ``V`` (CD, r_V), ``D`` (CD,) when they are set;
* group ``ubm``: the UBM in the GMMMachine layout (when it is trained);
* attribute ``ubm_kwargs``: JSON (when set and JSON-serialisable).
"""

from __future__ import annotations

import json
import logging
import numbers

import numpy as np

from .h5 import as_str, open_for_reading, open_for_writing, read_stamp, write_stamp

logger = logging.getLogger("emkit")

FORMAT_VERSION = 1


def write_factor_analysis(machine, hdf5) -> None:
    name = type(machine).__name__
    with open_for_writing(hdf5) as f:
        write_stamp(f, name, FORMAT_VERSION)
        f["r_U"] = np.int64(machine.r_U)
        if machine._has_V:
            f["r_V"] = np.int64(machine.r_V)
        f["em_iterations"] = np.int64(machine.em_iterations)
        f["enroll_iterations"] = np.int64(machine.enroll_iterations)
        f["relevance_factor"] = np.float64(machine.relevance_factor)
        rs = machine.random_state
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool):
            f["random_state"] = np.int64(rs)
        for key in ("U", "V", "D"):
            value = machine.__dict__.get("_" + key)
            if value is not None:
                f[key] = np.asarray(value, dtype=np.float64)
        ubm = machine.ubm
        if ubm is not None and getattr(ubm, "_means", None) is not None:
            ubm.save(f.create_group("ubm"))
        if machine.ubm_kwargs is not None:
            try:
                f.attrs["ubm_kwargs"] = json.dumps(machine.ubm_kwargs)
            except TypeError:
                logger.warning(
                    "%s.save: ubm_kwargs is not JSON-serialisable and was not saved", name
                )


def read_factor_analysis(hdf5, cls):
    from ..gmm import GMMMachine

    name = cls.__name__
    with open_for_reading(hdf5) as f:
        read_stamp(f, name, FORMAT_VERSION)
        kwargs = dict(
            r_U=int(f["r_U"][()]),
            em_iterations=int(f["em_iterations"][()]),
            enroll_iterations=int(f["enroll_iterations"][()]),
            relevance_factor=float(f["relevance_factor"][()]),
            random_state=int(f["random_state"][()]) if "random_state" in f else None,
            ubm=GMMMachine.from_hdf5(f["ubm"]) if "ubm" in f else None,
            ubm_kwargs=json.loads(as_str(f.attrs["ubm_kwargs"]))
            if "ubm_kwargs" in f.attrs
            else None,
        )
        if cls._has_V:
            kwargs["r_V"] = int(f["r_V"][()])
        machine = cls(**kwargs)
        for key in ("U", "V", "D"):
            if key in f:
                setattr(machine, key, f[key][...])
    return machine
