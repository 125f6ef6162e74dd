"""Devices: the array library that runs the namespace-generic kernels; moving blocks there and back.

``emkit.set_config(device=...)`` names a device; :func:`resolve_device` turns it into a
:class:`Device` (the array namespace through ``array-api-compat``, the library's device object)
or raises :class:`DeviceUnavailableError` naming what was found.  :func:`to_device` and
:func:`to_numpy` move arrays; :func:`stream_blocks` copies host row blocks to the device through
two pinned buffers (kept between calls) on a side stream, so that the copy of block ``i + 1``
overlaps the compute on block ``i`` (PyTorch and CuPy on CUDA; the same double buffering with
plain synchronous copies for PyTorch CPU tensors).  Nothing here imports torch, cupy or array_api_compat at ``import emkit`` time (numpy >= 2.1).
"""

from __future__ import annotations

import collections
import importlib
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from .._kernels._xp import NUMPY

__all__ = ["Device", "DeviceUnavailableError", "detect_libraries", "resolve_device",
           "current_device", "to_device", "to_numpy", "stream_blocks", "synchronize",
           "free_memory", "copy_once", "STREAM_STATS", "release_staging_buffers", "POOL_BYTES"]


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


CPU = Device("numpy", NUMPY, None, "cpu")


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


#: Host-side staging of :func:`stream_blocks` in this process, for the benchmarks: ``"blocks"``,
#: ``"bytes"``, ``"fill_s"`` (host rows copied into the staging buffers) and ``"wait_s"`` (waiting
#: for a buffer's previous copy before refilling it: transfers not hidden behind compute).
STREAM_STATS: collections.Counter = collections.Counter()

#: Bytes of free staging buffers kept for the next call (pinned memory is slow to allocate and
#: taken from the whole system); beyond it the least recently used sets are released.
POOL_BYTES = 1 << 30

# (library, device, shape, dtype) -> free _Staging sets, reused across calls; least recently
# returned first
_POOL: collections.OrderedDict = collections.OrderedDict()
_POOL_LOCK = threading.Lock()


def release_staging_buffers() -> int:
    """Release the pinned host buffers kept for streaming to a device.

    Returns
    -------
    int
        The bytes released.
    """
    with _POOL_LOCK:
        freed = sum(staging.nbytes for sets in _POOL.values() for staging in sets)
        _POOL.clear()
    return freed


def _give_back(key, staging) -> None:
    """Return a staging set to the pool, then release the least recently used sets beyond
    :data:`POOL_BYTES` (never the one just returned)."""
    with _POOL_LOCK:
        _POOL.setdefault(key, []).append(staging)
        _POOL.move_to_end(key)
        total = sum(s.nbytes for sets in _POOL.values() for s in sets)
        for old in list(_POOL):
            if total <= POOL_BYTES or old == key:
                break
            for s in _POOL.pop(old):
                total -= s.nbytes


def stream_blocks(X, dev: Device, block_rows: int, dtype=np.float64) -> Iterator:
    """Yield row blocks ``X[i:i + block_rows]`` of a host array (numpy, memmap, h5py dataset)
    as arrays on ``dev``, double buffered: block ``i + 1`` is read into the second of two host
    staging buffers and its copy issued while the caller computes on block ``i``.

    On CUDA the staging buffers are pinned (page-locked) and the copies run on a side stream
    (PyTorch: ``non_blocking`` copies on a ``torch.cuda.Stream``; CuPy: a non-blocking stream),
    the compute stream waiting on each copy's event only; the buffers and the stream are kept
    for the next call with the same block shape (pinning memory is slow), one set per
    concurrent caller, up to :data:`POOL_BYTES` in all.  PyTorch tensors on the CPU (the tests' stand-in for a GPU) run the same
    code with plain buffers and synchronous copies (each block a copy of its own).  The numpy
    CPU device yields numpy blocks of ``dtype``.
    """
    n = X.shape[0]
    if dev.is_cpu:
        for i in range(0, n, block_rows):
            yield np.asarray(X[i:i + block_rows], dtype=dtype)
        return
    if n == 0:
        return
    ops = _StagingOps.of(dev)
    shape = (min(block_rows, n),) + tuple(X.shape[1:])
    key = (dev.library, dev.name, shape, np.dtype(dtype).str)
    with _POOL_LOCK:
        free = _POOL.get(key)
        staging = free.pop() if free else None
    if staging is None:
        staging = _Staging(ops, shape, dtype)
    try:
        yield from _double_buffered(X, ops, staging, shape[0])
    finally:
        _give_back(key, staging)


