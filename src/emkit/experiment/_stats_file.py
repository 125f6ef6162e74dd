"""The statistics of a resumable training run kept on disk, so that resuming it does not run the
UBM's E-step over every frame again (the most expensive pass of ISV, JFA and i-vector training).

A statistics file (HDF5, class ``UtteranceStatistics``) holds one :class:`~emkit.GMMStats` per
utterance, stacked: ``t`` (U,), ``log_likelihood`` (U,), ``n`` (U, C), ``sum_px`` and ``sum_pxx``
(U, C, D), with two digests as attributes: ``key``, of what the statistics are computed from (the
UBM, the utterance ids and every byte of their features, the settings that change the numbers and
the emkit version), and ``stats_fingerprint``, of the statistics themselves.  A file of another key
is stale: its statistics are computed again and replace it.  A file of this key is read as any
untrusted model file (:mod:`emkit.io.h5`: shapes checked before the data are read, finite values)
a block of utterances at a time (:mod:`emkit.io.h5_rows`), and its statistics must match their
digest, so a file damaged on disk is refused, not trained on.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np

from ..stats import GMMStats

logger = logging.getLogger("emkit")

_CLASS = "UtteranceStatistics"
_VERSION = 1
#: the settings of emkit's configuration that change the statistics' numbers
_SETTINGS = ("gselect_top_k", "gselect_min_posterior", "block_rows", "device", "array_library")
#: bytes of statistics written at a time
_BLOCK_BYTES = 1 << 26


def statistics_key(ubm, utterances, ids) -> str:
    """Digest of what the statistics of ``utterances`` (a list of (n_frames, D) arrays, those of
    ``ids`` in order) under ``ubm`` are computed from, with the settings in force."""
    from .. import __version__
    from .._config import get_config
    from .._fingerprint import FORMAT, data_fingerprint, model_fingerprint

    config = get_config()
    settings = json.dumps({name: config[name] for name in _SETTINGS}, sort_keys=True, default=str)
    return data_fingerprint([f"emkit {__version__}|fingerprints {FORMAT}|{settings}",
                             model_fingerprint(ubm), list(ids), list(utterances)])


def statistics_bytes(n_utterances: int, n_gaussians: int, n_features: int) -> int:
    """Bytes of the arrays of a statistics file of U utterances, C Gaussians and D features:
    ``U (16 C D + 8 C + 16)`` (float64 ``sum_px`` and ``sum_pxx``, ``n``, ``t`` and
    ``log_likelihood``; HDF5 adds a few kB)."""
    return n_utterances * (16 * n_gaussians * n_features + 8 * n_gaussians + 16)


class KeptStatistics:
    """A statistics file for the statistics of some utterances under a UBM: :meth:`load` them
    when it holds them, :meth:`save` them once computed.

    ``stale`` tells, after :meth:`load`, that the file holds the statistics of something else
    (other features, UBM or settings).  The file's key digests every byte of the features, so
    making this object reads them all once.

    Parameters
    ----------
    path : str or path-like
        The statistics file (it need not exist).
    ubm : GMMMachine
        The fitted UBM, C Gaussians of D features.
    utterances : list of ndarray of shape (n_frames, D)
        The utterances' frames, those of ``ids`` in order.
    ids : list of str
        The utterance ids, U.
    """

    def __init__(self, path, ubm, utterances, ids):
        self.path = os.fspath(path)
        self.key = statistics_key(ubm, utterances, ids)
        self.n_utterances = len(ids)
        self.shape = tuple(int(k) for k in np.shape(ubm.means))
        self.stale = False

    @property
    def size(self) -> int:
        """Bytes of the statistics' arrays in the file (:func:`statistics_bytes`)."""
        return statistics_bytes(self.n_utterances, *self.shape)

    def load(self) -> list | None:
        """The statistics kept in the file, when it holds those of these utterances.

        Returns
        -------
        list of GMMStats or None
            One per utterance, in order; None when there is no file or a stale one (then
            ``stale`` is True).

        Raises
        ------
        emkit.io.InvalidFileError
            A damaged or forged file of this key, named.
        """
        stats = read_statistics(self.path, self.key, self.n_utterances, self.shape)
        self.stale = stats is None and os.path.exists(self.path)
        if stats is not None:
            logger.info("statistics of %d utterance(s) read from %s (computed by an earlier run)",
                        len(stats), self.path)
        return stats

    def save(self, stats: list) -> None:
        """Keep the statistics in the file (atomically, replacing a stale file).

        Parameters
        ----------
        stats : list of GMMStats
            One per utterance, in order, all of the UBM's shape (C, D).
        """
        write_statistics(self.path, self.key, stats)


