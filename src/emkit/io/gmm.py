"""``GMMMachine`` and ``GMMStats`` in bob.learn.em's HDF5 layouts.

Written: the reference's "1.0" layout (root attributes ``file_version`` and ``writer_class``, the
datasets the reference reads), so bob.learn.em 3.x loads emkit files.  emkit adds what the
reference forgot, in places the reference ignores: the MAP parameters (group ``emkit_map``) and the
prior UBM (group ``ubm``, same layout), so a MAP machine reloads as MAP.

Read: that layout (from either library) and the legacy bob 2.x C++ layout (no ``file_version``).
"""

from __future__ import annotations

import logging

import numpy as np

from .h5 import as_str, open_for_reading, open_for_writing, read_optional, write_stamp

logger = logging.getLogger("emkit")

REFERENCE_MODULE = "bob.learn.em"
FORMAT_VERSION = 1


def _writer_class(name: str) -> str:
    # the reference compares this attribute with str(cls) of its own classes
    return f"<class '{REFERENCE_MODULE}.{name}'>"


def _file_major_version(group) -> int:
    version = group.attrs.get("file_version")
    if version is None:
        return 0
    return int(as_str(version).split(".")[0])


def _check_writer(group, name: str) -> None:
    writer = group.attrs.get("writer_class")
    if writer is not None:
        writer = as_str(writer)
        if not (writer.endswith(f".{name}'>") or writer == name):
            logger.warning("%s is not %s.", writer, _writer_class(name))


def _scalar(value):
    """h5py scalar datasets come back as numpy scalars or 1-element arrays (legacy)."""
    arr = np.asarray(value)
    return arr.reshape(-1)[0] if arr.size == 1 else arr


def _none_as_nan(value):
    return np.nan if value is None else value


def _nan_as_none(value):
    value = _scalar(value)
    return None if isinstance(value, (float, np.floating)) and np.isnan(value) else value


def _require(group, names, what: str) -> None:
    missing = [name for name in names if name not in group]
    if missing:
        filename = getattr(getattr(group, "file", None), "filename", "the HDF5 group")
        listed = ", ".join(map(repr, missing))
        raise ValueError(f"{filename} is not a {what} file: dataset(s) {listed} missing")


# ---------------------------------------------------------------------------------------------
# GMMStats
# ---------------------------------------------------------------------------------------------


def write_gmm_stats(stats, hdf5) -> None:
    with open_for_writing(hdf5) as f:
        f.attrs["file_version"] = "1.0"
        f.attrs["writer_class"] = _writer_class("GMMStats")
        write_stamp(f, "GMMStats", FORMAT_VERSION)
        f["n_gaussians"] = np.int64(stats.n_gaussians)
        f["n_features"] = np.int64(stats.n_features)
        f["log_likelihood"] = np.float64(stats.log_likelihood)
        f["T"] = np.int64(stats.t)
        f["n"] = np.asarray(stats.n, dtype=np.float64)
        f["sumPx"] = np.asarray(stats.sum_px, dtype=np.float64)
        f["sumPxx"] = np.asarray(stats.sum_pxx, dtype=np.float64)


def read_gmm_stats(hdf5, cls):
    with open_for_reading(hdf5) as f:
        if _file_major_version(f) >= 1:
            _check_writer(f, "GMMStats")
            _require(f, ["n_gaussians", "n_features", "log_likelihood", "T", "n", "sumPx",
                         "sumPxx"], "GMMStats")
            C, D = f["n_gaussians"][()], f["n_features"][()]
            fields = (f["log_likelihood"][()], f["T"][()], f["n"][...], f["sumPx"][...], f["sumPxx"][...])
        else:  # bob 2.x layout
            _require(f, ["n_gaussians", "n_inputs", "log_liklihood", "T", "n", "sumPx", "sumPxx"],
                     "GMMStats (legacy bob 2.x layout, no 'file_version' attribute)")
            C, D = int(_scalar(f["n_gaussians"][()])), int(_scalar(f["n_inputs"][()]))
            fields = (float(_scalar(f["log_liklihood"][()])), int(_scalar(f["T"][()])),
                      f["n"][...].reshape(C), f["sumPx"][...].reshape(C, D), f["sumPxx"][...].reshape(C, D))
    stats = cls(int(C), int(D))
    stats.n_gaussians, stats.n_features = C, D
    stats.init_fields(*fields)
    return stats


# ---------------------------------------------------------------------------------------------
# GMMMachine
# ---------------------------------------------------------------------------------------------


def write_gmm_machine(machine, hdf5) -> None:
    with open_for_writing(hdf5) as f:
        _write_machine_into(machine, f)


