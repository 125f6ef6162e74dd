"""Out-of-core inputs: HDF5 matrices and directories of per-utterance files as lazy dask inputs."""

import h5py
import numpy as np
import pytest

from emkit import GMMMachine, KMeansMachine
from emkit.io.arrays import directory_frames, directory_statistics, hdf5_frames
from _parity import max_rel_diff


def _frames(seed=0, n=3000, d=3):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(size=(n // 2, d)), rng.normal(size=(n - n // 2, d)) + 3]).astype(np.float32)


def _gmm():
    return GMMMachine(2, update_variances=True, update_weights=True, max_fitting_steps=5,
                      convergence_threshold=None)


def test_gmm_trains_on_an_hdf5_file_without_loading_it(tmp_path, monkeypatch):
    X = _frames()
    path = tmp_path / "feats.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("frames", data=X, chunks=(500, 3))
    dx = hdf5_frames(path, "frames", chunk_rows=700)
    assert dx.chunks[0][0] == 700 and dx.dtype == np.float32
    reads = []
    import emkit.io.arrays as arrays

    original = arrays.HDF5RowReader.__getitem__
    monkeypatch.setattr(arrays.HDF5RowReader, "__getitem__", lambda self, k: reads.append(k) or original(self, k))
    got = _gmm().fit(dx)
    assert all((k[0].stop - k[0].start) <= 700 for k in reads)  # never more than a chunk at a time
    ref = _gmm().fit(X)
    for name in ("means", "variances", "weights"):
        assert max_rel_diff(getattr(got, name), getattr(ref, name)) < 1e-10


def test_hdf5_frames_checks_the_file_once_and_refuses_it_once_changed(tmp_path, monkeypatch):
    # every chunk read used to scan the whole file for damaged heaps again (a 4 GB file, mapped
    # into memory, got dask workers restarted for going over their memory limit)
    import emkit.io.h5_files as h5_files
    from emkit.io.untrusted import FeatureError

    X = _frames()
    path = tmp_path / "feats.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("frames", data=X, chunks=(500, 3))
    scans = []
    original = h5_files.check_global_heaps
    monkeypatch.setattr(h5_files, "check_global_heaps",
                        lambda f, p: scans.append(p) or original(f, p))
    dx = hdf5_frames(path, "frames", chunk_rows=700)
    np.testing.assert_array_equal(dx.compute(scheduler="sync"), X)
    assert len(scans) == 1 and dx.numblocks[0] == 5
    with h5py.File(path, "a") as f:  # the checks were made on other bytes
        f.create_dataset("more", data=np.arange(1000.0))
    with pytest.raises(FeatureError, match=r"feats\.h5 changed after it was opened"):
        dx.compute(scheduler="sync")
    again = hdf5_frames(path, "frames", chunk_rows=700)  # another array: nothing cached is reused
    assert again.name != dx.name and len(scans) == 2
    np.testing.assert_array_equal(again.compute(scheduler="sync"), X)


def test_directory_of_utterances_as_frames_and_as_statistics(tmp_path):
    X = _frames(1)
    sizes = [100, 250, 50, 400, 200] * 4
    edges = np.cumsum([0] + sizes)
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        np.save(tmp_path / f"utt{i:03d}.npy", X[a:b])
    frames = directory_frames(tmp_path, files_per_chunk=3)
    np.testing.assert_array_equal(frames.compute(), X[: edges[-1]])
    ubm = _gmm().fit(frames)
    bag, paths = directory_statistics(ubm, tmp_path, npartitions=4)
    stats = bag.compute()
    assert len(stats) == len(paths) == len(sizes)
    expected = ubm.transform([X[a:b] for a, b in zip(edges[:-1], edges[1:])])
    for s, e in zip(stats, expected):
        assert s.t == e.t and max_rel_diff(s.sum_px, e.sum_px) < 1e-12


def test_bad_directory_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file matches"):
        directory_frames(tmp_path)
    np.save(tmp_path / "a.npy", np.zeros((3, 2)))
    np.save(tmp_path / "b.npy", np.zeros((3, 4)))
    with pytest.raises(ValueError, match="same width"):
        directory_frames(tmp_path)
    with pytest.raises(KeyError, match="no dataset"):
        path = tmp_path / "x.h5"
        with h5py.File(path, "w") as f:
            f["other"] = np.zeros((2, 2))
        hdf5_frames(path, "frames")


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-3, ValueError), (True, TypeError),
                                        (2.0, TypeError), ("8", TypeError)])
