"""A CUDA device simulated by PyTorch on the CPU, for the device paths' tests without a GPU."""

import pytest

from emkit._backend import _device

TORCH_GPU = {"version": "2.13.0", "cuda": True, "n_devices": 1, "build": "CUDA build"}


@pytest.fixture
def simulated(monkeypatch):
    """``device="cuda"`` resolves to PyTorch CPU tensors (skipped where torch is not installed);
    returns the device."""
    torch = pytest.importorskip("torch")
    from array_api_compat import torch as xp_torch

    fake = _device.Device("torch", xp_torch, torch.device("cpu"), "cuda:0 (simulated on CPU)")
    monkeypatch.setattr(_device, "detect_libraries", lambda: {"torch": TORCH_GPU, "cupy": None})
    monkeypatch.setattr(_device, "_make_device", lambda library, index: fake)
    return fake