def _write_machine_into(machine, f) -> None:
    f.attrs["file_version"] = "1.0"
    f.attrs["writer_class"] = _writer_class("GMMMachine")
    write_stamp(f, "GMMMachine", FORMAT_VERSION)
    f["n_gaussians"] = np.int64(machine.n_gaussians)
    f["trainer"] = machine.trainer
    f["convergence_threshold"] = np.float64(_none_as_nan(machine.convergence_threshold))
    # the reference needs an integer here; -1 stands for None ("no limit")
    steps = machine.max_fitting_steps
    f["max_fitting_steps"] = np.int64(-1 if steps is None else steps)
    f["weights"] = np.asarray(machine.weights, dtype=np.float64)
    f["update_means"] = bool(machine.update_means)
    f["update_variances"] = bool(machine.update_variances)
    f["update_weights"] = bool(machine.update_weights)
    g = f.create_group("gaussians")
    g["means"] = np.asarray(machine.means, dtype=np.float64)
    g["variances"] = np.asarray(machine.variances, dtype=np.float64)
    g["variance_thresholds"] = np.asarray(machine.variance_thresholds, dtype=np.float64)
    extra = f.create_group("emkit_map")
    extra["mean_var_update_threshold"] = np.float64(machine.mean_var_update_threshold)
    extra["map_alpha"] = np.asarray(machine.map_alpha, dtype=np.float64)
    extra["map_relevance_factor"] = np.float64(_none_as_nan(machine.map_relevance_factor))
    extra["compute_dtype"] = str(machine.compute_dtype)
    # an int seed is kept; None is stored as -1 (seeds are >= 0); a generator object is not saved
    seed = machine.random_state
    if seed is None:
        extra["random_state"] = np.int64(-1)
    elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        extra["random_state"] = np.int64(seed)
    # the ``weights`` constructor argument (the live weights are in /weights)
    weights_param = machine.get_params(deep=False).get("weights")
    if weights_param is not None:
        extra["weights_param"] = np.asarray(weights_param, dtype=np.float64)
    if machine.ubm is not None:
        _write_machine_into(machine.ubm, f.create_group("ubm"))


def read_gmm_machine(hdf5, cls, ubm=None):
    with open_for_reading(hdf5) as f:
        if _file_major_version(f) >= 1:
            return _read_current(f, cls, ubm)
        return _read_legacy(f, cls, ubm)


def _read_current(f, cls, ubm):
    _check_writer(f, "GMMMachine")
    _require(f, ["n_gaussians", "trainer", "max_fitting_steps", "weights", "update_means",
                 "update_variances", "update_weights", "gaussians"], "GMMMachine")
    trainer = as_str(f["trainer"][()])
    if ubm is None and "ubm" in f:
        ubm = _read_current(f["ubm"], cls, None)
    if trainer == "map" and ubm is None:
        raise ValueError("The UBM is needed when loading a MAP machine (pass ubm=...).")
    steps = int(f["max_fitting_steps"][()])
    kwargs = dict(
        n_gaussians=int(f["n_gaussians"][()]),
        trainer=trainer,
        ubm=ubm,
        convergence_threshold=_nan_as_none(read_optional(f, "convergence_threshold", 1e-5)),
        max_fitting_steps=None if steps < 0 else steps,
        weights=f["weights"][...],
        update_means=bool(f["update_means"][()]),
        update_variances=bool(f["update_variances"][()]),
        update_weights=bool(f["update_weights"][()]),
    )
    if kwargs["convergence_threshold"] is None and kwargs["max_fitting_steps"] is None:
        kwargs["convergence_threshold"] = 1e-5
    if "emkit_map" in f:
        extra = f["emkit_map"]
        kwargs["mean_var_update_threshold"] = float(extra["mean_var_update_threshold"][()])
        alpha = extra["map_alpha"][()]
        kwargs["map_alpha"] = float(alpha) if np.ndim(alpha) == 0 else np.asarray(alpha)
        relevance = _nan_as_none(extra["map_relevance_factor"][()])
        kwargs["map_relevance_factor"] = None if relevance is None else float(relevance)
        if "compute_dtype" in extra:
            kwargs["compute_dtype"] = as_str(extra["compute_dtype"][()])
        if "random_state" in extra:
            seed = int(extra["random_state"][()])
            kwargs["random_state"] = None if seed < 0 else seed
        # emkit files keep the constructor argument apart from the live weights (set below)
        kwargs["weights"] = extra["weights_param"][...] if "weights_param" in extra else None
    machine = cls(**kwargs)
    machine.weights = f["weights"][...]
    g = f["gaussians"]
    machine.means = g["means"][...]
    machine.variances = g["variances"][...]
    thresholds = g["variance_thresholds"][()]
    machine.variance_thresholds = float(thresholds) if np.ndim(thresholds) == 0 else thresholds
    return machine


def _read_legacy(f, cls, ubm):
    if "m_n_gaussians" not in f:
        raise ValueError("not a GMMMachine file: neither attribute 'file_version' nor dataset "
                         "'m_n_gaussians' (legacy bob 2.x layout) found")
    C = int(_scalar(f["m_n_gaussians"][()]))
    groups = [f[f"m_gaussians{i}"] for i in range(C)]
    weights = np.reshape(f["m_weights"][...], (C,))
    machine = cls(n_gaussians=C, ubm=ubm, weights=weights)
    machine.means = np.array([g["m_mean"][...] for g in groups]).reshape(C, -1)
    machine.variances = np.array([g["m_variance"][...] for g in groups]).reshape(C, -1)
    machine.variance_thresholds = np.array([g["m_variance_thresholds"][...] for g in groups]).reshape(C, -1)
    return machine
