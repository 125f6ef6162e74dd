"""The byte ranges read_kaldi_scp has read from an archive, kept in sorted chunks.

They were kept in one sorted list, each new range inserted in place: a script file in another
order than its archive (sorted by key; an archive written in another order) moved half the list
per entry, O(n^2): 10^5 shuffled entries took 10 s, 4 x 10^5 took 100 s.  Now an insert moves
at most a chunk, and every outcome (accepted, refused and the message) is that of the one
sorted list.
"""

import bisect
import random

import numpy as np
import pytest

from emkit.audio._write import write_kaldi_ark
from emkit.io.untrusted import FeatureError
from emkit.io._scp_extents import _CHUNK, MAX_SEGMENT_OVERLAP, Extents
from emkit.io.kaldi import read_kaldi_ark, read_kaldi_scp


class OneSortedList:
    """The rules as they were checked: every range read in one sorted list."""

    def __init__(self):
        self.starts, self.ends, self.taken = [], [], {}

    def add(self, start, end, size, taken, whole, where):
        if start in self.taken:
            entry = self.taken[start]
            entry[1] += taken
            if whole or entry[1] > MAX_SEGMENT_OVERLAP * entry[0]:
                raise FeatureError(f"{where}: the entries reading the matrix at offset {start} take "
                                   f"{entry[1]} values of its {entry[0]} (a matrix is read whole "
                                   f"once, or by ranges at most {MAX_SEGMENT_OVERLAP} times over)")
            return
        i = bisect.bisect_left(self.starts, start)
        if (i and self.ends[i - 1] > start) or (i < len(self.starts) and self.starts[i] < end):
            raise FeatureError(f"{where}: the matrix at offset {start} overlaps the bytes of another "
                               "entry's matrix (refused)")
        self.starts.insert(i, start)
        self.ends.insert(i, end)
        self.taken[start] = [size, taken]


def outcome(extents, *args):
    try:
        extents.add(*args)
    except FeatureError as exc:
        return str(exc)
    return "ok"


def test_outcomes_equal_those_of_one_sorted_list():
    rng = random.Random(5)
    kinds = set()
    for case in range(40):
        extents, reference = Extents(), OneSortedList()
        for k in range(rng.choice([10, 300, 3000])):  # (3000: several chunks)
            start = rng.randrange(0, 200_000) if rng.random() < 0.9 else \
                rng.choice(reference.starts or [0])
            args = (start, start + rng.randint(1, 40), 10, rng.randint(1, 60),
                    rng.random() < 0.3, f"case {case} entry {k}")
            expected = outcome(reference, *args)
            assert outcome(extents, *args) == expected, args
            kinds.add(expected.split(": ")[-1][:20])
    assert len(kinds) == 3, kinds  # accepted, overlapping, taken too often


def test_an_insert_moves_at_most_a_chunk_of_100000_shuffled_ranges():
    starts = list(range(0, 100 * 100_000, 100))
    random.Random(0).shuffle(starts)
    extents = Extents()
    for start in starts:
        extents.add(start, start + 90, 20, 20, True, "entry")
    assert max(map(len, extents.chunks)) < 2 * _CHUNK
    assert [s for chunk in extents.chunks for s in chunk] == sorted(starts)
    assert extents.firsts == [chunk[0] for chunk in extents.chunks]
    with pytest.raises(FeatureError, match="at offset 1050 overlaps"):
        extents.add(1050, 1060, 20, 20, True, "entry")


def test_a_shuffled_script_file_reads_what_its_archive_holds(tmp_path):
    vectors = np.random.default_rng(1).normal(size=(3000, 1, 5)).astype(np.float32)
    ark, scp = write_kaldi_ark(((f"utt{k:05d}", vectors[k]) for k in range(3000)),
                               tmp_path / "iv.ark")
    lines = scp.read_text().splitlines(keepends=True)
    random.Random(2).shuffle(lines)
    again = "again" + lines[7][3:]  # (the last entry reads a matrix twice, under another key)
    scp.write_text("".join(lines) + again)
    with pytest.raises(FeatureError, match="line 3001 .*take 10 values of its 5 .*read whole"):
        read_kaldi_scp(scp)
    scp.write_text("".join(lines))
    read = read_kaldi_scp(scp)
    whole = read_kaldi_ark(ark)
    assert sorted(read) == list(whole)
    for key, matrix in whole.items():
        np.testing.assert_array_equal(read[key], matrix)
