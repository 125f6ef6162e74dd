"""The tasks of a dask pass counted as they finish, for a progress report: by a local-scheduler
callback, or, on a ``distributed`` client (whose scheduler calls no local callback), by waiting
here for the futures of the counted tasks while the pass runs on the workers."""

from __future__ import annotations

import contextlib
import math


def computed_counted(total, parts, counts, progress):
    """``dask.compute(total)`` (a ``dask.delayed`` sum of the tasks ``parts``), with
    ``progress.advance(counts[i])`` once the task ``parts[i]`` has finished; ``progress`` None:
    nothing counted.  The graph, and so the result, is the same either way; on a ``distributed``
    client only the final sum is gathered (the finished parts are only waited for)."""
    import dask

    from ._cluster import distributed_client

    client = None if progress is None else distributed_client()
    if client is None:
        with chunks_counted(progress, parts, counts):
            (result,) = dask.compute(total)
        return result
    total, *parts = client.compute([total, *parts])
    futures_counted(parts, counts, progress)
    return total.result()


def futures_counted(futures, counts, progress) -> None:
    """``progress.advance(counts[i])`` as each future ``futures[i]`` finishes (in the order they
    finish; None or NaN counts nothing), until all have or one has failed (the sum of the pass
    then raises its error).  The list is emptied: each future is let go once counted, so that
    the workers free its result as soon as the sum no longer needs it."""
    from distributed import as_completed

    count_of = {future.key: count for future, count in zip(futures, counts)}
    pending = as_completed(futures)
    futures.clear()
    for future in pending:
        if future.status != "finished":
            pending.clear()
            return
        count = count_of.pop(future.key, None)
        if count is not None and math.isfinite(count):
            progress.advance(int(count))


@contextlib.contextmanager
def chunks_counted(progress, parts, rows):
    """While a local dask scheduler computes, ``progress.advance(rows[i])`` once the task
    ``parts[i]`` (a ``dask.delayed`` value) has finished; ``progress`` None: nothing counted.
    A chunk of unknown size (NaN rows) is not counted."""
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
