"""Devices: the array library that runs the namespace-generic kernels; moving blocks there and back.

``emkit.set_config(device=...)`` names a device; :func:`resolve_device` turns it into a
:class:`Device` (the array namespace through ``array-api-compat``, the library's device object)
or raises :class:`DeviceUnavailableError` naming what was found.  :func:`to_device` and
:func:`to_numpy` move arrays; :func:`stream_blocks` copies host row blocks to the device through
pinned buffers on a side stream, so that the copy of block ``i + 1`` overlaps the compute on
block ``i`` (PyTorch and CuPy; a plain copy elsewhere).

Nothing here imports torch, cupy or array_api_compat at ``import emkit`` time: only when a
device other than the CPU is asked for.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

__all__ = ["Device", "DeviceUnavailableError", "detect_libraries", "resolve_device",
           "current_device", "to_device", "to_numpy", "stream_blocks", "synchronize",
           "free_memory", "copy_once"]


class DeviceUnavailableError(RuntimeError):
    """The configured device cannot be used (the message says what was found)."""


@dataclass(frozen=True)
class Device:
    """A resolved device: ``library`` ("numpy", "torch" or "cupy"), the array namespace ``xp``,
    the library's device object ``device`` (``None`` for numpy) and its ``name``."""

    library: str
    xp: Any
    device: Any
    name: str

    @property
    def is_cpu(self) -> bool:
        return self.library == "numpy"


CPU = Device("numpy", np, None, "cpu")


def _probe_torch():
    try:
        torch = importlib.import_module("torch")
    except Exception:  # ImportError, or a broken install
        return None
    try:
        usable = bool(torch.cuda.is_available())
        count = int(torch.cuda.device_count()) if usable else 0
    except Exception:
        usable, count = False, 0
    build = "CUDA build" if getattr(torch.version, "cuda", None) else "CPU-only build"
    return {"version": torch.__version__, "cuda": usable, "n_devices": count, "build": build}


def _probe_cupy():
    try:
        cupy = importlib.import_module("cupy")
    except Exception:
        return None
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception:
        count = 0
    return {"version": cupy.__version__, "cuda": count > 0, "n_devices": count, "build": "CUDA"}


def detect_libraries() -> dict:
    """``{"torch": info or None, "cupy": info or None}``; ``info`` has ``version``, ``cuda``
    (a CUDA device is usable), ``n_devices`` and ``build``.  Imports the libraries (slow)."""
    return {"torch": _probe_torch(), "cupy": _probe_cupy()}


def _describe(found: dict) -> str:
    parts = []
    for name, info in found.items():
        if info is None:
            parts.append(f"{name} not installed")
        elif info["cuda"]:
            parts.append(f"{name} {info['version']} ({info['n_devices']} CUDA device(s))")
        else:
            parts.append(f"{name} {info['version']} ({info['build']}, no usable CUDA device)")
    return ", ".join(parts)


def resolve_device(device: str = "cpu", array_library: str | None = None) -> Device:
    """The :class:`Device` for a configured ``device`` ("cpu", "cuda", "cuda:N", "auto")."""
    if device == "cpu":
        return CPU
    found = detect_libraries()
    order = [array_library] if array_library else ["torch", "cupy"]
    index = int(device[5:]) if device.startswith("cuda:") else 0
    for name in order:
        info = found.get(name)
        if info and info["cuda"] and index < info["n_devices"]:
            return _make_device(name, index)
    if device == "auto":
        return CPU
    wanted = f"array_library={array_library!r}, " if array_library else ""
    reason = ("no CUDA device is usable" if index == 0 else
              f"CUDA device {index} is not there")
    raise DeviceUnavailableError(
        f"device={device!r} was requested ({wanted}PyTorch or CuPy) but {reason}: "
        f"{_describe(found)}. Install the extra (pip install 'emkit[gpu]', or cupy-cuda12x) on a "
        "machine with a CUDA device, or use device='cpu' or 'auto'")


def _make_device(library: str, index: int) -> Device:
    if library == "torch":
        import torch
        from array_api_compat import torch as xp

        return Device("torch", xp, torch.device("cuda", index), f"cuda:{index}")
    import cupy
    from array_api_compat import cupy as xp

    return Device("cupy", xp, cupy.cuda.Device(index), f"cuda:{index}")


def current_device() -> Device:
    """The device of the current configuration (``emkit.get_config()["device"]``)."""
    from .._config import get_config

    cfg = get_config()
    return resolve_device(cfg["device"], cfg["array_library"])


def to_device(x, dev: Device, dtype=None):
    """``x`` (numpy or already on ``dev``) as an array of ``dev``'s namespace; ``dtype`` a numpy
    dtype (default: keep).  A plain synchronous copy: see :func:`stream_blocks` for streaming."""
    if dev.is_cpu:
        return np.asarray(x, dtype=dtype)
    if dev.library == "torch":
        import torch

        if isinstance(x, torch.Tensor):
            t = x.to(dev.device)
            return t if dtype is None else t.to(getattr(torch, np.dtype(dtype).name))
        a = np.ascontiguousarray(x, dtype=dtype)
        if not a.flags.writeable:  # fitted parameters are read-only: torch warns, never writes
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return torch.from_numpy(a).to(dev.device)
        return torch.from_numpy(a).to(dev.device)
    import cupy

    with dev.device:
        return cupy.asarray(x, dtype=dtype)


