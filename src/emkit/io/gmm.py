"""``GMMMachine`` in bob.learn.em's HDF5 layouts (``GMMStats``: :mod:`emkit.io.gmm_stats`).

Written: the reference's "1.0" layout (root attributes ``file_version`` and ``writer_class``, the
datasets the reference reads), so bob.learn.em 3.x loads emkit files.  emkit adds what the
reference forgot, in places the reference ignores: the MAP parameters (group ``emkit_map``), the
prior UBM (group ``ubm``, same layout), so a MAP machine reloads as MAP, and ``n_iter_``,
``converged_`` and ``feature_names_in_`` of a fitted machine (group ``emkit_fit``,
:mod:`emkit.io.fit_summary`).  Every machine read with means has ``n_features_in_`` (their D).

Read: that layout (from either library) and the legacy bob 2.x C++ layout (no ``file_version``).
"""

from __future__ import annotations

import logging

import numpy as np

from ._registry import load, load_from, save_into
from .errors import InvalidFileError
from .h5 import (check_values, child, filename, int_or_minus_one, open_for_reading,
                 open_for_writing, read_array, read_attr, read_scalar, read_stamp, write_stamp)
from .read_back import write_array
from .fit_summary import read_fit_summary, write_fit_summary
from .random_state import MISSING, read_random_state, write_random_state

#: (read_gmm_file is GMMMachine.from_hdf5's and .load's reader, not public)
__all__ = ["write_gmm_machine", "read_gmm_machine", "MAPWithoutUBMError"]

logger = logging.getLogger("emkit")

REFERENCE_MODULE = "bob.learn.em"
FORMAT_VERSION = 1


class MAPWithoutUBMError(InvalidFileError):
    """A MAP machine's file holds no UBM (the reference saved none) and none was given."""


def _writer_class(name: str) -> str:
    # the reference compares this attribute with str(cls) of its own classes
    return f"<class '{REFERENCE_MODULE}.{name}'>"


def _file_major_version(group) -> int:
    if "file_version" not in group.attrs:
        return 0
    version = read_attr(group, "file_version", "str")
    major = version.split(".")[0]
    if not (major.isdigit() and len(major) <= 3):
        raise InvalidFileError(f"{filename(group)}: attribute '/file_version' must be a version "
                               "such as '1.0'")
    return int(major)


_KINDS = ("GMMMachine", "GMMStats")


def _check_kind(group, name: str, first: str) -> None:
    """Refuse a file that says it holds the other kind, or lacks dataset ``first``."""
    other = _KINDS[1 - _KINDS.index(name)]
    stamp = read_attr(group, "emkit_class", "str", required=False)
    writer = read_attr(group, "writer_class", "str", required=False)
    if stamp == other or (writer is not None and writer.endswith(f".{other}'>")):
        raise InvalidFileError(f"{filename(group)} holds a {other}, not a {name}")
    if writer is not None and not (writer.endswith(f".{name}'>") or writer == name):
        logger.warning("%s: attribute 'writer_class' does not name %s.", filename(group),
                       _writer_class(name))
    if child(group, first, required=False) is None:
        raise InvalidFileError(f"{filename(group)} is not a {name} file: dataset {first!r} is missing")
    if stamp == name:  # written by emkit: a layout version it reads (the reference's have none)
        read_stamp(group, name, FORMAT_VERSION)


def _none_as_nan(value):
    return np.nan if value is None else value


def _nan_as_none(value):
    return None if value is None or np.isnan(value) else value


#: How far the weights of a GMM file may sum from 1 at least: far above float64 rounding, far
#: below a meaningful error.  Weights stored in a narrower float type get ``4 C eps`` of that type
#: (the rounding of C weights normalised in it), but never more than
#: :data:`MAX_WEIGHTS_SUM_TOLERANCE`: with float16 (eps ~ 1e-3) and 256 Gaussians, ``4 C eps``
#: would already let weights summing to 0 or 2 through.
WEIGHTS_SUM_TOLERANCE = 1e-6
MAX_WEIGHTS_SUM_TOLERANCE = 1e-2


def _check_weights(group, name, weights) -> None:
    check_values(group, name, bool(np.all(weights >= 0)), "must hold weights >= 0; some are negative")
    stored = child(group, name).dtype
    eps = np.finfo(stored).eps if stored.kind == "f" else 0.0
    tolerance = max(WEIGHTS_SUM_TOLERANCE,
                    min(4 * weights.size * float(eps), MAX_WEIGHTS_SUM_TOLERANCE))
    total = float(np.sum(weights))
    check_values(group, name, abs(total - 1.0) <= tolerance,
                 f"must hold weights summing to 1 (within {tolerance:.3g}); they sum to {total:.9g}")


