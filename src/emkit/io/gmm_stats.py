"""``GMMStats`` in bob.learn.em's HDF5 layouts.

Written: the reference's "1.0" layout (root attributes ``file_version`` and ``writer_class``,
datasets ``n_gaussians``, ``n_features``, ``log_likelihood``, ``T``, ``n``, ``sumPx``,
``sumPxx``), so bob.learn.em 3.x loads emkit files.  As the reference, the arrays keep their
float type: float32 (or float16) statistics are stored, and read back, as such; anything else is
stored as float64.

emkit adds, in a group the reference ignores, the moments about a shift that statistics of
``GMMMachine.acc_stats`` keep (:mod:`emkit._shifted_moments`): group ``emkit_shifted`` with
``shift`` (D,), ``sumPx`` (C, D) = ``sum_t r (x_t - shift)`` and, when the second order was
accumulated, ``sumPxx`` (C, D) = ``sum_t r (x_t - shift)**2``.  Without them an M-step on loaded
statistics lost precision for data far from the origin (3e-4 relative on the variances of
features 1e6 from it).  On reading, they must give the raw sums exactly, or the file is refused.

Read: the "1.0" layout (from either library) and the legacy bob 2.x C++ layout (no
``file_version``).
"""

from __future__ import annotations

import numbers

import numpy as np

from .errors import InvalidFileError
from .gmm import FORMAT_VERSION, _check_kind, _file_major_version, _writer_class
from .h5 import (child, filename, open_for_reading, open_for_writing, read_array, read_scalar,
                 write_stamp)
from .read_back import write_array
from .._describe import describe

__all__ = ["write_gmm_stats", "read_gmm_stats"]

#: Float types an array of statistics keeps in a file (others are stored as float64).
KEPT_FLOAT_TYPES = (np.float16, np.float32, np.float64)

SHIFTED_GROUP = "emkit_shifted"


def _as_stored(values) -> np.ndarray:
    values = np.asarray(values)
    return values if values.dtype.type in KEPT_FLOAT_TYPES else values.astype(np.float64)


def _check_savable(stats) -> None:
    """Refuse, before anything is written, statistics that the reader would refuse: the file
    would be one that emkit cannot load (or whose ``t`` was truncated to an integer)."""
    C, D = stats.n_gaussians, stats.n_features
    for name, size in (("n_gaussians", C), ("n_features", D)):
        if not (isinstance(size, numbers.Integral) and size >= 1):
            raise ValueError(f"GMMStats.{name} must be an integer >= 1 to be saved; "
                             f"got {describe(size)}")
    t = stats.t
    if isinstance(t, (bool, np.bool_)) or not (isinstance(t, numbers.Real) and t >= 0
                                                and float(t).is_integer()):
        raise ValueError(f"GMMStats.t must be a frame count (an integer >= 0) to be saved; "
                         f"got {describe(t)}")
    log_likelihood = np.asarray(stats.log_likelihood)  # (a 1-element array as bob 2.x files had)
    if not (log_likelihood.size == 1 and log_likelihood.dtype.kind in "iuf"
            and np.isfinite(log_likelihood).all()):
        raise ValueError("GMMStats.log_likelihood must be a finite number to be saved; got "
                         f"{describe(stats.log_likelihood)}")
    for name, shape, nonnegative in (("n", (C,), True), ("sum_px", (C, D), False),
                                     ("sum_pxx", (C, D), True)):
        values = np.asarray(getattr(stats, name))
        if values.shape != shape or values.dtype.kind not in "biuf":
            raise ValueError(f"GMMStats.{name} must be real numbers of shape {shape} (n_gaussians, "
                             f"n_features = {C}, {D}) to be saved; got {values.dtype} of shape "
                             f"{values.shape}")
        if not np.isfinite(values).all():
            raise ValueError(f"GMMStats.{name} holds NaN or infinity: statistics of finite data "
                             "are finite; nothing was saved")
        if nonnegative and values.size and values.min() < 0:
            raise ValueError(f"GMMStats.{name} must be >= 0 to be saved (as statistics of frames "
                             f"are); got {float(values.min())!r}")
    excess = _occupancy_excess(stats.n, t)
    if excess:
        raise ValueError(f"GMMStats.n must add up to at most t to be saved: {excess}; nothing was "
                         "saved")
    n = _as_stored(stats.n)
    orphan = _sums_without_counts(n, {"sum_px": stats.sum_px, "sum_pxx": stats.sum_pxx}, n.dtype)
    if orphan:
        raise ValueError(f"GMMStats cannot be saved: {orphan}; nothing was saved")