def to_numpy(x, dtype=np.float64) -> np.ndarray:
    """A numpy copy (or view, for numpy input) of ``x`` from any namespace, as ``dtype``
    (``None``: keep).  Results of the device path come back through this."""
    if isinstance(x, np.ndarray):
        return x if dtype is None else x.astype(dtype, copy=False)
    mod = type(x).__module__
    if mod.startswith("torch"):
        a = x.detach().cpu().numpy()
    elif mod.startswith("cupy"):
        a = x.get()
    else:  # array-api-strict and other CPU namespaces
        a = np.from_dlpack(x)
    return a if dtype is None else np.asarray(a, dtype=dtype)


def synchronize(dev: Device) -> None:
    """Wait for the device's queued work (for timing)."""
    if dev.library == "torch":
        import torch

        torch.cuda.synchronize(dev.device)
    elif dev.library == "cupy":
        import cupy

        cupy.cuda.runtime.deviceSynchronize()


def free_memory(dev: Device) -> int:
    """Free bytes on ``dev`` now (0 for the CPU device: nothing to cache)."""
    if dev.library == "torch":
        import torch

        return int(torch.cuda.mem_get_info(dev.device)[0])
    if dev.library == "cupy":
        import cupy

        with dev.device:
            return int(cupy.cuda.runtime.memGetInfo()[0])
    return 0


def copy_once(nbytes: int, dev: Device, setting=None) -> bool:
    """Whether training data of ``nbytes`` (in the compute dtype) are copied to ``dev`` once
    (``True``) or streamed block by block every iteration (``False``).

    ``setting`` is ``emkit.get_config()["device_cache"]``: ``True``/``False`` force the choice;
    ``None`` copies when the data take at most half of the device's free memory (the other half
    is left to parameters, accumulators and per-block temporaries).  See docs/gpu.md.
    """
    if dev.is_cpu:
        return False
    if setting is not None:
        return bool(setting)
    return nbytes <= free_memory(dev) // 2


def stream_blocks(X, dev: Device, block_rows: int, dtype=np.float64) -> Iterator:
    """Yield row blocks ``X[i:i + block_rows]`` of a host array (numpy, memmap, h5py dataset)
    as arrays on ``dev``, each copied through a pinned host buffer on a side stream while the
    caller computes on the previous block (two buffers in turn).  Without PyTorch/CuPy streams
    (CPU device) the blocks are yielded as numpy arrays of ``dtype``.
    """
    n = X.shape[0]
    if dev.is_cpu:
        for i in range(0, n, block_rows):
            yield np.asarray(X[i:i + block_rows], dtype=dtype)
        return
    if dev.library == "torch":
        yield from _stream_torch(X, dev, block_rows, dtype)
    else:
        yield from _stream_cupy(X, dev, block_rows, dtype)


def _stream_torch(X, dev, block_rows, dtype):
    import torch

    tdtype = getattr(torch, np.dtype(dtype).name)
    shape = (block_rows,) + tuple(X.shape[1:])
    pinned = [torch.empty(shape, dtype=tdtype, pin_memory=True) for _ in range(2)]
    copy_stream = torch.cuda.Stream(device=dev.device)
    main = torch.cuda.current_stream(dev.device)
    events = [None, None]
    n = X.shape[0]
    starts = list(range(0, n, block_rows))

    def issue(i, slot):
        if events[slot] is not None:
            events[slot].synchronize()  # the previous copy out of this buffer is done
        rows = min(block_rows, n - i)
        host = pinned[slot][:rows]
        host.numpy()[...] = X[i:i + rows]  # host-side fill of the pinned buffer
        with torch.cuda.stream(copy_stream):
            block = host.to(dev.device, non_blocking=True)
            events[slot] = torch.cuda.Event()
            events[slot].record(copy_stream)
        return block, events[slot]

    nxt = issue(starts[0], 0) if starts else None
    for k, _ in enumerate(starts):
        block, event = nxt
        main.wait_event(event)
        block.record_stream(main)  # the allocator must not reuse it before main is done
        if k + 1 < len(starts):
            nxt = issue(starts[k + 1], (k + 1) % 2)
        yield block


def _stream_cupy(X, dev, block_rows, dtype):
    import cupy

    shape = (block_rows,) + tuple(X.shape[1:])
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    with dev.device:
        mems = [cupy.cuda.alloc_pinned_memory(nbytes) for _ in range(2)]
        count = int(np.prod(shape))
        bufs = [np.frombuffer(m, dtype=dtype, count=count).reshape(shape) for m in mems]
        copy_stream = cupy.cuda.Stream(non_blocking=True)
        n = X.shape[0]
        starts = list(range(0, n, block_rows))
        events = [None, None]

        def issue(i, slot):
            if events[slot] is not None:
                events[slot].synchronize()  # the previous copy out of this buffer is done
            rows = min(block_rows, n - i)
            bufs[slot][:rows] = X[i:i + rows]
            block = cupy.empty((rows,) + shape[1:], dtype=dtype)
            block.set(bufs[slot][:rows], stream=copy_stream)
            events[slot] = copy_stream.record()
            return block, events[slot]

        nxt = issue(starts[0], 0) if starts else None
        for k, _ in enumerate(starts):
            block, event = nxt
            cupy.cuda.get_current_stream().wait_event(event)
            if k + 1 < len(starts):
                nxt = issue(starts[k + 1], (k + 1) % 2)
            yield block