def _read_thresholds(group, name, C, D, size_only=False):
    """A variance floor: a scalar, (D,) or (C, D) values >= 0."""
    ds = child(group, name)
    n = int(np.prod(ds.shape or (0,), dtype=object))
    if size_only:  # bob 2.x: one (D,) vector per Gaussian
        return read_array(group, name, size=D, nonnegative=True).reshape(D)
    if ds.shape in ((), (1,)):
        return float(read_scalar(group, name, low=0.0))
    if ds.shape in ((D,), (C, D)) and n:
        return read_array(group, name, shape=ds.shape, nonnegative=True)
    check_values(group, name, False, f"must be a scalar, ({D},) or ({C}, {D}); found shape {ds.shape}")


# ---------------------------------------------------------------------------------------------
# GMMMachine
# ---------------------------------------------------------------------------------------------


def read_gmm_file(hdf5, cls, ubm=None, *, fallback_ubm=None):
    """Read a GMMMachine (``GMMMachine.from_hdf5``), in any layout :func:`read_gmm_machine` reads.

    Parameters
    ----------
    hdf5 : str, path-like or h5py.Group
        A path or an open group.
    cls : type
        ``GMMMachine`` (or a subclass).
    ubm : GMMMachine or None, default None
        The prior of a MAP machine, used over the file's own.
    fallback_ubm : GMMMachine or None, keyword-only
        The prior of a MAP machine whose file holds none (:meth:`GMMMachine.load`).

    Returns
    -------
    GMMMachine

    Raises
    ------
    MAPWithoutUBMError
        (an ``InvalidFileError``) A MAP machine's file without a UBM, and no UBM given.
    InvalidFileError
        Another object's file, or damaged or inconsistent contents.
    """
    if ubm is not None:
        return read_gmm_machine(hdf5, cls, ubm=ubm)
    try:
        return load(hdf5, expected=cls)
    except MAPWithoutUBMError:
        if not isinstance(fallback_ubm, cls):
            raise
        return read_gmm_machine(hdf5, cls, ubm=fallback_ubm)


def write_gmm_machine(machine, hdf5) -> None:
    """Write a GMMMachine in bob.learn.em's "1.0" layout, with emkit's additions.

    Parameters
    ----------
    machine : GMMMachine
    hdf5 : str, path-like or h5py.Group
        A path (written atomically) or an open, writable group.

    Raises
    ------
    ValueError
        Weights that do not sum to 1 (the readers would refuse the file); nothing is written.
    """
    with open_for_writing(hdf5) as f:
        _write_machine_into(machine, f)


def _write_machine_into(machine, f) -> None:
    total = float(np.sum(machine.weights))
    if not abs(total - 1.0) <= WEIGHTS_SUM_TOLERANCE:  # the readers would refuse the file
        raise ValueError(f"GMMMachine.weights sum to {total:.9g}: a model file holds weights summing "
                         f"to 1 (within {WEIGHTS_SUM_TOLERANCE:g}); assign weights / weights.sum() first")
    f.attrs["file_version"] = "1.0"
    f.attrs["writer_class"] = _writer_class("GMMMachine")
    write_stamp(f, "GMMMachine", FORMAT_VERSION)
    f["n_gaussians"] = np.int64(machine.n_gaussians)
    f["trainer"] = machine.trainer
    f["convergence_threshold"] = np.float64(_none_as_nan(machine.convergence_threshold))
    # the reference needs an integer here; -1 stands for None ("no limit")
    steps = machine.max_fitting_steps
    f["max_fitting_steps"] = int_or_minus_one(steps)
    write_array(f, "weights", machine.weights)
    f["update_means"] = bool(machine.update_means)
    f["update_variances"] = bool(machine.update_variances)
    f["update_weights"] = bool(machine.update_weights)
    g = f.create_group("gaussians")
    write_array(g, "means", machine.means)
    write_array(g, "variances", machine.variances)
    thresholds = np.asarray(machine.variance_thresholds, dtype=np.float64)
    C, D = np.shape(machine.means)
    if thresholds.shape not in ((), (D,), (C, D)):  # a (C, 1) or (1, D) floor, in a shape readers take
        thresholds = np.broadcast_to(thresholds, (C, D))
    write_array(g, "variance_thresholds", thresholds)
    extra = f.create_group("emkit_map")
    extra["mean_var_update_threshold"] = np.float64(machine.mean_var_update_threshold)
    write_array(extra, "map_alpha", machine.map_alpha)
    extra["map_relevance_factor"] = np.float64(_none_as_nan(machine.map_relevance_factor))
    extra["compute_dtype"] = str(machine.compute_dtype)
    # an int seed is kept; None is stored as -1 (seeds are >= 0); a generator, its state
    write_random_state(extra, machine.random_state, none_as_minus_one=True)
    # the ``weights`` constructor argument (the live weights are in /weights)
    weights_param = machine.get_params(deep=False).get("weights")
    if weights_param is not None:
        write_array(extra, "weights_param", weights_param)
    write_fit_summary(f, machine._fit_summary())
    if machine.ubm is not None:
        save_into(f, "ubm", machine.ubm)


