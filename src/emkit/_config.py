"""Process-wide settings: ``emkit.set_config(progress=True)`` shows progress bars on training."""

from __future__ import annotations

import contextlib

_CONFIG = {"progress": False, "block_rows": None}


def get_config() -> dict:
    """A copy of the current settings."""
    return dict(_CONFIG)


def set_config(progress: bool | None = None, block_rows: int | None = None) -> None:
    """Change settings.

    progress : bool
        Show a tqdm progress bar over EM iterations (logging at INFO level reports them anyway).
    block_rows : int
        Rows per block in the E-step kernels (memory is about ``block_rows * (C + 2D) * 8`` bytes
        per thread).  ``None`` keeps the default.
    """
    if progress is not None:
        _CONFIG["progress"] = bool(progress)
    if block_rows is not None:
        if int(block_rows) < 1:
            raise ValueError(f"block_rows must be a positive integer; got {block_rows!r}")
        _CONFIG["block_rows"] = int(block_rows)


@contextlib.contextmanager
def config_context(**settings):
    """Temporarily change settings: ``with emkit.config_context(progress=True): ...``."""
    saved = get_config()
    set_config(**settings)
    try:
        yield
    finally:
        _CONFIG.update(saved)
