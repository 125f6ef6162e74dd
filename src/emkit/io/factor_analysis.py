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

from .errors import InvalidFileError
from .h5 import (check_values, child, filename, open_for_reading, open_for_writing, read_array,
                 read_attr, read_scalar, read_stamp, write_stamp)

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


def _read_ubm_kwargs(f):
    text = read_attr(f, "ubm_kwargs", "str", required=False)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise InvalidFileError(f"{filename(f)}: attribute '/ubm_kwargs' must be a JSON object")
    return value


def read_factor_analysis(hdf5, cls):
    from ..gmm import GMMMachine

    name = cls.__name__
    with open_for_reading(hdf5, name) as f:
        read_stamp(f, name, FORMAT_VERSION)
        ubm_group = child(f, "ubm", "group", required=False)
        ubm = GMMMachine.from_hdf5(ubm_group) if ubm_group is not None else None
        seed = read_scalar(f, "random_state", "int", required=False, low=0)
        kwargs = dict(
            r_U=int(read_scalar(f, "r_U", "int", low=1)),
            em_iterations=int(read_scalar(f, "em_iterations", "int", low=0)),
            enroll_iterations=int(read_scalar(f, "enroll_iterations", "int", low=1)),
            relevance_factor=float(read_scalar(f, "relevance_factor", "float", low=0.0)),
            random_state=None if seed is None else int(seed),
            ubm=ubm,
            ubm_kwargs=_read_ubm_kwargs(f),
        )
        check_values(f, "relevance_factor", kwargs["relevance_factor"] > 0, "must be > 0")
        if cls._has_V:
            kwargs["r_V"] = int(read_scalar(f, "r_V", "int", low=1))
        CD = None if ubm is None else int(np.size(ubm.means))
        shapes = {"U": (CD, kwargs["r_U"]), "V": (CD, kwargs.get("r_V")), "D": (CD,)}
        arrays = {key: read_array(f, key, shape=shapes[key], required=False, nonnegative=key == "D")
                  for key in (("U", "V", "D") if cls._has_V else ("U", "D"))}
        sizes = {a.shape[0] for a in arrays.values() if a is not None}
        if len(sizes) > 1:
            key = next(k for k in arrays if arrays[k] is not None)
            check_values(f, key, False, "has another supervector size than U/V/D")
    machine = cls(**kwargs)
    for key, value in arrays.items():
        if value is not None:
            setattr(machine, key, value)
    return machine
