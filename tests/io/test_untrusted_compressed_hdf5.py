"""Compressed HDF5 datasets are checked chunk by chunk before HDF5 decompresses them, and the
dataset of ``hdf5_frames`` is reached through hard links only (emkit.io.h5_chunks)."""

from __future__ import annotations

import resource
import zlib

import h5py
import numpy as np
import pytest

from emkit import GMMMachine
from emkit.io import InvalidFileError
from emkit.io.features import read_features
from emkit.io.untrusted import FeatureError
from emkit.io.arrays import hdf5_frames

#: A chunk of a (4, 3) float64 dataset (96 bytes) holding 256 MB of zeros once inflated.
BOMB = zlib.compress(bytes(256 << 20), 9)
#: 60 MB of zeros in under 64 KiB: what an older HDF5 can store in that chunk
SMALL_BOMB = zlib.compress(bytes(60 << 20), 9)


def _gzip_dataset(group, name, data, bomb=False, **filters):
    if name in group:
        del group[name]
    ds = group.create_dataset(name, data=data, chunks=data.shape, compression="gzip", **filters)
    if bomb:
        try:
            ds.id.write_direct_chunk((0,) * data.ndim, BOMB)
        except OSError:  # HDF5 1.12 (h5py 3.7): "chunk size can't be encoded" in this chunk's index
            ds.id.write_direct_chunk((0,) * data.ndim, SMALL_BOMB)
    return ds


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture
def model_file(tmp_path):
    ubm = GMMMachine(4)
    ubm.means, ubm.variances, ubm.weights = np.zeros((4, 3)), np.ones((4, 3)), np.full(4, 0.25)
    path = tmp_path / "ubm.h5"
    ubm.save(path)
    return path


def test_a_model_whose_chunk_inflates_beyond_its_size_is_refused_without_inflating_it(model_file):
    # HDF5's gzip filter inflated the whole stream (256 MB for a 96-byte dataset) and then loaded
    with h5py.File(model_file, "r+") as f:
        _gzip_dataset(f["gaussians"], "means", np.zeros((4, 3)), bomb=True)
    before = _peak_rss_mb()
    with pytest.raises(InvalidFileError, match=r"/gaussians/means.*decompression bomb") as info:
        GMMMachine.from_hdf5(model_file)
    assert str(model_file) in str(info.value)
    assert _peak_rss_mb() - before < 128


def test_compressed_models_and_features_that_are_honest_still_load(model_file, tmp_path):
    means = np.arange(12.0).reshape(4, 3)
    with h5py.File(model_file, "r+") as f:
        _gzip_dataset(f["gaussians"], "means", means, shuffle=True, fletcher32=True)
    np.testing.assert_array_equal(GMMMachine.from_hdf5(model_file).means, means)
    frames = np.random.default_rng(0).normal(size=(500, 3))
    path = tmp_path / "feats.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("utt", data=frames, chunks=(100, 3), compression="gzip", shuffle=True, fletcher32=True)
        f.create_dataset("flat", data=np.zeros((500, 3)), chunks=(100, 3), compression="lzf")
    read = read_features(path)
    np.testing.assert_array_equal(read["utt"], frames)
    np.testing.assert_array_equal(hdf5_frames(path, "utt").compute(), frames)
    np.testing.assert_array_equal(read["flat"], 0.0)


@pytest.mark.parametrize("reader", [read_features, lambda p: hdf5_frames(p, "utt")])
def test_a_feature_file_whose_chunk_inflates_beyond_its_size_is_refused(tmp_path, reader):
    path = tmp_path / "feats.h5"
    with h5py.File(path, "w") as f:
        _gzip_dataset(f, "utt", np.zeros((4, 3)), bomb=True)
    with pytest.raises(FeatureError, match=r"'utt'.* decompression bomb"):
        reader(path)


def test_filters_emkit_cannot_bound_are_refused(tmp_path):
    path = tmp_path / "feats.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("utt", data=np.ones((50, 3)), chunks=(10, 3), scaleoffset=4)
    with pytest.raises(FeatureError, match="compressed with HDF5 filter 6, which emkit does not read"):
        read_features(path)


@pytest.mark.parametrize("link", ["external", "soft"])
def test_hdf5_frames_follows_no_link(tmp_path, link):
    outside = tmp_path / "outside.h5"
    with h5py.File(outside, "w") as f:
        f["data"] = np.full((100, 3), 7.0)
    path = tmp_path / "feats.h5"
    with h5py.File(path, "w") as f:
        f["padding"] = np.zeros((1000, 3))  # bigger than what the link points at
        f["real"] = np.zeros((10, 3))
        f["frames"] = (h5py.ExternalLink(str(outside), "/data") if link == "external"
                       else h5py.SoftLink("/real"))
    with pytest.raises(FeatureError, match="'frames' is reached through a soft or external link"):
        hdf5_frames(path, "frames")
    with pytest.raises(KeyError, match=r"has no dataset 'nothing'\"?$"):
        hdf5_frames(path, "nothing")


def _datasets_sharing_one_extent(path, n, shape=(64, 16)):
    """``n`` contiguous datasets whose layout addresses are patched to the first one's bytes."""
    import struct

    with h5py.File(path, "w") as f:
        f["a0"] = np.ones(shape)
        offset = f["a0"].id.get_offset()
        for i in range(1, n):
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_layout(h5py.h5d.CONTIGUOUS)
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_LATE)
            dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
            h5py.h5d.create(f.id, f"a{i}".encode(), h5py.h5t.IEEE_F64LE, h5py.h5s.create_simple(shape), dcpl=dcpl)
    nbytes = 8 * shape[0] * shape[1]
    data = path.read_bytes()
    unallocated = b"\x03\x01" + b"\xff" * 8 + struct.pack("<Q", nbytes)
    assert data.count(unallocated) == n - 1
    path.write_bytes(data.replace(unallocated, b"\x03\x01" + struct.pack("<QQ", offset, nbytes)))


def test_feature_datasets_sharing_their_bytes_are_refused(tmp_path):
    # 3000 datasets on one 1 MB extent returned 3 GB from a 2 MB file
    path = tmp_path / "alias.h5"
    _datasets_sharing_one_extent(path, 20)
    with h5py.File(path, "r") as f:
        assert f["a7"][0, 0] == 1.0  # (they do read the first one's bytes)
    with pytest.raises(FeatureError, match=r"store \d+ bytes, more than the file's \d+ \(datasets sharing bytes"):
        read_features(path)
    with h5py.File(path, "w") as f:  # as many datasets with bytes of their own are read
        for i in range(20):
            f[f"a{i}"] = np.full((64, 16), float(i))
    assert sorted(v[0, 0] for v in read_features(path).values()) == list(range(20))


def test_legacy_gmm_groups_linking_the_same_datasets_are_refused(tmp_path):
    path = tmp_path / "legacy.h5"
    C, D = 50, 1024
    with h5py.File(path, "w") as f:
        f["m_n_gaussians"] = np.int64(C)
        f["m_weights"] = np.full(C, 1.0 / C)
        f["mean"], f["var"], f["thr"] = np.zeros(D), np.ones(D), np.zeros(D)
        for i in range(C):
            g = f.create_group(f"m_gaussians{i}")
            g["m_mean"], g["m_variance"], g["m_variance_thresholds"] = f["mean"], f["var"], f["thr"]
    with pytest.raises(InvalidFileError, match=r"m_n_gaussians.*declares 50 Gaussians of 1024 features: more "
                                               "values than the file holds"):
        GMMMachine.from_hdf5(path)