#: How far ``sum(n)`` may exceed ``T`` (relative): the rounding of float16 occupancies, with room.
OCCUPANCY_TOLERANCE = 1e-3


def _occupancy_excess(n, t) -> str | None:
    """What is wrong when the occupancies ``n`` add up to more than the ``t`` frames they were
    counted over (each frame's posteriors add up to 1), else None.  ``t = 0`` is "not counted"
    (``init_fields``' and ``from_arrays``' default, in either library) and is not compared; a
    sum below ``t`` is accepted (posteriors scaled or pruned, as Kaldi's can be)."""
    total = float(np.sum(n, dtype=np.float64))
    if t == 0 or total <= float(t) * (1 + OCCUPANCY_TOLERANCE):
        return None
    return (f"the occupancies n add up to {total:.6g}, more than the T = {int(t)} frames they "
            "were counted over (each frame's posteriors add up to 1)")


def _sums_without_counts(n, sums: dict, counts_type) -> str | None:
    """What is wrong when a Gaussian of occupancy ``n[c] = 0`` has non-zero sums (``{name: (C,
    D) array}``): sums over frames of posterior 0 are 0, else None.  Not checked for counts kept
    in a float type narrower than float64 (``counts_type``), where a tiny count of statistics
    written from float64 rounds to 0 while its sums, scaled by the frames, may not."""
    if np.dtype(counts_type).kind == "f" and np.dtype(counts_type).itemsize < 8:
        return None
    empty = np.asarray(n) == 0
    for name, values in sums.items():
        with_sums = empty & np.asarray(values).any(axis=1)
        if with_sums.any():
            c = int(np.argmax(with_sums))
            return (f"Gaussian {c} has {name}[{c}] not all 0 while its occupancy n[{c}] is 0 (sums "
                    "over frames of posterior 0 are 0)")
    return None


def write_gmm_stats(stats, hdf5) -> None:
    """Write GMM statistics in bob.learn.em's "1.0" layout, which the reference loads.

    Parameters
    ----------
    stats : GMMStats
    hdf5 : str, path-like or h5py.Group
        A path (written atomically) or an open, writable group.

    Raises
    ------
    ValueError
        Statistics the reader would refuse (shapes, NaN or infinity, negative counts, counts
        ``n`` adding up to more than the frame count ``t`` when it is not 0, non-zero sums of a
        Gaussian whose count is 0); nothing is written.
    """
    _check_savable(stats)
    with open_for_writing(hdf5) as f:
        f.attrs["file_version"] = "1.0"
        f.attrs["writer_class"] = _writer_class("GMMStats")
        write_stamp(f, "GMMStats", FORMAT_VERSION)
        f["n_gaussians"] = np.int64(stats.n_gaussians)
        f["n_features"] = np.int64(stats.n_features)
        f["log_likelihood"] = np.float64(stats.log_likelihood)
        f["T"] = np.int64(stats.t)
        write_array(f, "n", _as_stored(stats.n), dtype=None)
        write_array(f, "sumPx", _as_stored(stats.sum_px), dtype=None)
        write_array(f, "sumPxx", _as_stored(stats.sum_pxx), dtype=None)
        moments = stats._shifted_moments()
        if moments is not None:
            shift, px, pxx = moments
            g = f.create_group(SHIFTED_GROUP)
            write_array(g, "shift", shift)
            write_array(g, "sumPx", px)
            if pxx is not None:
                write_array(g, "sumPxx", pxx)


