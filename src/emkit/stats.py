"""``GMMStats``: the sufficient statistics of frames under a diagonal GMM.

Statistics are additive values: ``a + b`` holds the statistics of the union of the data behind
``a`` and ``b``.  That single property makes chunking, threads, processes and dask the same thing.
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass

import numpy as np

from ._shifted_moments import _Shifted
from ._validation import check_positive_int, check_stacked_statistics, copy_real, real_copy
from .io._registry import register
from ._describe import describe

logger = logging.getLogger(__name__)


class GMMStats:
    """Zeroth, first and second order statistics of frames given a GMM with C Gaussians in D dims.

    Parameters
    ----------
    n_gaussians, n_features : int
        C and D (>= 0): every field starts at zero.
    like : object, optional
        An array of the library to create the fields in (numpy's ``like=``); None: numpy.

    Attributes
    ----------
    log_likelihood : float
        Sum over the accumulated frames of ``log p(x_t)``.
    t : int
        Number of accumulated frames T.
    n : ndarray (C,)
        ``sum_t P(c | x_t)``.
    sum_px : ndarray (C, D)
        ``sum_t P(c | x_t) x_t``.
    sum_pxx : ndarray (C, D)
        ``sum_t P(c | x_t) x_t**2`` (element-wise square).

    Statistics of ``GMMMachine.acc_stats`` also keep, privately, moments about a shift (the mean
    of the means) for the M-step: variances of data far from the origin keep their precision.  Any
    change of a public field (assignment or in-place) makes them plain raw sums again.
    """

    def __init__(self, n_gaussians: int, n_features: int, like=None):
        check_positive_int(n_gaussians, "n_gaussians", minimum=0)
        check_positive_int(n_features, "n_features", minimum=0)
        self.n_gaussians = n_gaussians
        self.n_features = n_features
        self.log_likelihood = 0
        self.t = 0
        kw = {} if like is None else {"like": like}
        shapes = ((n_gaussians,), (n_gaussians, n_features), (n_gaussians, n_features))
        self.n, self.sum_px, self.sum_pxx = (np.zeros(shape, dtype=float, **kw) for shape in shapes)

    # -- fields -----------------------------------------------------------------------------
    def init_fields(self, log_likelihood=0.0, t=0, n=None, sum_px=None, sum_pxx=None):
        """Set every field; ``None`` arrays become float64 zeros of the current shape."""
        C, D = self.n_gaussians, self.n_features
        self.log_likelihood = log_likelihood
        self.t = t
        self.n = np.zeros((C,)) if n is None else n
        self.sum_px = np.zeros((C, D)) if sum_px is None else sum_px
        self.sum_pxx = np.zeros((C, D)) if sum_pxx is None else sum_pxx
        self._shifted = None

    # -- stacking and construction ------------------------------------------------------------
    @staticmethod
    def stack(stats, *, name: str = "X", shape=None, second_order: bool = False, indexed: bool = True,
              offset: int = 0, partition: int | None = None, shape_of: str = "the UBM") -> "StatsBatch":
        """Stack a sequence of S statistics into a validated :class:`StatsBatch`.

        ``stats``: a list, tuple or numpy object array of GMMStats.  ``shape``: the (C, D) every
        item must have (default: the first item's), and ``shape_of`` what it is the shape of, for
        the errors (default "the UBM"); ``second_order``: also stack ``sum_pxx``.
        Errors name ``name[offset + i]`` (or ``name`` when not ``indexed``): TypeError for an item
        that is not a GMMStats, ValueError for an empty sequence, a wrong shape, NaN or infinity,
        a negative occupancy ``n`` or frame count ``t``.  With ``partition`` (the items are those
        of partition ``k`` of a dask bag, from its item ``offset``): ``name[item j of partition k]``.
        """
        return _stack(stats, name, shape, second_order, indexed, offset, partition, shape_of)

    @classmethod
    def from_arrays(cls, n, sum_px, sum_pxx=None, *, t=0, log_likelihood=0.0) -> "GMMStats":
        """Statistics from arrays ``n`` (C,), ``sum_px`` (C, D), ``sum_pxx`` (C, D) or None (zeros);
        copied to float64 and checked for shape and finiteness."""
        n = real_copy(n, "n")
        sum_px = real_copy(sum_px, "sum_px")
        if n.ndim != 1 or sum_px.ndim != 2 or sum_px.shape[0] != n.shape[0]:
            raise ValueError(f"n must have shape (C,) and sum_px (C, D); got {n.shape} and {sum_px.shape}")
        sum_pxx = np.zeros(sum_px.shape) if sum_pxx is None else real_copy(sum_pxx, "sum_pxx")
        if sum_pxx.shape != sum_px.shape:
            raise ValueError(f"sum_pxx must have the shape of sum_px {sum_px.shape}; got {sum_pxx.shape}")
        for field, a in (("n", n), ("sum_px", sum_px), ("sum_pxx", sum_pxx),
                         ("log_likelihood", np.float64(log_likelihood))):
            if not np.isfinite(a).all():
                raise ValueError(f"{field} contains NaN or infinity")
        if np.any(n < 0):
            raise ValueError(f"n must be occupancies >= 0; got {float(n.min())!r} at index {int(np.argmin(n))}")
        if isinstance(t, bool) or not (isinstance(t, numbers.Real) and t >= 0 and float(t).is_integer()):
            raise ValueError(f"t must be a non-negative integer frame count; got {describe(t)}")
        out = cls(*sum_px.shape)
        out.init_fields(float(log_likelihood), int(t), n, sum_px, sum_pxx)
        return out

    @classmethod
    def _from_shifted(cls, log_likelihood, t, n, shift, px, pxx, keep_shift=True) -> "GMMStats":
        """The E-step's statistics, from moments about ``shift`` (see :meth:`_init_shifted`);
        without ``keep_shift`` only the raw sums are kept (per-session statistics)."""
        out = cls.__new__(cls)
        out.n_gaussians, out.n_features = px.shape
        out._init_shifted(log_likelihood, t, n, shift, px, pxx)
        if not keep_shift:
            out._shifted = None
        return out

    def _init_shifted(self, log_likelihood, t, n, shift, px, pxx, sum_pxx=None):
        """Set the fields from moments about ``shift`` (D,): ``px``, ``pxx`` (C, D); ``pxx=None``
        leaves the second order out (``sum_pxx`` is then the given array, zeros by default)."""
        self.log_likelihood = log_likelihood
        self.t = t
        self.n = n
        self._shifted = _Shifted(shift, px, pxx)
        self.sum_px, raw_pxx = self._shifted.raw(n)
        if raw_pxx is None:
            raw_pxx = np.zeros(px.shape) if sum_pxx is None else sum_pxx
        self.sum_pxx = raw_pxx

    def _valid_shifted(self):
        """The moments about a shift, or None when there are none or the public fields changed."""
        sh = getattr(self, "_shifted", None)
        if sh is None:
            return None
        sum_px, sum_pxx = sh.raw(self.n)
        if not np.array_equal(sum_px, self.sum_px) or (sum_pxx is not None
                                                       and not np.array_equal(sum_pxx, self.sum_pxx)):
            self._shifted = None
            return None
        return sh

    def _shifted_moments(self):
        """``(shift (D,), px (C, D), pxx (C, D) or None)`` when the statistics keep moments about
        a shift that still give their raw sums, else None (what a file keeps, internal)."""
        sh = self._valid_shifted()
        return None if sh is None else (sh.shift, sh.px, sh.pxx)

    def _restore_shifted(self, shift, px, pxx=None) -> bool:
        """Keep the moments about ``shift`` read back with the raw sums (from a file); False, and
        none kept, when they do not give the raw sums exactly."""
        self._shifted = _Shifted(shift, px, pxx)
        return self._valid_shifted() is not None

    def centred_moments(self, second_order: bool = True):
        """``(shift (D,), sum_t r (x - shift), sum_t r (x - shift)**2)`` (internal, for M-steps).

        Without moments about a shift (e.g. statistics set by assignment or read from the
        reference's files), the shift is 0 and the raw sums are returned.
        """
        sh = self._valid_shifted()
        if sh is None or (second_order and sh.pxx is None):
            return np.zeros(self.n_features), self.sum_px, self.sum_pxx
        return sh.shift, sh.px, sh.pxx

    def reset(self):
        """Zero every field, keeping the shape."""
        self.init_fields()

    def resize(self, n_gaussians: int, n_features: int):
        """Change the shape to (n_gaussians, n_features) and zero every field."""
        self.n_gaussians, self.n_features = n_gaussians, n_features
        self.init_fields()

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_gaussians, self.n_features)

    @property
    def nbytes(self) -> int:
        return self.n.nbytes + self.sum_px.nbytes + self.sum_pxx.nbytes

    def __sizeof__(self) -> int:  # (what dask's sizeof counts against a worker's memory)
        return object.__sizeof__(self) + self.nbytes

    # -- algebra ----------------------------------------------------------------------------
    def _check_addable(self, other):
        if not isinstance(other, GMMStats):
            raise TypeError(f"can only add GMMStats to GMMStats; got {type(other).__name__}")
        if self.shape != other.shape:
            raise ValueError(
                f"Statistics could not be added together (shape mismatch): {self.shape} and {other.shape}"
            )

    def _common_shift(self, other):
        a, b = self._valid_shifted(), other._valid_shifted()
        if a is not None and b is not None and np.array_equal(a.shift, b.shift):
            return a, b
        return None

    def __add__(self, other: "GMMStats") -> "GMMStats":
        self._check_addable(other)
        out = GMMStats.__new__(GMMStats)
        out.n_gaussians, out.n_features = self.n_gaussians, self.n_features
        both = self._common_shift(other)
        if both is not None:
            a, b = both
            pxx = None if a.pxx is None or b.pxx is None else a.pxx + b.pxx
            out._init_shifted(self.log_likelihood + other.log_likelihood, self.t + other.t, self.n + other.n,
                              a.shift, a.px + b.px, pxx,
                              sum_pxx=None if pxx is not None else self.sum_pxx + other.sum_pxx)
            return out
        out._shifted = None
        out.log_likelihood = self.log_likelihood + other.log_likelihood
        out.t = self.t + other.t
        out.n = self.n + other.n
        out.sum_px = self.sum_px + other.sum_px
        out.sum_pxx = self.sum_pxx + other.sum_pxx
        return out

    def __radd__(self, other):
        # lets ``sum(list_of_stats)`` work (it starts from the integer 0)
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented

    def __iadd__(self, other: "GMMStats") -> "GMMStats":
        """In-place accumulation (the arrays of ``self`` are updated in place)."""
        self._check_addable(other)
        both = self._common_shift(other)
        self.log_likelihood += other.log_likelihood
        self.t += other.t
        self.n += other.n
        if both is not None:
            a, b = both
            a.px += b.px
            if a.pxx is not None and b.pxx is not None:
                a.pxx += b.pxx
            else:
                a.pxx = None
                self.sum_pxx += other.sum_pxx
            sum_px, sum_pxx = a.raw(self.n)
            self.sum_px[...] = sum_px
            if sum_pxx is not None:
                self.sum_pxx[...] = sum_pxx
            return self
        self._shifted = None
        self.sum_px += other.sum_px
        self.sum_pxx += other.sum_pxx
        return self

    def copy(self) -> "GMMStats":
        """An independent copy (arrays copied, ``log_likelihood`` and ``t`` kept)."""
        out = GMMStats.__new__(GMMStats)
        out.__dict__.update(self.__dict__)
        out.n, out.sum_px, out.sum_pxx = self.n.copy(), self.sum_px.copy(), self.sum_pxx.copy()
        out._shifted = None if getattr(self, "_shifted", None) is None else self._shifted.copy()
        return out

    def __eq__(self, other) -> bool:
        if not isinstance(other, GMMStats):
            return NotImplemented
        return bool(
            self.shape == other.shape
            and np.array_equal(self.log_likelihood, other.log_likelihood)
            and self.t == other.t
            and np.array_equal(self.n, other.n)
            and np.array_equal(self.sum_px, other.sum_px)
            and np.array_equal(self.sum_pxx, other.sum_pxx)
        )

    __hash__ = None

    def is_similar_to(self, other: "GMMStats", rtol: float = 1e-5, atol: float = 1e-8) -> bool:
        """True when every field agrees within ``np.isclose``/``np.allclose`` tolerances."""
        return bool(
            self.shape == other.shape
            and np.isclose(self.log_likelihood, other.log_likelihood, rtol=rtol, atol=atol)
            and np.isclose(self.t, other.t, rtol=rtol, atol=atol)
            and np.allclose(self.n, other.n, rtol=rtol, atol=atol)
            and np.allclose(self.sum_px, other.sum_px, rtol=rtol, atol=atol)
            and np.allclose(self.sum_pxx, other.sum_pxx, rtol=rtol, atol=atol)
        )

    def __repr__(self) -> str:
        return f"GMMStats(n_gaussians={self.n_gaussians}, n_features={self.n_features}, t={self.t})"

    # -- HDF5 -------------------------------------------------------------------------------
    def save(self, hdf5):
        """Write the statistics in the reference's HDF5 layout (a path or an open ``h5py`` group),
        with the moments about a shift when they are kept (:mod:`emkit.io.gmm_stats`)."""
        from .io._registry import save

        save(self, hdf5)

    @classmethod
    def from_hdf5(cls, hdf5) -> "GMMStats":
        """Read statistics written by emkit, bob.learn.em 3.x or the legacy bob 2.x layout."""
        from .io._registry import load

        return load(hdf5, expected=cls)

    def load(self, hdf5):
        """Replace the contents of ``self`` by the statistics stored in ``hdf5``."""
        loaded = self.from_hdf5(hdf5)
        if loaded.shape != self.shape:
            logger.warning("Loaded GMMStats from hdf5 with a different shape.")
            self.resize(*loaded.shape)
        self.init_fields(loaded.log_likelihood, loaded.t, loaded.n, loaded.sum_px, loaded.sum_pxx)
        self._shifted = loaded._shifted  # (moments about a shift the file kept, or None)


@dataclass(frozen=True, eq=False)
class StatsBatch:
    """The statistics of S sessions stacked into arrays: the one input of every consumer of a UBM's
    statistics (ISV/JFA, i-vectors, linear scoring, experiments).

    Made by :meth:`GMMStats.stack`, which validates every session once; the arrays are fresh
    C-contiguous float64 copies.

    Attributes
    ----------
    n : ndarray (S, C)
    sum_px : ndarray (S, C, D)
    sum_pxx : ndarray (S, C, D) or None (stacked without the second order)
    t : ndarray (S,)
    log_likelihood : ndarray (S,)
    """

    n: np.ndarray
    sum_px: np.ndarray
    sum_pxx: "np.ndarray | None"
    t: np.ndarray
    log_likelihood: np.ndarray

    def __len__(self) -> int:
        return self.n.shape[0]

    @property
    def n_sessions(self) -> int:
        return self.n.shape[0]

    @property
    def n_gaussians(self) -> int:
        return self.sum_px.shape[1]

    @property
    def n_features(self) -> int:
        return self.sum_px.shape[2]

    @property
    def shape(self) -> tuple[int, int]:
        """(C, D) of every session's statistics."""
        return self.sum_px.shape[1:]

    @property
    def supervectors(self) -> np.ndarray:
        """``sum_px`` as (S, C*D) supervectors (a view)."""
        return self.sum_px.reshape(len(self), -1)

    def take(self, index) -> "StatsBatch":
        """The sessions ``index`` (a slice, integer array or boolean mask), as a new batch."""
        pxx = None if self.sum_pxx is None else self.sum_pxx[index]
        return StatsBatch(self.n[index], self.sum_px[index], pxx, self.t[index],
                          self.log_likelihood[index])

    def total(self) -> GMMStats:
        """The sum of every session's statistics."""
        pxx = None if self.sum_pxx is None else self.sum_pxx.sum(axis=0)
        return GMMStats.from_arrays(self.n.sum(axis=0), self.sum_px.sum(axis=0), pxx,
                                    t=int(self.t.sum()), log_likelihood=float(self.log_likelihood.sum()))

    def to_stats(self) -> list:
        """One :class:`GMMStats` per session (copies)."""
        return [GMMStats.from_arrays(self.n[i], self.sum_px[i],
                                     None if self.sum_pxx is None else self.sum_pxx[i],
                                     t=int(self.t[i]), log_likelihood=float(self.log_likelihood[i]))
                for i in range(len(self))]


def check_stats(s, label: str, shape, second_order: bool = False, *, shape_of: str) -> GMMStats:
    """``s`` if it is a GMMStats whose arrays have the (C, D) ``shape``, that of ``shape_of`` ("the
    UBM", "the GMM machine"; errors name ``label`` and ``shape_of``); values are not looked at
    (:meth:`GMMStats.stack` checks them while copying)."""
    if not isinstance(s, GMMStats):
        raise TypeError(f"{label} must be a GMMStats; got {type(s).__name__}")
    shape = tuple(shape)
    if (s.shape != shape or np.shape(s.n) != shape[:1] or np.shape(s.sum_px) != shape
            or (second_order and np.shape(s.sum_pxx) != shape)):
        found = s.shape if s.shape != shape else (np.shape(s.n), np.shape(s.sum_px))
        raise ValueError(f"{label} has statistics of shape (n_gaussians, n_features) = {found}; "
                         f"{shape_of} has {shape}")
    return s


def _stack(stats, name, shape, second_order, indexed, offset, partition, shape_of) -> StatsBatch:
    def label(i):
        if not indexed:
            return name
        if partition is None:
            return f"{name}[{offset + i}]"
        return f"{name}[item {offset + i} of partition {partition}]"

    if isinstance(stats, GMMStats):
        raise TypeError(f"{name} must be a sequence of GMMStats; got a single GMMStats")
    stats = as_stats_sequence(stats)
    if not isinstance(stats, (list, tuple)):
        try:
            stats = list(stats)
        except TypeError:
            raise TypeError(f"{name} must be a sequence of GMMStats; got {type(stats).__name__}") from None
    if not stats:
        raise ValueError(f"{name} is empty: expected at least one GMMStats")
    if shape is None and isinstance(stats[0], GMMStats):
        shape, shape_of = stats[0].shape, label(0)
    for i, s in enumerate(stats):
        check_stats(s, label(i), shape, second_order, shape_of=shape_of)
    S, (C, D) = len(stats), shape
    fields = {"n": np.empty((S, C)), "sum_px": np.empty((S, C, D)), "t": np.empty(S),
              "log_likelihood": np.empty(S)}
    if second_order:
        fields["sum_pxx"] = np.empty((S, C, D))
    for field, out in fields.items():
        for i, s in enumerate(stats):
            copy_real(out[i : i + 1], getattr(s, field), f"{label(i)}.{field}")
    check_stacked_statistics(fields, name, label)
    return StatsBatch(*(fields.get(k) for k in ("n", "sum_px", "sum_pxx", "t", "log_likelihood")))


def as_stats_sequence(X):
    """``X`` with numpy object arrays of :class:`GMMStats` as lists: 1-D -> list, 2-D -> list of
    lists, 0-D -> its item; lists of such arrays (per-class groups) have their items converted.
    Anything else is returned unchanged (validation is the caller's): cheap on lists."""
    if isinstance(X, np.ndarray) and X.dtype == object:
        if X.ndim == 0:
            return X.item()
        if X.ndim == 1:
            return [as_stats_sequence(x) for x in X.tolist()]
        return [as_stats_sequence(row) for row in X]
    if isinstance(X, (list, tuple)) and X and isinstance(X[0], np.ndarray) and X[0].dtype == object:
        return [as_stats_sequence(x) for x in X]
    return X


register(GMMStats, "GMMStats", write="emkit.io.gmm_stats:write_gmm_stats",
         read="emkit.io.gmm_stats:read_gmm_stats")