def rows_per_block(n_gaussians: int, n_features: int) -> int:
    """Utterances of a block of statistics written or read at a time: those whose ``n``,
    ``sum_px`` and ``sum_pxx`` take at most ``_BLOCK_BYTES``, at least one."""
    return max(1, _BLOCK_BYTES // (16 * n_gaussians * n_features + 8 * n_gaussians))


def write_statistics(path, key: str, stats: list) -> None:
    """Write ``stats`` (a non-empty list of GMMStats of one shape) and their ``key`` to ``path``,
    atomically (a run killed while it writes leaves the previous file or none)."""
    from .._fingerprint import data_fingerprint
    from ..io._h5_new_file import new_h5_writing
    from ..io.h5 import write_stamp

    U, (C, D) = len(stats), stats[0].shape
    rows = rows_per_block(C, D)
    with new_h5_writing(path) as writing:
        f = writing.file
        write_stamp(f, _CLASS, _VERSION)
        f.attrs["key"] = key
        f.attrs["stats_fingerprint"] = data_fingerprint(stats)
        out = {"t": f.create_dataset("t", (U,), "<i8"),
               "log_likelihood": f.create_dataset("log_likelihood", (U,), "<f8"),
               "n": f.create_dataset("n", (U, C), "<f8"),
               "sum_px": f.create_dataset("sum_px", (U, C, D), "<f8"),
               "sum_pxx": f.create_dataset("sum_pxx", (U, C, D), "<f8")}
        for start in range(0, U, rows):
            if writing.failed:  # (raised when the file is closed: no more blocks stacked)
                break
            batch = GMMStats.stack(stats[start : start + rows], second_order=True)
            for name, dataset in out.items():
                dataset[start : start + len(batch)] = getattr(batch, name)


def read_statistics(path, key: str, n_utterances: int, shape: tuple) -> list | None:
    """The statistics in ``path`` when it exists and holds those of ``key`` (``n_utterances``
    GMMStats of ``shape`` (C, D)), else None.

    Every dataset's shape, type and storage are checked before any value is read; then the
    values are read and checked in the blocks of rows they are written in
    (:func:`rows_per_block`), each GMMStats a view of its rows.  So while they are read emkit
    holds the statistics read so far plus less than one block (``_BLOCK_BYTES``, 64 MiB; one
    utterance's rows when they are more): the checks' boolean masks of a block (an eighth of
    it), or a block as stored when the file holds other than float64 (converted, the copy is
    the statistics').
    """
    if not os.path.exists(path):
        return None
    from .._fingerprint import data_fingerprint
    from ..io.errors import InvalidFileError
    from ..io.h5 import open_for_reading, read_attr, read_stamp
    from ..io.h5_rows import RowReader

    U, (C, D) = n_utterances, shape
    with open_for_reading(path, "statistics file") as f:
        read_stamp(f, _CLASS, _VERSION)
        if read_attr(f, "key", "str") != key:
            logger.info("%s holds the statistics of other features, UBM or settings: computing "
                        "them again", os.fspath(path))
            return None
        digest = read_attr(f, "stats_fingerprint", "str")
        fields = [RowReader(f, "t", "int", shape=(U,), nonnegative=True),
                  RowReader(f, "log_likelihood", shape=(U,)),
                  RowReader(f, "n", shape=(U, C), nonnegative=True),
                  RowReader(f, "sum_px", shape=(U, C, D)),
                  RowReader(f, "sum_pxx", shape=(U, C, D))]
        stats, rows = [], rows_per_block(C, D)
        for start in range(0, U, rows):
            stats.extend(_gmm_stats(C, D, *(field.read(start, start + rows) for field in fields)))
    if data_fingerprint(stats) != digest:
        raise InvalidFileError(f"{os.fspath(path)}: the statistics do not match the digest saved "
                               "with them (the file was damaged or edited); delete it to compute "
                               "them again")
    return stats


def _gmm_stats(C, D, t, log_likelihood, n, sum_px, sum_pxx) -> list:
    """One GMMStats per row of the arrays (their arrays are views of the rows)."""
    out = []
    for i in range(len(t)):
        one = GMMStats(C, D)
        one.init_fields(float(log_likelihood[i]), int(t[i]), n[i], sum_px[i], sum_pxx[i])
        out.append(one)
    return out