def test_chunking_arguments_are_checked(tmp_path, bad, error):
    # chunk_rows=0 was a ZeroDivisionError, True one-row chunks; files_per_chunk=0 a range()
    # error; npartitions=0 was taken as 64 and a negative one as 1, without a word
    path = tmp_path / "feats.h5"
    with h5py.File(path, "w") as f:
        f["frames"] = np.zeros((4, 2))
    np.save(tmp_path / "a.npy", np.zeros((3, 2)))
    for call, name in [(lambda: hdf5_frames(path, chunk_rows=bad), "chunk_rows"),
                       (lambda: directory_frames(tmp_path, files_per_chunk=bad), "files_per_chunk"),
                       (lambda: directory_statistics(None, tmp_path, npartitions=bad), "npartitions")]:
        with pytest.raises(error, match=rf"^{name} must be an integer >= 1; got .*{bad!r}$"):
            call()


def test_a_non_finite_chunk_names_the_file_the_dataset_and_the_rows(tmp_path):
    import dask

    from emkit.io.untrusted import FeatureError

    X = _frames(n=100, d=2).astype(np.float64)
    X[57, 1] = np.inf
    path = tmp_path / "feats.h5"
    with h5py.File(path, "w") as f:
        f["frames"] = X
    with dask.config.set(scheduler="synchronous"):
        dx = hdf5_frames(path, chunk_rows=10)
        np.testing.assert_array_equal(dx[:50].compute(), X[:50])  # the other chunks are read
        for fit in (_gmm().fit, KMeansMachine(2).fit):
            with pytest.raises(FeatureError, match=r"^'[^']*feats\.h5': dataset 'frames', rows 50 to 59 "
                                                   r"contains infinity \(first at row 57, column 1\)"):
                fit(dx)


def test_a_non_finite_or_changed_npy_file_is_named(tmp_path):
    import dask

    from emkit.io.untrusted import FeatureError

    X = _frames(n=100, d=2)
    for i in range(4):
        np.save(tmp_path / f"u{i}.npy", X[25 * i:25 * i + 25])
    with dask.config.set(scheduler="synchronous"):
        frames = directory_frames(tmp_path, files_per_chunk=2)
        bad = X[50:75].copy()
        bad[7, 1] = np.nan
        np.save(tmp_path / "u2.npy", bad)
        with pytest.raises(FeatureError, match=r"u2\.npy' contains NaN \(first at row 7, column 1\)"):
            _gmm().fit(frames)
        ubm = _gmm().fit(X)
        with pytest.raises(FeatureError, match=r"u2\.npy' contains NaN \(first at row 7, column 1\)"):
            directory_statistics(ubm, tmp_path)[0].compute()
        np.save(tmp_path / "u2.npy", X[50:70])  # fewer rows than the graph was built for
        with pytest.raises(FeatureError, match=r"u2\.npy' changed after its header was read: "
                                               r"expected shape \(25, 2\), got \(20, 2\)"):
            frames.compute()
        np.save(tmp_path / "u2.npy", np.zeros((25, 3)))  # the UBM's width is checked per file
        with pytest.raises(FeatureError, match=r"u2\.npy' must hold a 2-D \(n_frames, 2\) array \(the "
                                               r"UBM's 2 features\); got shape \(25, 3\)"):
            directory_statistics(ubm, tmp_path)[0].compute()


@pytest.mark.parametrize("files_per_chunk", [1, 2, 3])
def test_mixed_float32_and_float64_files_are_read_as_float64(tmp_path, files_per_chunk):
    # a chunk of float32 files stayed float32 although the array said float64, and dask stacked
    # the chunks into the first one's dtype: the float64 file lost its precision
    import dask

    third = np.full((3, 2), 1 / 3)
    np.save(tmp_path / "a.npy", third.astype(np.float32))
    np.save(tmp_path / "b.npy", third)
    np.save(tmp_path / "c.npy", third.astype(np.float32))
    frames = directory_frames(tmp_path, files_per_chunk=files_per_chunk)
    with dask.config.set(scheduler="synchronous"):
        got = frames.compute()
        blocks = [b.compute() for b in frames.blocks]
    assert frames.dtype == got.dtype == np.float64 and all(b.dtype == np.float64 for b in blocks)
    np.testing.assert_array_equal(got[3:6], third)  # the float64 file keeps its precision
    np.testing.assert_array_equal(got[:3], np.float64(np.float32(1 / 3)))


@pytest.mark.parametrize("values", [[1e100, -1e100], [0.0, -1.0000001e100], [1e101], [3.0, -2.5],
                                    np.empty((0, 3)), [[1.0, 2e100], [0.0, 0.0]]])
def test_within_agrees_with_the_absolute_values_bound(values):
    """``within`` (the readers' magnitude bound, without an ``abs`` temporary) gives the verdict of
    ``all(|values| <= bound)``."""
    from emkit.io.h5_values import within

    values = np.asarray(values, dtype=np.float64)
    assert within(values, 1e100) == bool(np.all(np.abs(values) <= 1e100))
