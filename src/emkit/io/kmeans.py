"""``KMeansMachine`` in emkit's versioned HDF5 layout (bob.learn.em 3.x saves no k-means machine).

Layout version 1 (root attributes ``emkit_class = "KMeansMachine"``, ``emkit_format_version = 1``):

* parameters, one scalar dataset each: ``n_clusters``, ``max_iter``, ``init_max_iter`` (int64,
  -1 = None), ``convergence_threshold`` (float64, NaN = None), ``oversampling_factor`` (float64),
  ``random_state`` (:mod:`emkit.io.random_state`: int64 for an int, attribute
  ``random_state_generator`` for a RandomState or Generator, nothing for None), and either
  ``init_method`` (text: a method name) or ``init_centroids`` (n_clusters, D) float64 (an array
  given as ``init_method``).  ``checkpoint`` is not kept: a file never chooses where a later
  ``fit`` writes;
* group ``fitted`` (only when ``centroids_`` is set): ``centroids`` (n_clusters, D), and when
  known ``average_min_distance`` (float64 >= 0), ``n_iter`` (int64), ``converged`` (bool) and
  ``feature_names`` (D,) text, the ``feature_names_in_`` of a fit on a DataFrame.

A machine read with centroids has ``n_features_in_`` (their D).  The reader checks every size
against ``n_clusters`` and D, and the centroids' magnitude against :data:`MAX_MAGNITUDE`;
registered for :func:`emkit.io.save`/:func:`emkit.io.load` at the bottom of :mod:`emkit.kmeans`,
it builds the machine through ``cls(**params)`` and ``cls._from_fitted``.
"""

from __future__ import annotations

import numpy as np

from .fit_summary import read_feature_names, write_feature_names
from .h5 import (check_values, child, int_or_minus_one, open_for_reading, open_for_writing,
                 read_array, read_scalar, read_stamp, write_stamp)
from .h5_values import within
from .read_back import under_way, write_array
from .random_state import MISSING, read_random_state, write_random_state

__all__ = ["write_kmeans_machine", "read_kmeans_machine"]

CLASS_NAME = "KMeansMachine"
FORMAT_VERSION = 1

#: Largest magnitude of a stored centroid: the squared distances to data of that size stay finite
#: in float64 (``fit`` refuses deviations beyond about 1e154 for the same reason).
MAX_MAGNITUDE = 1e150



def write_kmeans_machine(machine, hdf5) -> None:
    """Write a KMeansMachine in emkit's layout ``KMeansMachine`` (see the module docstring).

    Called by ``KMeansMachine.save`` and :func:`emkit.io.save`.

    Parameters
    ----------
    machine : KMeansMachine
        Its parameters, and its centroids and fit summary when fitted.
    hdf5 : str, path-like or h5py.Group
        A path (written atomically) or an open, writable group.
    """
    with open_for_writing(hdf5) as f:
        write_stamp(f, CLASS_NAME, FORMAT_VERSION)
        f["n_clusters"] = np.int64(machine.n_clusters)
        if isinstance(machine.init_method, str):
            f["init_method"] = machine.init_method
        else:
            write_array(f, "init_centroids", machine.init_method)
        threshold = machine.convergence_threshold
        f["convergence_threshold"] = np.float64(np.nan if threshold is None else threshold)
        f["max_iter"] = int_or_minus_one(machine.max_iter)
        f["init_max_iter"] = int_or_minus_one(machine.init_max_iter)
        f["oversampling_factor"] = np.float64(machine.oversampling_factor)
        write_random_state(f, machine.random_state)
        if machine.centroids_ is None:
            return
        g = f.create_group("fitted")
        write_array(g, "centroids", machine.centroids_)
        if np.isfinite(machine.average_min_distance):  # (inf: never measured)
            g["average_min_distance"] = np.float64(machine.average_min_distance)
        if hasattr(machine, "n_iter_"):
            g["n_iter"] = np.int64(machine.n_iter_)
            g["converged"] = bool(machine.converged_)
        write_feature_names(g, getattr(machine, "feature_names_in_", None))


def _none_if_negative(value):
    value = int(value)
    return None if value < 0 else value


def _read_init_method(f, K: int, methods):
    """A method name (dataset ``init_method``) or a (K, D) array (dataset ``init_centroids``)."""
    has_array = child(f, "init_centroids", required=False) is not None
    has_name = child(f, "init_method", required=False) is not None
    check_values(f, "init_method", has_array != has_name,
                 "or 'init_centroids' must be stored, one of them only")
    if has_name:
        name = read_scalar(f, "init_method", "str")
        check_values(f, "init_method", name in methods, f"must be one of {methods}")
        return name
    init = _read_bounded(f, "init_centroids", (K, None))
    check_values(f, "init_centroids", init.shape[1] >= 1, "must have at least one feature")
    return init


def _read_bounded(g, name, shape):
    value = read_array(g, name, shape=shape)
    check_values(g, name, within(value, MAX_MAGNITUDE),
                 f"holds values beyond +-{MAX_MAGNITUDE:g} (distances would overflow)")
    return value


def read_kmeans_machine(hdf5, cls):
    """Read a KMeansMachine from emkit's layout ``KMeansMachine``.

    Parameters
    ----------
    hdf5 : str, path-like or h5py.Group
        A path or an open group.
    cls : type
        The class to build (KMeansMachine or a subclass), through its own constructor.

    Returns
    -------
    KMeansMachine

    Raises
    ------
    InvalidFileError
        A file of another object, an unsupported layout version, or damaged or inconsistent
        contents (shapes, types and values are checked before use).
    """
    with open_for_reading(hdf5, CLASS_NAME) as f:
        read_stamp(f, CLASS_NAME, FORMAT_VERSION)
        K = int(read_scalar(f, "n_clusters", "int", low=1))
        threshold = read_scalar(f, "convergence_threshold", low=0.0, allow_nan=True)
        random_state = read_random_state(f)
        params = dict(
            n_clusters=K,
            init_method=_read_init_method(f, K, cls.INIT_METHODS),
            convergence_threshold=None if np.isnan(threshold) else float(threshold),
            max_iter=_none_if_negative(read_scalar(f, "max_iter", "int")),
            random_state=None if random_state is MISSING else random_state,
            init_max_iter=_none_if_negative(read_scalar(f, "init_max_iter", "int")),
            oversampling_factor=float(read_scalar(f, "oversampling_factor")),
        )
        check_values(f, "oversampling_factor", params["oversampling_factor"] > 0, "must be > 0")
        check_values(f, "max_iter", params["max_iter"] is not None
                     or params["convergence_threshold"] is not None,
                     "must be >= 0 when convergence_threshold is None (NaN): one must stop fit")
        g = child(f, "fitted", "group", required=False)
        if g is None:
            return cls(**params)
        centroids = _read_bounded(g, "centroids", (K, None))
        D = centroids.shape[1]
        check_values(g, "centroids", D >= 1, "must have at least one feature")
        distance = read_scalar(g, "average_min_distance", required=False, default=np.inf, low=0.0)
        n_iter = read_scalar(g, "n_iter", "int", required=False, low=0)
        fitted = dict(centroids=centroids, average_min_distance=float(distance))
        if n_iter is not None:  # (a machine only initialised has neither)
            fitted.update(n_iter=int(n_iter), converged=bool(read_scalar(g, "converged", "bool")))
        names = read_feature_names(g, D)
        # (save's read-back throws the machine away: its distance constants would be waste)
        machine = cls._from_fitted(params, **fitted, copy=False, derive=not under_way())
        return machine._restore_feature_names(names)
