"""The input helpers of ``bob.learn.em.utils``, for code written against the reference.

emkit's estimators do not need them (they take numpy arrays, memmaps and dask collections as
they are, and keep a dask input computed once per ``fit`` themselves); they are here so that
code calling them runs unchanged.
"""

from __future__ import annotations

import numpy as np

from ._backend import is_dask_collection

__all__ = ["array_to_delayed_list", "check_and_persist_dask_input"]


def check_and_persist_dask_input(data, persist: bool = True):
    """Whether ``data`` is a dask array, and the data to use.

    Parameters
    ----------
    data : array-like or dask array of any shape
    persist : bool, default True
        Persist a dask array (its chunks computed and kept in memory, on the workers of a
        ``distributed`` client if there is one, which is asked to rebalance them).

    Returns
    -------
    (bool, array)
        ``(True, data)`` for a dask array, ``(False, np.asarray(data))`` otherwise.
    """
    import dask.array as da

    if not isinstance(data, da.Array):
        return False, np.asarray(data)
    if persist:
        data = data.persist()
        client = _current_client()
        if client is not None:
            client.rebalance()
    return True, data


def array_to_delayed_list(data, input_is_dask: bool):
    """The chunks of a dask array as delayed objects.

    Parameters
    ----------
    data : dask array or array-like of any shape
    input_is_dask : bool
        Whether ``data`` is a dask array.

    Returns
    -------
    list of dask.delayed.Delayed, or ``data``
        One per chunk, in the chunk grid's row-major order; ``data`` itself when not dask.
    """
    if input_is_dask:
        if not is_dask_collection(data) or not hasattr(data, "to_delayed"):
            raise TypeError(f"data must be a dask array when input_is_dask is True; got "
                            f"{type(data).__name__}")
        return data.to_delayed().ravel().tolist()
    return data


def _current_client():
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - distributed is a dependency
        return None
    try:
        return Client.current()
    except ValueError:  # no client: the local scheduler
        return None
