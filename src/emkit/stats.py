"""``GMMStats``: the sufficient statistics of frames under a diagonal GMM.

Statistics are additive values: ``a + b`` holds the statistics of the union of the data behind
``a`` and ``b``.  That single property makes chunking, threads, processes and dask the same thing.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)


class GMMStats:
    """Zeroth, first and second order statistics of frames given a GMM with C Gaussians in D dims.

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

    Statistics made by ``GMMMachine.acc_stats``/``e_step`` also keep, privately, the same moments
    about a shift ``s`` (the mean of the machine's means): ``sum_t P(c | x_t) (x_t - s)`` and
    ``sum_t P(c | x_t) (x_t - s)**2``.  The public raw sums are always derived from them, and the
    M-step uses them, so variances of data far from the origin keep their precision (the raw
    ``E[x^2] - E[x]^2`` loses it all at offsets of about 1e8 from the origin).  Any change of the
    public fields (assignment or in-place) makes the statistics plain raw sums again.
    """

    def __init__(self, n_gaussians: int, n_features: int, like=None):
        self.n_gaussians = n_gaussians
        self.n_features = n_features
        self.log_likelihood = 0
        self.t = 0
        kw = {} if like is None else {"like": like}
        self.n = np.zeros((n_gaussians,), dtype=float, **kw)
        self.sum_px = np.zeros((n_gaussians, n_features), dtype=float, **kw)
        self.sum_pxx = np.zeros((n_gaussians, n_features), dtype=float, **kw)

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

    # -- moments about a shift (internal) ----------------------------------------------------
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

    def centred_moments(self, second_order: bool = True):
        """``(shift (D,), sum_t r (x - shift), sum_t r (x - shift)**2)`` (internal, for M-steps).

        Without moments about a shift (e.g. statistics read from a file), the shift is 0 and the
        raw sums are returned.
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
        self.n_gaussians = n_gaussians
        self.n_features = n_features
        self.init_fields()

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_gaussians, self.n_features)

    @property
    def nbytes(self) -> int:
        return self.n.nbytes + self.sum_px.nbytes + self.sum_pxx.nbytes

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
        out = GMMStats.__new__(GMMStats)
        out.__dict__.update(self.__dict__)
        out.n, out.sum_px, out.sum_pxx = self.n.copy(), self.sum_px.copy(), self.sum_pxx.copy()
        sh = getattr(self, "_shifted", None)
        out._shifted = None if sh is None else sh.copy()
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
        """Write the statistics in the reference's HDF5 layout (a path or an open ``h5py`` group)."""
        from .io.gmm import write_gmm_stats

        write_gmm_stats(self, hdf5)

    @classmethod
    def from_hdf5(cls, hdf5) -> "GMMStats":
        """Read statistics written by emkit, bob.learn.em 3.x or the legacy bob 2.x layout."""
        from .io.gmm import read_gmm_stats

        return read_gmm_stats(hdf5, cls)

    def load(self, hdf5):
        """Replace the contents of ``self`` by the statistics stored in ``hdf5``."""
        loaded = self.from_hdf5(hdf5)
        if loaded.shape != self.shape:
            logger.warning("Loaded GMMStats from hdf5 with a different shape.")
            self.resize(*loaded.shape)
        self.init_fields(loaded.log_likelihood, loaded.t, loaded.n, loaded.sum_px, loaded.sum_pxx)


class _Shifted:
    """Moments about ``shift``: ``px = sum r (x - s)``, ``pxx = sum r (x - s)**2`` (or None)."""

    __slots__ = ("shift", "px", "pxx")

    def __init__(self, shift, px, pxx):
        self.shift, self.px, self.pxx = shift, px, pxx

    def raw(self, n):
        """The raw sums ``(sum r x, sum r x**2 or None)`` for the occupancies ``n``."""
        n = np.asarray(n)[:, None]
        sum_px = self.px + n * self.shift
        if self.pxx is None:
            return sum_px, None
        return sum_px, self.pxx + 2.0 * self.shift * self.px + n * (self.shift * self.shift)

    def copy(self):
        return _Shifted(self.shift.copy(), self.px.copy(), None if self.pxx is None else self.pxx.copy())

    def __getstate__(self):
        return (self.shift, self.px, self.pxx)

    def __setstate__(self, state):
        self.shift, self.px, self.pxx = state


def stack_stats(stats_list, name: str = "X"):
    """Stack a sequence of :class:`GMMStats` into arrays.

    Returns ``(n (S, C), sum_px (S, C, D), t (S,))`` as float64 arrays (S = number of statistics).
    Raises ``ValueError`` naming ``name`` for an empty sequence or mismatched shapes.
    """
    stats_list = list(stats_list)
    if not stats_list:
        raise ValueError(f"{name} is empty: expected at least one GMMStats")
    shape = None
    for i, s in enumerate(stats_list):
        if not isinstance(s, GMMStats):
            raise TypeError(f"{name}[{i}] must be a GMMStats; got {type(s).__name__}")
        if shape is None:
            shape = s.shape
        elif s.shape != shape:
            raise ValueError(f"{name}[{i}] has shape {s.shape}; {name}[0] has {shape}")
    n = np.stack([np.asarray(s.n, dtype=np.float64) for s in stats_list])
    sum_px = np.stack([np.asarray(s.sum_px, dtype=np.float64) for s in stats_list])
    t = np.array([s.t for s in stats_list], dtype=np.float64)
    return n, sum_px, t


def as_stats_sequence(X):
    """``X`` with numpy object arrays of :class:`GMMStats` turned into lists.

    ``np.array(list_of_stats)`` gives a 1-D object array (-> list), ``np.array`` of a list of
    equal-length lists a 2-D one (-> list of lists), a 0-D object array its single item; lists
    whose items are such arrays (per-class groups) have their items converted too.  Anything else
    is returned unchanged (validation is left to the caller), so this is cheap on lists.
    """
    if isinstance(X, np.ndarray) and X.dtype == object:
        if X.ndim == 0:
            return X.item()
        if X.ndim == 1:
            return [as_stats_sequence(x) for x in X.tolist()]
        return [as_stats_sequence(row) for row in X]
    if isinstance(X, (list, tuple)) and X and isinstance(X[0], np.ndarray) and X[0].dtype == object:
        return [as_stats_sequence(x) for x in X]
    return X
