"""What a file keeps of an estimator's last ``fit`` besides its parameters, and class labels.

Group ``emkit_fit`` (written only for a fitted estimator; files without it, the reference's
included, leave the attributes unset, as a new estimator has them):

* ``n_iter`` (int64 >= 0) and ``converged`` (bool): ``n_iter_`` and ``converged_``;
* ``classes`` (K,): ``classes_`` (ISV/JFA), when the labels are numbers, booleans or text; labels
  of other types are not stored (a warning is logged).  Numbers read back as an int64 / float64 /
  bool array, text as an object array of ``str``;
* ``log_likelihood`` (n,) float64: ``log_likelihood_`` (IVectorMachine, a list of float), when
  every value is finite;
* ``feature_names`` (D,) text: ``feature_names_in_`` (GMMMachine), the column names of the
  DataFrame ``fit`` was given (read back as an object array of ``str``, one per feature).

The estimators (:class:`emkit._fitted.FitSummary`) say which attributes they keep; readers hand
them back through ``_restore_fit_summary``.
"""

from __future__ import annotations

import logging
import numbers

import h5py
import numpy as np

from .h5 import check_values, child, read_array, read_scalar

#: nothing here is public API: the helpers of emkit.io's model layouts (internal; their
#: un-underscored names stay importable)
__all__ = []

logger = logging.getLogger("emkit")

GROUP = "emkit_fit"


def storable_classes(classes):
    """``classes`` as an array HDF5 can store, or None (labels of other types, or mixed)."""
    if isinstance(classes, np.ndarray) and classes.ndim == 1 and classes.dtype.kind in "biuf":
        return classes.astype({"b": np.bool_, "f": np.float64}.get(classes.dtype.kind, np.int64))
    items = list(classes)
    if not items:
        return None
    if all(isinstance(c, str) for c in items):
        return np.array(items, dtype=h5py.string_dtype())
    if all(isinstance(c, numbers.Integral) and not isinstance(c, (bool, np.bool_)) for c in items):
        if all(np.iinfo(np.int64).min <= c <= np.iinfo(np.int64).max for c in items):
            return np.array(items, dtype=np.int64)
    return None


def read_classes(f, name: str = "classes"):
    """Dataset ``name`` of ``f`` (labels: numbers, booleans or text), or None when absent."""
    ds = child(f, name, required=False)
    if ds is None:
        return None
    kind = ds.dtype.kind
    kind = "str" if kind in "SO" else {"b": "bool", "f": "float"}.get(kind, "int")
    classes = read_array(f, name, kind, shape=(None,))
    check_values(f, name, len(classes) >= 1, "must hold at least one label")
    return classes


def write_feature_names(f, names, name: str = "feature_names") -> None:
    """Dataset ``name``: ``names`` (an estimator's ``feature_names_in_``), unless None."""
    if names is not None:
        f[name] = np.array([str(n) for n in names], dtype=h5py.string_dtype())


def read_feature_names(f, n_features: int | None, name: str = "feature_names"):
    """Dataset ``name`` of ``f`` (``n_features`` strings when given) as an object array of
    ``str``, or None when absent."""
    names = read_array(f, name, "str", shape=(n_features,), required=False)
    return None if names is None else np.array(names, dtype=object)


def write_fit_summary(f, summary: dict) -> None:
    """Write ``summary`` (attribute name -> value, from ``_fit_summary()``) into ``f``."""
    if not summary:
        return
    g = f.create_group(GROUP)
    if "n_iter_" in summary:
        g["n_iter"] = np.int64(summary["n_iter_"])
    if "converged_" in summary:
        g["converged"] = bool(summary["converged_"])
    if "classes_" in summary:
        classes = storable_classes(summary["classes_"])
        if classes is None:
            logger.warning("save: classes_ holds labels that are not all numbers or all text; "
                           "they are not saved")
        else:
            g["classes"] = classes
    if "log_likelihood_" in summary:
        history = np.asarray(summary["log_likelihood_"], dtype=np.float64).reshape(-1)
        if np.all(np.isfinite(history)):
            g["log_likelihood"] = history
        else:
            logger.warning("save: log_likelihood_ holds NaN or infinite values; it is not saved")
    if "feature_names_in_" in summary:
        write_feature_names(g, summary["feature_names_in_"])


def read_fit_summary(f, keep, n_features: int | None = None) -> dict:
    """The attributes of group ``emkit_fit`` of ``f`` that are named in ``keep`` (name -> value;
    empty without the group); every dataset of the group is checked (``feature_names``: one
    per feature when ``n_features`` is given)."""
    g = child(f, GROUP, "group", required=False)
    if g is None:
        return {}
    summary = {}
    n_iter = read_scalar(g, "n_iter", "int", required=False, low=0)
    if n_iter is not None:
        summary["n_iter_"] = int(n_iter)
    converged = read_scalar(g, "converged", "bool", required=False)
    if converged is not None:
        summary["converged_"] = bool(converged)
    classes = read_classes(g)
    if classes is not None:
        summary["classes_"] = np.array(classes, dtype=object) if isinstance(classes, list) else classes
    history = read_array(g, "log_likelihood", shape=(None,), required=False)
    if history is not None:
        summary["log_likelihood_"] = [float(v) for v in history]
    names = read_feature_names(g, n_features)
    if names is not None:
        summary["feature_names_in_"] = names
    return {name: value for name, value in summary.items() if name in keep}
