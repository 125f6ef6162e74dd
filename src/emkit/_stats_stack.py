"""Stacking per-session :class:`~emkit.stats.GMMStats` into arrays: ``GMMStats.stack`` and the
:class:`StatsBatch` it returns (both importable from :mod:`emkit.stats`).

``GMMStats`` is imported inside the functions: :mod:`emkit.stats` imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ._validation import check_stacked_statistics, copy_real

if TYPE_CHECKING:
    from .stats import GMMStats


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
        """S, the number of sessions (``len(batch)``)."""
        return self.n.shape[0]

    @property
    def n_gaussians(self) -> int:
        """C, the number of Gaussians of the UBM the statistics are of."""
        return self.sum_px.shape[1]

    @property
    def n_features(self) -> int:
        """D, the number of features."""
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
        """The sessions ``index`` of this batch, as a new batch.

        Parameters
        ----------
        index : slice, int array or bool array of shape (S,)
            Which sessions (numpy indexing of the first axis).

        Returns
        -------
        StatsBatch
            Those sessions' statistics (arrays indexed as numpy does: a slice gives views).
        """
        pxx = None if self.sum_pxx is None else self.sum_pxx[index]
        return StatsBatch(self.n[index], self.sum_px[index], pxx, self.t[index],
                          self.log_likelihood[index])

    def total(self) -> GMMStats:
        """The sum of every session's statistics.

        Returns
        -------
        GMMStats
            ``n``, ``sum_px`` (and ``sum_pxx``), ``t`` and ``log_likelihood`` summed over the
            sessions.
        """
        from .stats import GMMStats

        pxx = None if self.sum_pxx is None else self.sum_pxx.sum(axis=0)
        return GMMStats.from_arrays(self.n.sum(axis=0), self.sum_px.sum(axis=0), pxx,
                                    t=int(self.t.sum()), log_likelihood=float(self.log_likelihood.sum()))

    def to_stats(self) -> list:
        """The sessions as separate statistics.

        Returns
        -------
        list of GMMStats
            One :class:`~emkit.stats.GMMStats` per session, in order (copies of its arrays).
        """
        from .stats import GMMStats

        return [GMMStats.from_arrays(self.n[i], self.sum_px[i],
                                     None if self.sum_pxx is None else self.sum_pxx[i],
                                     t=int(self.t[i]), log_likelihood=float(self.log_likelihood[i]))
                for i in range(len(self))]


def check_stats(s, label: str, shape, second_order: bool = False, *, shape_of: str) -> GMMStats:
    """``s`` if it is a GMMStats whose arrays have the (C, D) ``shape``, that of ``shape_of`` ("the
    UBM", "the GMM machine"; errors name ``label`` and ``shape_of``); values are not looked at
    (:meth:`GMMStats.stack` checks them while copying)."""
    from .stats import GMMStats

    if not isinstance(s, GMMStats):
        raise TypeError(f"{label} must be a GMMStats; got {type(s).__name__}")
    shape = tuple(shape)
    if (s.shape != shape or np.shape(s.n) != shape[:1] or np.shape(s.sum_px) != shape
            or (second_order and np.shape(s.sum_pxx) != shape)):
        found = s.shape if s.shape != shape else (np.shape(s.n), np.shape(s.sum_px))
        raise ValueError(f"{label} has statistics of shape (n_gaussians, n_features) = {found}; "
                         f"{shape_of} has {shape}")
    return s


def stack(stats, *, name: str = "X", shape=None, second_order: bool = False, indexed: bool = True,
          offset: int = 0, partition: int | None = None, shape_of: str = "the UBM") -> StatsBatch:
    """Stack a sequence of S statistics into a validated :class:`StatsBatch`.

    Every session is checked once, while its fields are copied: consumers of the batch (ISV/JFA,
    i-vectors, ``linear_scoring``, experiments) need not look at them again.  Not in
    bob.learn.em 3.3.1, where each consumer read the GMMStats fields itself and accepted NaN,
    negative occupancies or frame counts (NaN scores, ``LinAlgError``).

    Parameters
    ----------
    stats : list, tuple or iterable of GMMStats, or numpy object array of shape (S,)
        The S >= 1 sessions, each of shape (C, D).  A single GMMStats is refused (wrap it in a
        list).
    name : str, default "X"
        The argument's name in the caller, for the errors.
    shape : tuple of int (C, D), optional
        The (n_gaussians, n_features) every session must have; default: the first session's.
    second_order : bool, default False
        Also stack ``sum_pxx``; without it the batch's ``sum_pxx`` is None and the sessions'
        second order is neither copied nor checked.
    indexed : bool, default True
        Errors name the session as ``name[offset + i]``; False: as ``name`` (one session given
        alone by the caller).
    offset : int, default 0
        Index, in the caller's sequence, of the first item of ``stats``.
    partition : int, optional
        The items are those of partition ``partition`` of a dask bag, from its item ``offset``:
        errors name ``name[item j of partition k]``.
    shape_of : str, default "the UBM"
        What ``shape`` is the shape of, for the errors ("the GMM machine"...).

    Returns
    -------
    StatsBatch
        ``n`` (S, C), ``sum_px`` (S, C, D), ``sum_pxx`` (S, C, D) or None, ``t`` (S,) and
        ``log_likelihood`` (S,): fresh C-contiguous float64 copies.

    Raises
    ------
    TypeError
        ``stats`` is a single GMMStats or not iterable, an item is not a GMMStats, or a field
        holds complex values.
    ValueError
        ``stats`` is empty; a session's shape is not ``shape``; a field holds NaN or infinity,
        a negative occupancy ``n`` or frame count ``t`` (naming the session and the field,
        ``X[3].n[1]``).
    """
    from .stats import GMMStats

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
