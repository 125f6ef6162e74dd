"""The statistics file of a resumable training run (emkit.experiment._stats_file): read back in
blocks of rows, each checked, with the shapes of every dataset checked before any value."""

import tracemalloc

import h5py
import numpy as np
import pytest

from emkit import GMMStats
from emkit.experiment import _stats_file
from emkit.io import InvalidFileError


def _statistics(n_utterances, C, D, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_utterances):
        one = GMMStats(C, D)
        one.init_fields(float(rng.normal()), int(rng.integers(1, 500)), rng.random(C),
                        rng.normal(size=(C, D)), rng.random((C, D)))
        out.append(one)
    return out


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x.t, x.log_likelihood) == (y.t, y.log_likelihood)
        for name in ("n", "sum_px", "sum_pxx"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name))


def test_statistics_read_in_blocks_are_those_written(tmp_path, monkeypatch):
    monkeypatch.setattr(_stats_file, "_BLOCK_BYTES", 3 * (16 * 4 * 3 + 8 * 4))  # 3 rows a block
    assert _stats_file.rows_per_block(4, 3) == 3
    stats, path = _statistics(11, 4, 3), tmp_path / "s.h5"  # (11: the last block is shorter)
    _stats_file.write_statistics(path, "key", stats)
    _same(_stats_file.read_statistics(path, "key", 11, (4, 3)), stats)
    assert _stats_file.read_statistics(path, "other key", 11, (4, 3)) is None


def test_loading_holds_the_statistics_plus_at_most_one_block(tmp_path, monkeypatch):
    # the whole of sum_px and of sum_pxx were read at once, and checked with a boolean mask of
    # each (an eighth of the statistics; 15 MB at 3000 utterances, C=256, D=20)
    U, C, D, block = 200, 128, 40, 1 << 18
    monkeypatch.setattr(_stats_file, "_BLOCK_BYTES", block)
    path = tmp_path / "s.h5"
    _stats_file.write_statistics(path, "key", _statistics(U, C, D))
    tracemalloc.start()
    try:
        stats = _stats_file.read_statistics(path, "key", U, (C, D))
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(stats) == U
    assert held >= _stats_file.statistics_bytes(U, C, D)
    assert peak <= held + block, (held, peak)


def _rewritten(path, name, values, **options):
    with h5py.File(path, "r+") as f:
        del f[name]
        f.create_dataset(name, data=values, **options)


def test_every_shape_is_checked_before_any_value_is_read(tmp_path):
    U, C, D = 6, 4, 3
    path = tmp_path / "s.h5"
    _stats_file.write_statistics(path, "key", _statistics(U, C, D))
    with h5py.File(path, "r+") as f:
        sum_px = f["sum_px"][()]
    sum_px[2, 1, 0] = np.nan
    _rewritten(path, "sum_px", sum_px)
    _rewritten(path, "sum_pxx", np.zeros((U, C, D + 1)))
    with pytest.raises(InvalidFileError, match=r"'/sum_pxx' must have shape \(6, 4, 3\); found "
                                               r"\(6, 4, 4\)") as info:
        _stats_file.read_statistics(path, "key", U, (C, D))
    assert str(path) in str(info.value)
    _rewritten(path, "sum_pxx", np.zeros((U, C, D)))
    with pytest.raises(InvalidFileError, match="'/sum_px' holds NaN or infinite values"):
        _stats_file.read_statistics(path, "key", U, (C, D))


def test_a_chunked_dataset_is_refused_naming_it(tmp_path):
    # (the rows of a block would decompress whole chunks, which may span every row)
    U, C, D = 6, 4, 3
    stats, path = _statistics(U, C, D), tmp_path / "s.h5"
    _stats_file.write_statistics(path, "key", stats)
    _rewritten(path, "sum_pxx", np.stack([s.sum_pxx for s in stats]), chunks=(U, C, 1),
               compression="gzip")
    with pytest.raises(InvalidFileError, match=f"{path}: dataset '/sum_pxx' is stored in chunks "
                                               r"\(emkit writes it contiguous; refused\)"):
        _stats_file.read_statistics(path, "key", U, (C, D))
