"""``stream_blocks``: double-buffered staging of host row blocks, the buffers (pinned on CUDA) and
the copy stream kept between calls.  On PyTorch CPU tensors the same code runs with plain
buffers and synchronous copies (the CUDA-only parts are guarded), so it is tested here; the
``gpu`` test runs it on a CUDA device."""

from __future__ import annotations

import numpy as np
import pytest

from emkit._backend import _device

torch = pytest.importorskip("torch")


@pytest.fixture
def host_device():
    from array_api_compat import torch as xp_torch

    return _device.Device("torch", xp_torch, torch.device("cpu"), "cuda:0 (simulated on CPU)")


@pytest.fixture
def allocs(monkeypatch):
    """The shapes of the staging buffers allocated (the pool emptied first)."""
    import collections

    monkeypatch.setattr(_device, "_POOL", collections.OrderedDict())
    seen = []
    real = _device._StagingOps.alloc

    def alloc(self, shape, dtype):
        seen.append(shape)
        return real(self, shape, dtype)

    monkeypatch.setattr(_device._StagingOps, "alloc", alloc)
    return seen


def host_rows(n=23, d=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


def test_blocks_are_the_rows_cast_and_own_their_memory(host_device, allocs):
    X = host_rows()
    blocks = list(_device.stream_blocks(X, host_device, 5, np.float32))  # all kept at once
    assert [b.shape[0] for b in blocks] == [5, 5, 5, 5, 3]
    assert all(b.dtype == torch.float32 for b in blocks)
    np.testing.assert_array_equal(np.concatenate([b.numpy() for b in blocks]),
                                  X.astype(np.float32))
    assert allocs == [(5, 3), (5, 3)]  # two staging buffers for five blocks


def test_staging_buffers_are_reused_between_calls(host_device, allocs):
    X = host_rows()
    before = dict(_device.STREAM_STATS)
    for _ in range(3):  # e.g. three EM iterations streaming the same frames
        got = np.concatenate([b.numpy() for b in _device.stream_blocks(X, host_device, 8)])
        np.testing.assert_array_equal(got, X)
    assert allocs == [(8, 3), (8, 3)]
    assert _device.STREAM_STATS["blocks"] - before.get("blocks", 0) == 3 * 3
    assert _device.STREAM_STATS["bytes"] - before.get("bytes", 0) == 3 * X.nbytes


def test_the_pool_keeps_at_most_pool_bytes_and_releases_on_request(host_device, allocs,
                                                                   monkeypatch):
    import emkit

    X = host_rows(n=40, d=4)
    set_bytes = 2 * 8 * 4 * 8  # two (8, 4) float64 buffers
    monkeypatch.setattr(_device, "POOL_BYTES", 2 * set_bytes)
    for rows in (8, 8, 5, 10):  # three shapes: (8, 4) is used twice, (10, 4) last
        list(_device.stream_blocks(X, host_device, rows))
    # (8, 4) and (5, 4) fit; (10, 4) came back last and pushed out the least recently used set
    assert list(_device._POOL) == [(host_device.library, host_device.name, (5, 4), "<f8"),
                                   (host_device.library, host_device.name, (10, 4), "<f8")]
    assert allocs == [(8, 4), (8, 4), (5, 4), (5, 4), (10, 4), (10, 4)]
    # a set larger than the whole budget is still kept (the one just returned never goes)
    monkeypatch.setattr(_device, "POOL_BYTES", 1)
    list(_device.stream_blocks(X, host_device, 8))
    assert [key[2] for key in _device._POOL] == [(8, 4)]
    assert emkit.release_staging_buffers() == set_bytes
    assert not _device._POOL
    list(_device.stream_blocks(X, host_device, 8))  # allocated afresh after the release
    assert allocs[-2:] == [(8, 4), (8, 4)]


def test_concurrent_streams_get_their_own_buffers(host_device, allocs):
    A, B = host_rows(seed=1), host_rows(seed=2)
    pairs = list(zip(_device.stream_blocks(A, host_device, 4),
                     _device.stream_blocks(B, host_device, 4)))
    np.testing.assert_array_equal(np.concatenate([a.numpy() for a, _ in pairs]), A)
    np.testing.assert_array_equal(np.concatenate([b.numpy() for _, b in pairs]), B)
    assert len(allocs) == 4  # two sets of two buffers, both back in the pool afterwards
    list(_device.stream_blocks(A, host_device, 4))
    assert len(allocs) == 4


def test_an_abandoned_stream_returns_its_buffers(host_device, allocs):
    X = host_rows()
    stream = _device.stream_blocks(X, host_device, 4)
    next(stream)
    stream.close()
    assert len(list(_device.stream_blocks(X, host_device, 4))) == 6
    assert len(allocs) == 2


def test_small_inputs_stage_only_their_rows(host_device, allocs):
    assert list(_device.stream_blocks(np.zeros((0, 3)), host_device, 4)) == []
    (block,) = _device.stream_blocks(host_rows(n=2), host_device, 1000)
    assert block.shape == (2, 3) and allocs == [(2, 3), (2, 3)]


def test_cuda_parts_are_chosen_by_the_device_type(host_device):
    from array_api_compat import torch as xp_torch

    cuda = _device.Device("torch", xp_torch, torch.device("cuda", 0), "cuda:0")
    assert type(_device._StagingOps.of(cuda)) is _device._TorchCudaOps
    assert type(_device._StagingOps.of(host_device)) is _device._StagingOps
    cupy = _device.Device("cupy", None, None, "cuda:0")
    assert type(_device._StagingOps.of(cupy)) is _device._CupyOps


@pytest.mark.gpu
def test_stream_blocks_on_a_gpu():
    try:
        dev = _device.resolve_device("cuda")
    except _device.DeviceUnavailableError:
        pytest.skip("no CUDA device (PyTorch or CuPy with CUDA) on this machine")
    X = host_rows(n=1000, d=7)
    for _ in range(2):  # the second call reuses the pinned buffers and the stream
        blocks = list(_device.stream_blocks(X, dev, 64))
        got = np.concatenate([_device.to_numpy(b) for b in blocks])
        np.testing.assert_array_equal(got, X)
