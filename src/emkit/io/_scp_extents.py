"""The byte ranges of one archive that a Kaldi script file's entries have read (see
:func:`emkit.io.kaldi.read_kaldi_scp`).

The ranges read are kept sorted by their start in chunks of at most ``2 * _CHUNK`` starts, so
that adding one moves at most that many: in one sorted list, an scp in another order than its
archive (sorted by key, an archive written in another order) moved half the list per entry,
O(n^2) in all (10^5 shuffled entries took 10 s, 4 x 10^5 took 100 s).
"""

from __future__ import annotations

import bisect

from .untrusted import FeatureError

__all__ = ["Extents", "MAX_SEGMENT_OVERLAP"]

#: How many times over the entries of a script file may take a matrix's values with ranges
#: (segments cut out of one matrix may overlap, as diarization's sliding windows do).
MAX_SEGMENT_OVERLAP = 16
_CHUNK = 1024  # starts per chunk (a chunk is split in two at twice this)


class Extents:
    """The byte ranges of one file that a script file's entries have read.

    A matrix is read whole by one entry at most; entries with ``[first:last]`` ranges (segments)
    may share it, taking at most :data:`MAX_SEGMENT_OVERLAP` times its values together; a matrix
    overlapping another's bytes is refused.  Otherwise a short script file could return the same
    megabyte thousands of times.
    """

    def __init__(self):
        self.chunks, self.firsts = [], []  # sorted, disjoint starts in chunks; each chunk's first
        self.ends, self.taken = {}, {}  # start -> end; start -> [size, values taken]

    def add(self, start: int, end: int, size: int, taken: int, whole: bool, where: str) -> None:
        """Record that an entry read the matrix of bytes ``start:end`` (``size`` values, of which
        it took ``taken``; ``whole``: read with no range).

        Parameters
        ----------
        start, end : int
            The matrix's bytes in the file.
        size : int
            Its number of values.
        taken : int
            How many of them the entry took.
        whole : bool
            The entry read it with no range.
        where : str
            The entry, for messages.

        Raises
        ------
        FeatureError
            A matrix read whole twice, or by ranges more than :data:`MAX_SEGMENT_OVERLAP` times
            over, or overlapping the bytes of another entry's matrix.
        """
        if start in self.taken:
            entry = self.taken[start]
            entry[1] += taken
            if whole or entry[1] > MAX_SEGMENT_OVERLAP * entry[0]:
                raise FeatureError(f"{where}: the entries reading the matrix at offset {start} "
                                   f"take {entry[1]} values of its {entry[0]} (a matrix is read "
                                   f"whole once, or by ranges at most {MAX_SEGMENT_OVERLAP} times "
                                   "over)")
            return
        c, i = self._position(start)
        before, after = self._neighbours(c, i)
        overlaps_before = before is not None and self.ends[before] > start
        if overlaps_before or (after is not None and after < end):
            raise FeatureError(f"{where}: the matrix at offset {start} overlaps the bytes of "
                               "another entry's matrix (refused)")
        self._insert(c, i, start)
        self.ends[start] = end
        self.taken[start] = [size, taken]

    def _position(self, start: int):
        """``(chunk, index)`` where ``start`` goes."""
        if not self.chunks:
            self.chunks.append([])
            self.firsts.append(start)
        c = max(bisect.bisect_right(self.firsts, start) - 1, 0)
        return c, bisect.bisect_left(self.chunks[c], start)

    def _neighbours(self, c: int, i: int):
        """The starts just before and just after position ``i`` of chunk ``c`` (None: none)."""
        chunk = self.chunks[c]
        before = chunk[i - 1] if i else (self.chunks[c - 1][-1] if c else None)
        after = chunk[i] if i < len(chunk) else \
            (self.chunks[c + 1][0] if c + 1 < len(self.chunks) else None)
        return before, after

    def _insert(self, c: int, i: int, start: int) -> None:
        chunk = self.chunks[c]
        chunk.insert(i, start)
        self.firsts[c] = chunk[0]
        if len(chunk) >= 2 * _CHUNK:
            self.chunks[c:c + 1] = [chunk[:_CHUNK], chunk[_CHUNK:]]
            self.firsts[c:c + 1] = [chunk[0], chunk[_CHUNK]]
