"""The chunks of a dask pass counted as they finish, for a progress report."""

from __future__ import annotations

import contextlib
import math


@contextlib.contextmanager
def chunks_counted(progress, parts, rows):
    """While a local dask scheduler computes, ``progress.advance(rows[i])`` once the task
    ``parts[i]`` (a ``dask.delayed`` value) has finished; ``progress`` None: nothing counted.
    A ``distributed`` client runs the tasks elsewhere and calls no local callback (its dashboard
    shows them); a chunk of unknown size (NaN rows) is not counted."""
    if progress is None:
        yield
        return
    from dask.callbacks import Callback

    rows_of = {part.key: int(n) for part, n in zip(parts, rows) if math.isfinite(n)}

    def finished(key, result, dsk, state, worker_id):
        n = rows_of.get(key)
        if n:
            progress.advance(n)

    with Callback(posttask=finished):
        yield
