"""The additive accumulators of the i-vector E-step."""

from __future__ import annotations

import numpy as np

from .._kernels import packed as pk


class IVectorStats:
    """Additive accumulators of the i-vector E-step (``a + b`` = statistics of both data sets).

    Parameters
    ----------
    dim_c, dim_d, dim_t : int
        C Gaussians, D features, rank R: the accumulators start at zero.

    Attributes
    ----------
    nij_sigma_wij2 : ndarray (C, R, R)
        ``sum_s n_sc E[w_s w_s']``.  Symmetric: kept as its packed lower triangles (C, R(R+1)/2)
        while the E-step sums and the M-step reads it (half the memory), expanded to (C, R, R) on
        first access of this attribute.
    fnorm_sigma_wij : ndarray (C, D, R)
        ``sum_s (F_sc - n_sc m_c) E[w_s]'``.
    snormij : ndarray (C, D)
        ``sum_s (S_sc - 2 F_sc m_c + n_sc m_c**2)``.
    nij : ndarray (C,)
        ``sum_s n_sc``.
    log_likelihood : float
        Sum over utterances of the log-likelihood of their statistics (emkit addition).
    n_sessions : int
        Number of accumulated utterances (emkit addition).
    """

    def __init__(self, dim_c: int, dim_d: int, dim_t: int):
        self.dim_c, self.dim_d, self.dim_t = dim_c, dim_d, dim_t
        self._second = None  # the full (C, R, R) array once expanded or set
        self._packed = np.zeros((dim_c, dim_t * (dim_t + 1) // 2))
        self.fnorm_sigma_wij = np.zeros((dim_c, dim_d, dim_t))
        self.snormij = np.zeros((dim_c, dim_d))
        self.nij = np.zeros((dim_c,))
        self.log_likelihood = 0.0
        self.n_sessions = 0

    _FIELDS = ("nij_sigma_wij2", "fnorm_sigma_wij", "snormij", "nij", "log_likelihood",
               "n_sessions")

    @property
    def nij_sigma_wij2(self) -> np.ndarray:
        """``sum_s n_sc E[w_s w_s']``, shape (C, R, R) (expanded on first access)."""
        if self._second is None:
            C, _, R = self.shape
            self._second = self._packed[:, pk.symmetric_index(R)].reshape(C, R, R)
            self._packed = None
        return self._second

    @nij_sigma_wij2.setter
    def nij_sigma_wij2(self, value) -> None:
        self._second, self._packed = value, None

    def _packed_second_order(self):
        """The packed (C, R(R+1)/2) second-order accumulator, or None once it is full."""
        return self._packed

    def _recycled(self):
        """This object, emptied for the next E-step to overwrite (its arrays are kept, not
        zeroed: the first batch writes them, see ``workspace["overwrite"]`` in
        :func:`emkit._kernels.ivector.accumulate_centred`); None once its second-order
        accumulator has been expanded to the full (C, R, R) array."""
        if self._packed is None:
            return None
        self.log_likelihood, self.n_sessions = 0.0, 0
        return self

    def _clear(self) -> None:
        """Zero every accumulator (after :meth:`_recycled`, when no batch was written)."""
        for array in (self._packed, self.fnorm_sigma_wij, self.snormij, self.nij):
            array.fill(0.0)

    def _count(self, log_likelihood: float, n_sessions: int) -> None:
        """Add a batch's log-likelihood and utterance count (the kernel adds its arrays)."""
        self.log_likelihood += log_likelihood
        self.n_sessions += n_sessions

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, D, R)."""
        return (self.dim_c, self.dim_d, self.dim_t)

    def _check(self, other):
        if not isinstance(other, IVectorStats):
            raise TypeError(f"can only add IVectorStats to IVectorStats; got "
                            f"{type(other).__name__}")
        if self.shape != other.shape:
            raise ValueError(f"Cannot add stats of different shapes: {self.shape} and "
                             f"{other.shape}")

    def __add__(self, other: "IVectorStats") -> "IVectorStats":
        self._check(other)
        out = IVectorStats.__new__(IVectorStats)
        out.dim_c, out.dim_d, out.dim_t = self.shape
        out._second = out._packed = None
        for name in self._FIELDS:
            if name == "nij_sigma_wij2" and self._packed is not None and other._packed is not None:
                out._packed = self._packed + other._packed
            else:
                setattr(out, name, getattr(self, name) + getattr(other, name))
        return out

    def __radd__(self, other):
        if isinstance(other, int) and other == 0:  # sum(list_of_stats)
            return self
        return NotImplemented

    def __iadd__(self, other: "IVectorStats") -> "IVectorStats":
        self._check(other)
        for name in self._FIELDS:
            if name == "nij_sigma_wij2" and self._packed is not None and other._packed is not None:
                self._packed += other._packed
                continue
            value = getattr(self, name)
            if isinstance(value, np.ndarray):
                value += getattr(other, name)
            else:
                setattr(self, name, value + getattr(other, name))
        return self

    def __repr__(self) -> str:
        return (f"IVectorStats(dim_c={self.dim_c}, dim_d={self.dim_d}, dim_t={self.dim_t}, "
                f"n_sessions={self.n_sessions})")
