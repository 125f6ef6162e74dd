"""Training data of the estimators on the configured device: the decision to copy them once or
stream them (logged at INFO level), their blocks on the device, and results back to the host.

Used by the i-vector and ISV/JFA estimators when ``emkit.set_config(device=...)`` names a
device other than the CPU (see docs/gpu.md).  A PyTorch device of type ``"cpu"`` (CPU tensors,
used by the tests to run the whole device path without a GPU) is handled like a CUDA device,
without pinned buffers, streams or a free-memory query.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np

from . import _device

logger = logging.getLogger("emkit")

__all__ = ["configured_device", "copy_once", "blocks", "to_host", "synced"]


def configured_device():
    """The configured :class:`~emkit._backend._device.Device`, or None for the CPU (numpy)."""
    from .._config import get_config

    if get_config()["device"] == "cpu":  # the default: no device library is imported
        return None
    dev = _device.current_device()
    return None if dev.is_cpu else dev


def _host_tensors(dev) -> bool:
    """Whether ``dev`` keeps its arrays in host memory (torch CPU tensors, in the tests)."""
    return getattr(dev.device, "type", None) == "cpu"


def copy_once(nbytes: int, dev, what: str) -> bool:
    """:func:`emkit._backend._device.copy_once` of the configuration's ``device_cache``, with
    the decision logged at INFO level (``what`` names the data and the estimator)."""
    from .._config import get_config

    setting = get_config()["device_cache"]
    if _host_tensors(dev):
        cached = True if setting is None else bool(setting)
    else:
        cached = _device.copy_once(nbytes, dev, setting)
    how = ("copied to the device once" if cached else
           "streamed to the device block by block every iteration")
    rule = ("device_cache=None: at most half of the free device memory" if setting is None
            else f"device_cache={setting}")
    logger.info("%s (%.1f MB) on %s (%s): %s (%s)", what, nbytes / 2**20, dev.name, dev.library,
                how, rule)
    return cached


def blocks(X, dev, rows: int):
    """Row blocks of the host array ``X`` on ``dev``
    (:func:`~emkit._backend._device.stream_blocks`: pinned buffers, copies overlapping compute;
    plain synchronous copies for host tensors)."""
    yield from _device.stream_blocks(X, dev, rows, dtype=X.dtype)


def to_host(x, dev) -> np.ndarray:
    """``x`` as a numpy float64 array that shares no memory with the device array."""
    a = _device.to_numpy(x)
    return np.array(a, copy=True) if _host_tensors(dev) else a


@contextlib.contextmanager
def synced(training):
    """Around ``resumable_em``: ``training.sync()`` at the end (also on errors: the machine keeps
    the last completed M-step's parameters, as on the numpy path); nothing for ``None``."""
    try:
        yield
    finally:
        if training is not None:
            training.sync()