def read_gmm_machine(hdf5, cls, ubm=None):
    """Read a GMMMachine from bob.learn.em's "1.0" layout (written by either library) or the
    legacy bob 2.x one.

    Parameters
    ----------
    hdf5 : str, path-like or h5py.Group
        A path or an open group.
    cls : type
        ``GMMMachine`` (or a subclass).
    ubm : GMMMachine or None, default None
        The prior of a MAP machine, used over the file's own.

    Returns
    -------
    GMMMachine

    Raises
    ------
    InvalidFileError
        A file of another object, an unsupported layout version, or damaged or inconsistent
        contents (shapes, types and values are checked before use).
    """
    with open_for_reading(hdf5, "GMMMachine") as f:
        if _file_major_version(f) >= 1:
            return _read_current(f, cls, ubm)
        return _read_legacy(f, cls, ubm)


def _read_gaussians(g, C):
    """Means and variances (C, D) and the variance floor of group ``g``."""
    means = read_array(g, "means", shape=(C, None))
    D = means.shape[1]
    check_values(g, "means", D >= 1, "must have at least one feature (found shape (C, 0))")
    variances = read_array(g, "variances", shape=(C, D), positive=True)
    return means, variances, _read_thresholds(g, "variance_thresholds", C, D)


#: How many UBMs a machine may nest (a MAP machine's prior, itself MAP...)
MAX_UBM_DEPTH = 4


def _read_current(f, cls, ubm):
    _check_kind(f, "GMMMachine", "weights")
    # a group linked into itself would recurse without end: the path it was opened by grows
    if f.name.split("/").count("ubm") > MAX_UBM_DEPTH:
        raise InvalidFileError(f"{filename(f)}: group {f.name!r} nests UBMs more than 4 deep")
    C = read_scalar(f, "n_gaussians", "int", low=1)
    trainer = read_scalar(f, "trainer", "str")
    if trainer not in ("ml", "map"):
        check_values(f, "trainer", False, "must be 'ml' or 'map'")
    weights = read_array(f, "weights", shape=(C,))
    _check_weights(f, "weights", weights)
    means, variances, thresholds = _read_gaussians(child(f, "gaussians", "group"), C)
    if ubm is None and child(f, "ubm", "group", required=False) is not None:
        ubm = load_from(f, "ubm", expected=cls)
        check_values(f, "ubm", np.shape(ubm.means) == means.shape,
                     f"must be a UBM of the machine's shape {means.shape}")
    if trainer == "map" and ubm is None:
        if f.name != "/":
            raise MAPWithoutUBMError(f"{filename(f)}: group {f.name!r} holds a MAP GMMMachine "
                                     "without its UBM")
        raise MAPWithoutUBMError(f"{filename(f)}: a MAP GMMMachine without its UBM (a bob.learn.em "
                                 "file); load it with GMMMachine.from_hdf5(path, ubm=UBM)")
    steps = read_scalar(f, "max_fitting_steps", "int")
    threshold = _nan_as_none(read_scalar(f, "convergence_threshold", "float", required=False,
                                         default=np.float64(1e-5), low=0.0, allow_nan=True))
    kwargs = dict(
        n_gaussians=C,  # numpy.int64, numpy.bool_ and str, as the reference gives them
        trainer=trainer,
        ubm=ubm,
        convergence_threshold=threshold,
        max_fitting_steps=None if steps < 0 else steps,
        weights=weights,
        update_means=read_scalar(f, "update_means", "bool"),
        update_variances=read_scalar(f, "update_variances", "bool"),
        update_weights=read_scalar(f, "update_weights", "bool"),
    )
    if kwargs["convergence_threshold"] is None and kwargs["max_fitting_steps"] is None:
        kwargs["convergence_threshold"] = 1e-5
    extra = child(f, "emkit_map", "group", required=False)
    if extra is not None:
        kwargs.update(_read_emkit_extra(extra, C))
    machine = cls._from_file(kwargs, weights=weights, means=means, variances=variances,
                             variance_thresholds=thresholds)
    return machine._restore_fit_summary(read_fit_summary(f, cls._FIT_SUMMARY, means.shape[1]))