def _in_stored_type(f, name, values) -> np.ndarray:
    """``values`` (read as float64) back in the narrower float type dataset ``name`` holds."""
    stored = child(f, name).dtype
    if stored.kind == "f" and stored.itemsize < 8:
        return values.astype(stored.type)
    return values


def read_gmm_stats(hdf5, cls):
    """Read GMM statistics from bob.learn.em's "1.0" layout (written by either library) or the
    legacy bob 2.x one.

    Parameters
    ----------
    hdf5 : str, path-like or h5py.Group
        A path or an open group.
    cls : type
        The class to build (GMMStats or a subclass), through its own constructor.

    Returns
    -------
    GMMStats

    Raises
    ------
    InvalidFileError
        A file of another object, an unsupported layout version, or damaged or inconsistent
        contents (shapes, types and values are checked before use; the counts ``n`` may not add
        up to more than the frame count ``T`` unless it is 0, and a Gaussian whose count is 0
        has sums of 0).
    """
    with open_for_reading(hdf5, "GMMStats") as f:
        if _file_major_version(f) >= 1:
            names = ("n_gaussians", "n_features", "log_likelihood", "T")
            flat = False
        else:  # bob 2.x layout: 1-element arrays, the sums possibly flattened
            if child(f, "m_n_gaussians", required=False) is not None:
                raise InvalidFileError(f"{filename(f)} holds a GMMMachine (bob 2.x layout), not a "
                                       "GMMStats")
            names = ("n_gaussians", "n_inputs", "log_liklihood", "T")
            flat = True
        _check_kind(f, "GMMStats", "n_gaussians")
        C = read_scalar(f, names[0], "int", low=1)
        D = read_scalar(f, names[1], "int", low=1)
        log_likelihood = read_scalar(f, names[2], "float")
        T = read_scalar(f, names[3], "int", low=0)
        shape = dict(size=int(C) * int(D)) if flat else dict(shape=(C, D))
        n = read_array(f, "n", **(dict(size=C) if flat else dict(shape=(C,))), nonnegative=True)
        sum_px = read_array(f, "sumPx", **shape)
        sum_pxx = read_array(f, "sumPxx", **shape, nonnegative=True)
        excess = _occupancy_excess(n, T)
        if excess:
            raise InvalidFileError(f"{filename(f)}: datasets 'n' and {names[3]!r} disagree: "
                                   f"{excess}")
        orphan = _sums_without_counts(n, {"sumPx": sum_px.reshape(C, D),
                                          "sumPxx": sum_pxx.reshape(C, D)}, child(f, "n").dtype)
        if orphan:
            raise InvalidFileError(f"{filename(f)}: datasets 'n', 'sumPx' and 'sumPxx' disagree: "
                                   f"{orphan}")
        n, sum_px, sum_pxx = (_in_stored_type(f, name, values.reshape(shape))
                              for name, values, shape in (("n", n, (C,)), ("sumPx", sum_px, (C, D)),
                                                          ("sumPxx", sum_pxx, (C, D))))
        stats = cls(C, D)  # numpy.int64 shape, as the reference gives it
        stats.init_fields(log_likelihood, T, n, sum_px, sum_pxx)
        g = child(f, SHIFTED_GROUP, "group", required=False)
        if g is not None:
            _restore_shifted(g, stats, int(C), int(D))
    return stats


def _restore_shifted(g, stats, C: int, D: int) -> None:
    shift = read_array(g, "shift", shape=(D,))
    px = read_array(g, "sumPx", shape=(C, D))
    pxx = read_array(g, "sumPxx", shape=(C, D), required=False, nonnegative=True)
    if not stats._restore_shifted(shift, px, pxx):
        sums = "'sumPx'" if pxx is None else "'sumPx' and 'sumPxx'"
        raise InvalidFileError(f"{filename(g)}: group {g.name!r} does not match the statistics: its "
                               f"moments about 'shift' must give the datasets {sums} of "
                               f"{g.parent.name!r} exactly (the raw sums were changed; refused)")
