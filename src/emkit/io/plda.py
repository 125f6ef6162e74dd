"""``PLDA`` in emkit's versioned HDF5 layout (bob.learn.em 3.x has no PLDA to be compatible with).

Layout version 1 (root attributes ``emkit_class = "PLDA"``, ``emkit_format_version = 1``):

* parameters, one scalar dataset each: ``model``, ``init_method`` (strings), ``dim_f``, ``dim_g``,
  ``max_iterations``, ``block_size`` (int64, -1 = None), ``convergence_threshold`` (float64, NaN
  = None), ``variance_threshold`` (float64), ``random_state`` (int64, only when an int);
* group ``fitted`` (only for a fitted PLDA): ``mean`` (D,), ``F`` (D, dim_f), ``G`` (D, dim_g;
  "full" only), ``sigma`` ((D,) for "full", (D, D) otherwise), ``log_likelihood`` (n_iter + 1,),
  ``n_iter``, ``converged``, ``n_features_in``, ``n_classes``.
"""

from __future__ import annotations

import numpy as np

from .h5 import as_str, open_for_reading, open_for_writing, read_stamp, write_stamp

CLASS_NAME = "PLDA"
FORMAT_VERSION = 1


def _int_or_none(value):
    return np.int64(-1 if value is None else value)


def write_plda(plda, hdf5) -> None:
    with open_for_writing(hdf5) as f:
        write_stamp(f, CLASS_NAME, FORMAT_VERSION)
        f["model"] = str(plda.model)
        f["init_method"] = str(plda.init_method)
        f["dim_f"] = _int_or_none(plda.dim_f)
        f["dim_g"] = _int_or_none(plda.dim_g)
        f["max_iterations"] = _int_or_none(plda.max_iterations)
        f["block_size"] = _int_or_none(plda.block_size)
        threshold = plda.convergence_threshold
        f["convergence_threshold"] = np.float64(np.nan if threshold is None else threshold)
        f["variance_threshold"] = np.float64(plda.variance_threshold)
        if isinstance(plda.random_state, (int, np.integer)) and not isinstance(plda.random_state, bool):
            f["random_state"] = np.int64(plda.random_state)
        if not hasattr(plda, "mean_"):
            return
        g = f.create_group("fitted")
        g["mean"] = np.asarray(plda.mean_, dtype=np.float64)
        g["F"] = np.asarray(plda.F_, dtype=np.float64)
        if plda.G_ is not None:
            g["G"] = np.asarray(plda.G_, dtype=np.float64)
        g["sigma"] = np.asarray(plda.sigma_, dtype=np.float64)
        g["log_likelihood"] = np.asarray(plda.log_likelihood_, dtype=np.float64)
        g["n_iter"] = np.int64(plda.n_iter_)
        g["converged"] = bool(plda.converged_)
        g["n_features_in"] = np.int64(plda.n_features_in_)
        g["n_classes"] = np.int64(plda.n_classes_)


def _none_if_negative(value):
    value = int(value)
    return None if value < 0 else value


def read_plda(hdf5, cls):
    with open_for_reading(hdf5) as f:
        read_stamp(f, CLASS_NAME, FORMAT_VERSION)
        threshold = float(f["convergence_threshold"][()])
        plda = cls(
            model=as_str(f["model"][()]),
            dim_f=_none_if_negative(f["dim_f"][()]),
            dim_g=_none_if_negative(f["dim_g"][()]),
            max_iterations=_none_if_negative(f["max_iterations"][()]),
            convergence_threshold=None if np.isnan(threshold) else threshold,
            variance_threshold=float(f["variance_threshold"][()]),
            init_method=as_str(f["init_method"][()]),
            random_state=int(f["random_state"][()]) if "random_state" in f else None,
            block_size=_none_if_negative(f["block_size"][()]),
        )
        if "fitted" in f:
            g = f["fitted"]
            plda.mean_ = g["mean"][...]
            plda.F_ = g["F"][...]
            plda.G_ = g["G"][...] if "G" in g else None
            plda.sigma_ = g["sigma"][...]
            plda.log_likelihood_ = g["log_likelihood"][...]
            plda.n_iter_ = int(g["n_iter"][()])
            plda.converged_ = bool(g["converged"][()])
            plda.n_features_in_ = int(g["n_features_in"][()])
            plda.n_classes_ = int(g["n_classes"][()])
    return plda