class _Staging:
    """Two host staging buffers (``host``: the library's, ``views``: numpy views of them), the
    events of the last copies out of them, and a copy stream."""

    def __init__(self, ops, shape, dtype):
        pairs = [ops.alloc(shape, np.dtype(dtype)) for _ in range(2)]
        self.host = [p[0] for p in pairs]
        self.views = [p[1] for p in pairs]
        self.events = [None, None]
        self.stream = ops.new_stream()
        self.nbytes = 2 * int(np.prod(shape)) * np.dtype(dtype).itemsize


def _double_buffered(X, ops, staging, block_rows):
    n = X.shape[0]
    starts = list(range(0, n, block_rows))

    def issue(k):
        slot = k % 2
        if staging.events[slot] is not None:  # the previous copy out of this buffer is done
            t0 = time.perf_counter()
            ops.synchronize(staging.events[slot])
            STREAM_STATS["wait_s"] += time.perf_counter() - t0
        i = starts[k]
        rows = min(block_rows, n - i)
        t0 = time.perf_counter()
        with np.errstate(over="ignore"):  # float32 staging: frames beyond its range become inf,
            # which the kernels turn into -inf log-likelihoods and fit refuses (as on the CPU)
            staging.views[slot][:rows] = X[i:i + rows]  # host-side read into the staging buffer
        STREAM_STATS["fill_s"] += time.perf_counter() - t0
        block = ops.copy(staging.host[slot][:rows], staging.stream)
        staging.events[slot] = ops.record(staging.stream)
        STREAM_STATS["blocks"] += 1
        STREAM_STATS["bytes"] += staging.views[slot][:rows].nbytes
        return block, staging.events[slot]

    nxt = issue(0)
    for k in range(len(starts)):
        block, event = nxt
        ops.wait(event, block)  # the compute stream waits for this copy only
        if k + 1 < len(starts):
            nxt = issue(k + 1)  # read and copy the next block while the caller computes
        yield block


class _StagingOps:
    """What :func:`stream_blocks` asks of a library: staging buffers, a copy stream, an
    asynchronous copy, events.  This base class is PyTorch on the CPU: plain buffers,
    synchronous copies, no stream or event (the double buffering runs, the CUDA parts don't)."""

    def __init__(self, dev):
        self.dev = dev

    @staticmethod
    def of(dev) -> "_StagingOps":
        if dev.library == "cupy":
            return _CupyOps(dev)
        if getattr(dev.device, "type", None) == "cuda":
            return _TorchCudaOps(dev)
        return _StagingOps(dev)

    def alloc(self, shape, dtype):
        import torch

        t = torch.empty(shape, dtype=getattr(torch, dtype.name))
        return t, t.numpy()

    def new_stream(self):
        return None

    def copy(self, host, stream):
        return host.to(self.dev.device, copy=True)  # a block of its own: the buffer is reused

    def record(self, stream):
        return None

    def wait(self, event, block) -> None:
        return None

    def synchronize(self, event) -> None:
        return None


class _TorchCudaOps(_StagingOps):
    def alloc(self, shape, dtype):
        import torch

        t = torch.empty(shape, dtype=getattr(torch, dtype.name), pin_memory=True)
        return t, t.numpy()

    def new_stream(self):
        import torch

        return torch.cuda.Stream(device=self.dev.device)

    def copy(self, host, stream):
        import torch

        with torch.cuda.stream(stream):
            return host.to(self.dev.device, non_blocking=True)

    def record(self, stream):
        import torch

        event = torch.cuda.Event()
        event.record(stream)
        return event

    def wait(self, event, block) -> None:
        import torch

        main = torch.cuda.current_stream(self.dev.device)
        main.wait_event(event)
        block.record_stream(main)  # the allocator must not reuse it before main is done

    def synchronize(self, event) -> None:
        event.synchronize()


class _CupyOps(_StagingOps):
    def alloc(self, shape, dtype):
        import cupy

        count = int(np.prod(shape))
        with self.dev.device:
            mem = cupy.cuda.alloc_pinned_memory(count * dtype.itemsize)
        view = np.frombuffer(mem, dtype=dtype, count=count).reshape(shape)
        return view, view

    def new_stream(self):
        import cupy

        with self.dev.device:
            return cupy.cuda.Stream(non_blocking=True)

    def copy(self, host, stream):
        import cupy

        with self.dev.device:
            block = cupy.empty(host.shape, dtype=host.dtype)
            block.set(host, stream=stream)
        return block

    def record(self, stream):
        return stream.record()

    def wait(self, event, block) -> None:
        import cupy

        with self.dev.device:
            cupy.cuda.get_current_stream().wait_event(event)

    def synchronize(self, event) -> None:
        event.synchronize()
