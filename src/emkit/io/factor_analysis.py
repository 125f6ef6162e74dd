"""``ISVMachine`` and ``JFAMachine`` in emkit's versioned HDF5 layout (the reference had none).

Registered by :mod:`emkit.factor_analysis.isv` / ``.jfa`` with :func:`emkit.io._registry.register`:
the writer reads the machine's plain ``_persistent_state()``, the reader hands plain values to
``cls._from_persistent_state`` (no estimator module is imported here).

Layout version 1 (root attributes ``emkit_class`` = the class name, ``emkit_format_version`` = 1):

* datasets ``r_U``, ``r_V`` (JFA), ``em_iterations``, ``enroll_iterations`` (int64),
  ``relevance_factor`` (float64), ``random_state`` (:mod:`emkit.io.random_state`: int64 for an
  integer, attribute ``random_state_generator`` for a RandomState or Generator, nothing for None);
* datasets ``U`` (CD, r_U), ``V`` (CD, r_V), ``D`` (CD,) when they are set;
* group ``ubm``: the UBM in the GMMMachine layout (when it is trained);
* attribute ``ubm_kwargs``: JSON (when set and JSON-serialisable; numpy scalars are written as
  the Python numbers they hold, and read back as such);
* group ``emkit_fit`` (:mod:`emkit.io.fit_summary`): ``n_iter_``, ``converged_`` and
  ``classes_`` of a fitted machine (optional).
"""

from __future__ import annotations

import json
import logging

import numpy as np

from ._registry import load_from, save_into
from .h5 import (check_values, child, read_array, read_attr, read_scalar, read_stamp,
                 write_stamp)
from .read_back import write_array
from .fit_summary import read_fit_summary, write_fit_summary
from .random_state import MISSING, read_random_state, write_random_state

__all__ = ["write_factor_analysis", "read_factor_analysis"]

logger = logging.getLogger("emkit")

FORMAT_VERSION = 1


def write_factor_analysis(machine, f) -> None:
    """Write an ISV or JFA machine in emkit's layout ``ISVMachine`` or ``JFAMachine`` (see the
    module docstring).

    Called through :func:`emkit.io.save` (``ISVMachine.save``, ``JFAMachine.save``).

    Parameters
    ----------
    machine : ISVMachine or JFAMachine
        Its ``_persistent_state`` (plain data) is written.
    f : h5py.Group
        An open, writable group (the registry's, :func:`emkit.io.save`).
    """
    name = type(machine).__name__
    state = machine._persistent_state()
    params = state["params"]
    write_stamp(f, name, FORMAT_VERSION)
    f["r_U"] = np.int64(params["r_U"])
    if "r_V" in params:
        f["r_V"] = np.int64(params["r_V"])
    f["em_iterations"] = np.int64(params["em_iterations"])
    f["enroll_iterations"] = np.int64(params["enroll_iterations"])
    f["relevance_factor"] = np.float64(params["relevance_factor"])
    write_random_state(f, params["random_state"])
    for key, value in state["arrays"].items():
        write_array(f, key, value)
    write_fit_summary(f, machine._fit_summary())
    if state["ubm"] is not None:
        save_into(f, "ubm", state["ubm"])
    if params["ubm_kwargs"] is not None:
        try:
            f.attrs["ubm_kwargs"] = json.dumps(params["ubm_kwargs"], default=_python_scalar)
        except (TypeError, ValueError):  # (ValueError: a dict or list that contains itself)
            logger.warning("%s.save: ubm_kwargs is not JSON-serialisable and was not saved", name)


def _python_scalar(value):
    """``json.dumps``'s fallback: a numpy scalar (``np.int64(5)``, ``np.float32(0.1)``,
    ``np.bool_``) as the Python number or bool it holds, so that it is kept; else TypeError."""
    if isinstance(value, np.generic):
        plain = value.item()
        if isinstance(plain, (bool, int, float, str)):
            return plain
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _read_ubm_kwargs(f):
    return read_attr(f, "ubm_kwargs", "json", required=False)


def read_factor_analysis(f, cls):
    """Read an ISV or JFA machine from emkit's layout ``ISVMachine`` or ``JFAMachine``.

    Parameters
    ----------
    f : h5py.Group
        An open group (the registry's, :func:`emkit.io.load`).
    cls : type
        The class to build (ISVMachine, JFAMachine or a subclass), through its own
        constructor; the file's stamp must name it.

    Returns
    -------
    ISVMachine or JFAMachine

    Raises
    ------
    InvalidFileError
        A file of another object, an unsupported layout version, or damaged or inconsistent
        contents (shapes, types and values are checked before use).
    """
    read_stamp(f, cls.__name__, FORMAT_VERSION)
    has_ubm = child(f, "ubm", "group", required=False) is not None
    ubm = load_from(f, "ubm", expected="GMMMachine") if has_ubm else None
    random_state = read_random_state(f)
    params = dict(
        r_U=int(read_scalar(f, "r_U", "int", low=1)),
        em_iterations=int(read_scalar(f, "em_iterations", "int", low=0)),
        enroll_iterations=int(read_scalar(f, "enroll_iterations", "int", low=1)),
        relevance_factor=float(read_scalar(f, "relevance_factor", "float", low=0.0)),
        random_state=None if random_state is MISSING else random_state,
        ubm_kwargs=_read_ubm_kwargs(f),
    )
    check_values(f, "relevance_factor", params["relevance_factor"] > 0, "must be > 0")
    names = cls._parameter_names()
    if "V" in names:
        params["r_V"] = int(read_scalar(f, "r_V", "int", low=1))
    CD = None if ubm is None else int(np.size(ubm.means))
    shapes = {"U": (CD, params["r_U"]), "V": (CD, params.get("r_V")), "D": (CD,)}
    arrays = {key: read_array(f, key, shape=shapes[key], required=False, nonnegative=key == "D")
              for key in names}
    arrays = {k: v for k, v in arrays.items() if v is not None}
    if len({a.shape[0] for a in arrays.values()}) > 1:
        check_values(f, next(iter(arrays)), False, "has another supervector size than U/V/D")
    machine = cls._from_persistent_state(params, arrays, ubm)
    return machine._restore_fit_summary(read_fit_summary(f, cls._FIT_SUMMARY))
