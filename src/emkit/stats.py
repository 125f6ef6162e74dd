"""``GMMStats``: the sufficient statistics of frames under a diagonal GMM.

Statistics are additive values: ``a + b`` holds the statistics of the union of the data behind
``a`` and ``b``.  That single property makes chunking, threads, processes and dask the same thing.
"""

from __future__ import annotations

import logging
import numbers

import numpy as np

from ._shifted_moments import _Shifted
from . import _stats_stack
from ._stats_stack import StatsBatch, as_stats_sequence, check_stats  # noqa: F401 (re-exported)
from ._validation import check_comparable, check_positive_int, real_copy
from .io._registry import register
from ._describe import describe

logger = logging.getLogger(__name__)

#: (StatsBatch: what GMMStats.stack returns; as_stats_sequence and check_stats are imported from
#: here by emkit's estimators, not public)
__all__ = ["GMMStats", "StatsBatch"]


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
        """Set every field, as bob.learn.em 3.3.1 does: arrays are kept as given (no copy, no check).

        Parameters
        ----------
        log_likelihood : float, default 0.0
        t : int, default 0
            The number of frames.
        n : ndarray of shape (C,), optional
            Default: float64 zeros of the current shape (numpy, whatever ``like`` was).
        sum_px, sum_pxx : ndarray of shape (C, D), optional
            Default: float64 zeros of the current shape.

        Notes
        -----
        The moments about a shift kept privately are dropped: the fields are plain raw sums.
        """
        C, D = self.n_gaussians, self.n_features
        self.log_likelihood = log_likelihood
        self.t = t
        self.n = np.zeros((C,)) if n is None else n
        self.sum_px = np.zeros((C, D)) if sum_px is None else sum_px
        self.sum_pxx = np.zeros((C, D)) if sum_pxx is None else sum_pxx
        self._shifted = None

    # -- stacking and construction ------------------------------------------------------------
    stack = staticmethod(_stats_stack.stack)

    @classmethod
    def from_arrays(cls, n, sum_px, sum_pxx=None, *, t=0, log_likelihood=0.0) -> "GMMStats":
        """Checked statistics from arrays (not in bob.learn.em 3.3.1, whose fields are assigned).

        Parameters
        ----------
        n : array-like of shape (C,)
            Occupancies, >= 0.
        sum_px : array-like of shape (C, D)
        sum_pxx : array-like of shape (C, D), optional
            Default: zeros (statistics without the second order).
        t : int, default 0
            The number of frames (an integral float such as 3.0 is accepted).
        log_likelihood : float, default 0.0

        Returns
        -------
        GMMStats
            Of shape (C, D), holding float64 copies of the arrays.

        Raises
        ------
        TypeError
            An array holds complex values.
        ValueError
            Shapes that disagree, NaN or infinity, a negative occupancy, a ``t`` that is not an
            integer >= 0 (each naming the argument).
        """
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
        """The first and second order moments about a shift, for the M-steps (not in the reference).

        Statistics of ``GMMMachine.acc_stats`` keep them about the mean of the means, so that
        variances of data far from the origin keep their precision.  Without them (statistics
        assigned, changed, or read from the reference's files) the shift is 0 and the raw sums
        are returned.

        Parameters
        ----------
        second_order : bool, default True
            Whether the caller needs the second order: moments kept without it then give way to
            the raw sums.

        Returns
        -------
        shift : ndarray of shape (D,)
        px : ndarray of shape (C, D)
            ``sum_t r_t (x_t - shift)``.
        pxx : ndarray of shape (C, D), or None
            ``sum_t r_t (x_t - shift)**2``; None only with ``second_order=False`` for moments kept
            without the second order.  The arrays are not copies: do not write to them.
        """
        sh = self._valid_shifted()
        if sh is None or (second_order and sh.pxx is None):
            return np.zeros(self.n_features), self.sum_px, self.sum_pxx
        return sh.shift, sh.px, sh.pxx

    def reset(self):
        """Zero every field, keeping the shape."""
        self.init_fields()

    def resize(self, n_gaussians: int, n_features: int):
        """Change the shape and zero every field (float64 numpy arrays).

        Parameters
        ----------
        n_gaussians, n_features : int
            The new C and D, integers >= 0 (bob.learn.em 3.3.1 did not check them).
        """
        shape = (check_positive_int(n_gaussians, "n_gaussians", minimum=0),
                 check_positive_int(n_features, "n_features", minimum=0))  # (both, then store)
        self.n_gaussians, self.n_features = shape
        self.init_fields()

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_gaussians, n_features)``: (C, D)."""
        return (self.n_gaussians, self.n_features)

    @property
    def nbytes(self) -> int:
        """Bytes of ``n``, ``sum_px`` and ``sum_pxx``, as in the reference."""
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
        """An independent copy (not in bob.learn.em 3.3.1).

        Returns
        -------
        GMMStats
            The same fields, with ``n``, ``sum_px``, ``sum_pxx`` (and the moments about a shift)
            copied: changing one object leaves the other as it was.
        """
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
        """Whether the statistics agree within tolerances, as in bob.learn.em 3.3.1.

        Parameters
        ----------
        other : GMMStats
        rtol, atol : float, default 1e-5 and 1e-8
            The tolerances (finite, >= 0) of ``np.isclose`` (``log_likelihood``, ``t``) and
            ``np.allclose`` (``n``, ``sum_px``, ``sum_pxx``).

        Returns
        -------
        bool
            False for statistics of another shape (C, D).
        """
        check_comparable(other, GMMStats, "other", rtol=rtol, atol=atol)
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
        """Write the statistics in the HDF5 layout of bob.learn.em 3.x, which loads the file.

        The moments about a shift, when kept, go in a group the reference ignores
        (:mod:`emkit.io.gmm_stats`).

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A path (written atomically, and closed: the reference left it to the garbage
            collector) or an open, writable group (see :func:`emkit.io.save`).

        Raises
        ------
        ValueError
            Statistics no reader accepts, nothing written (the reference wrote them): fields not
            of shape (C, D), NaN or infinity, a negative ``n``, ``sum_pxx`` or ``t``, a ``t`` that
            is not an integer, no Gaussians.
        """
        from .io._registry import save

        save(self, hdf5)

    @classmethod
    def from_hdf5(cls, hdf5) -> "GMMStats":
        """Read statistics written by emkit, bob.learn.em 3.x or bob 2.x (legacy layout).

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A path (opened read-only and closed) or an open group.

        Returns
        -------
        GMMStats
            ``n_gaussians`` and ``n_features`` are ``numpy.int64`` and float32 arrays stay
            float32, as in the reference; a legacy file's ``log_likelihood`` is a number (the
            reference kept a 1-element array).

        Raises
        ------
        FileNotFoundError
            No such file.
        InvalidFileError
            A ``ValueError``: not statistics (another model's file), a damaged or hostile file,
            values no statistics have (NaN, negative occupancies); the message names the file
            and the dataset.
        """
        from .io._registry import load

        return load(hdf5, expected=cls)

    def load(self, hdf5):
        """Replace the contents of ``self`` by the statistics stored in ``hdf5``.

        Statistics of another shape log the reference's warning ("Loaded GMMStats from hdf5 with
        a different shape.") and resize ``self``.

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group

        Raises
        ------
        FileNotFoundError, InvalidFileError
            As :meth:`from_hdf5`; ``self`` is then left as it was.
        """
        loaded = self.from_hdf5(hdf5)
        if loaded.shape != self.shape:
            logger.warning("Loaded GMMStats from hdf5 with a different shape.")
            self.resize(*loaded.shape)
        self.init_fields(loaded.log_likelihood, loaded.t, loaded.n, loaded.sum_px, loaded.sum_pxx)
        self._shifted = loaded._shifted  # (moments about a shift the file kept, or None)


register(GMMStats, "GMMStats", write="emkit.io.gmm_stats:write_gmm_stats",
         read="emkit.io.gmm_stats:read_gmm_stats")