def _read_emkit_extra(extra, C) -> dict:
    """The parameters emkit keeps in group ``emkit_map`` (MAP settings, seed, dtype...)."""
    kwargs = {"mean_var_update_threshold": float(read_scalar(extra, "mean_var_update_threshold",
                                                             low=0.0))}
    ds = child(extra, "map_alpha")
    if ds.shape in ((), (1,)):
        kwargs["map_alpha"] = float(read_scalar(extra, "map_alpha", low=0.0, high=1.0))
    else:
        alpha = read_array(extra, "map_alpha", shape=(C,), nonnegative=True)
        check_values(extra, "map_alpha", bool(np.all(alpha <= 1)), "must hold values in [0, 1]")
        kwargs["map_alpha"] = alpha
    relevance = _nan_as_none(read_scalar(extra, "map_relevance_factor", low=0.0, allow_nan=True))
    kwargs["map_relevance_factor"] = None if relevance is None else float(relevance)
    dtype = read_scalar(extra, "compute_dtype", "str", required=False)
    if dtype is not None:
        check_values(extra, "compute_dtype", dtype in ("float64", "float32"),
                     "must be 'float64' or 'float32'")
        kwargs["compute_dtype"] = dtype
    random_state = read_random_state(extra, minus_one_is_none=True)
    if random_state is not MISSING:
        kwargs["random_state"] = random_state
    # emkit files keep the constructor argument apart from the live weights (set afterwards)
    kwargs["weights"] = read_array(extra, "weights_param", shape=(C,), required=False,
                                   nonnegative=True)
    return kwargs


def _read_legacy(f, cls, ubm):
    if child(f, "m_n_gaussians", required=False) is None:
        raise InvalidFileError(f"{filename(f)} is not a GMMMachine file: neither attribute "
                               "'file_version' nor dataset 'm_n_gaussians' (legacy bob 2.x layout)")
    C = read_scalar(f, "m_n_gaussians", "int", low=1)
    check_values(f, "m_n_gaussians", C <= len(f), f"declares more Gaussians than the file has groups")
    weights = read_array(f, "m_weights", size=C).reshape(C)
    _check_weights(f, "m_weights", weights)
    seen, rows = set(), {"m_mean": [], "m_variance": [], "m_variance_thresholds": []}
    D = None
    for i in range(C):  # bob 2.x kept one group per Gaussian
        g = child(f, f"m_gaussians{i}", "group")
        check_values(f, f"m_gaussians{i}", hash(g.id) not in seen, "is a second link to another "
                     "Gaussian's group")
        seen.add(hash(g.id))
        if D is None:
            first = child(g, "m_mean")
            D = int(np.prod(first.shape or (0,), dtype=object))
            check_values(g, "m_mean", D >= 1, "must hold at least one value")
            # three arrays of D values per Gaussian: distinct groups whose datasets share their
            # bytes (links, or forged addresses) would otherwise read the file many times over
            check_values(f, "m_n_gaussians", 3 * C * D * first.dtype.itemsize <= f.id.get_filesize(),
                         f"declares {C} Gaussians of {D} features: more values than the file holds")
        rows["m_mean"].append(read_array(g, "m_mean", size=D))
        rows["m_variance"].append(read_array(g, "m_variance", size=D, positive=True))
        rows["m_variance_thresholds"].append(_read_thresholds(g, "m_variance_thresholds", C, D,
                                                              size_only=True))
    return cls._from_file(dict(n_gaussians=C, ubm=ubm, weights=weights), weights=weights,
                          means=np.array(rows["m_mean"]).reshape(C, D),
                          variances=np.array(rows["m_variance"]).reshape(C, D),
                          variance_thresholds=np.array(rows["m_variance_thresholds"]).reshape(C, D))
