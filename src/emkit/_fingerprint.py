"""Fingerprints of a training run, for checkpoints: the data, the labels, the parameters.

Every byte of the training input is hashed (xxh3-128, streamed over the arrays' memory: a few
milliseconds per 100 MB, far less than one EM iteration over the same data):

* numpy arrays and memmaps: dtype, shape and the values in C order (the memory layout does not
  matter; an array and a memmap of the same values agree);
* sequences (lists of utterances' arrays or ``GMMStats``, per-class lists): their length and
  every item in order;
* ``GMMStats``: ``t``, ``log_likelihood``, ``n``, ``sum_px`` and ``sum_pxx``;
* dask arrays, bags and delayed objects: one digest per chunk, partition or item, computed on
  the workers, combined in chunk order with the shape and chunking (so the same values chunked
  differently count as other data).

Labels are hashed by value and type (``1`` and ``"1"`` differ); parameters one by one, so that a
mismatch can name them.  ``FORMAT`` changes whenever any of this changes.
"""

from __future__ import annotations

import numpy as np

from ._validation import is_dask_collection

#: Version of the fingerprint definition (stored in checkpoints, compared on resume).
FORMAT = 2

#: Non-contiguous arrays are hashed in blocks of about this many bytes (copied one at a time).
_BLOCK_BYTES = 1 << 24
_SCALARS = (str, bytes, bool, int, float, complex, np.generic, type(None))
#: numpy integer labels that int64 holds exactly
_EXACT_INTEGERS = (np.signedinteger, np.uint8, np.uint16, np.uint32)


def _hasher():
    import xxhash

    return xxhash.xxh3_128()


def data_fingerprint(X) -> str:
    """Hex digest of every byte of ``X`` (see the module docstring for what is covered)."""
    h = _hasher()
    _feed(h, X)
    return h.hexdigest()


def fingerprint_kind(X) -> str:
    """``"dask"`` when ``X`` is a dask collection (digests per chunk or partition, never equal to
    those of the same data in memory), else ``"memory"``."""
    return "dask" if is_dask_collection(X) else "memory"


def labels_fingerprint(y) -> str:
    """Hex digest of the labels ``y`` (any sequence or array of labels, or per-class sequences of
    them); ``""`` for None.  A list and an array of the same labels agree."""
    return "" if y is None else data_fingerprint(_as_lists(y))


def _as_lists(y):
    if isinstance(y, np.ndarray):
        return y.tolist()
    if isinstance(y, (list, tuple)) and any(isinstance(item, (np.ndarray, list, tuple)) for item in y):
        return [_as_lists(item) for item in y]
    return y


def _digest(obj) -> bytes:
    h = _hasher()
    _feed(h, obj)
    return h.digest()


def _feed(h, obj) -> None:
    from .stats import GMMStats

    if isinstance(obj, np.ndarray):
        _feed_array(h, obj)
    elif isinstance(obj, GMMStats):
        h.update(b"GMMStats|" + _scalar_bytes(obj.t) + _scalar_bytes(obj.log_likelihood))
        for value in (obj.n, obj.sum_px, obj.sum_pxx):
            _feed_array(h, np.asarray(value))
    elif isinstance(obj, _SCALARS):
        h.update(_scalar_bytes(obj))
    elif isinstance(obj, (list, tuple)):
        _feed_sequence(h, obj)
    elif is_dask_collection(obj):
        _feed_dask(h, obj)
    else:  # any other object (a label of a user's type): by its pickled value
        import joblib

        h.update(f"object|{type(obj).__qualname__}|{joblib.hash(obj)}".encode())


def _feed_array(h, a: np.ndarray) -> None:
    h.update(f"ndarray|{a.dtype.str}|{a.shape}|".encode())
    if a.dtype.hasobject:
        _feed_sequence(h, a.ravel().tolist())
    elif a.ndim == 0:
        h.update(a.tobytes())
    elif a.flags.c_contiguous:
        h.update(a.reshape(-1).view(np.uint8))
    else:
        row_bytes = max(1, a[:1].size * a.itemsize)
        rows = max(1, _BLOCK_BYTES // row_bytes)
        for start in range(0, a.shape[0], rows):
            h.update(np.ascontiguousarray(a[start : start + rows]).reshape(-1).view(np.uint8))


def _scalar_bytes(value) -> bytes:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        return b"bytes|%d|" % len(value) + value
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        return b"str|%d|" % len(data) + data
    if isinstance(value, float):
        return f"float|{value.hex()}|".encode()
    return f"{type(value).__name__}|{value!r}|".encode()


def _feed_sequence(h, items) -> None:
    h.update(f"sequence|{len(items)}|".encode())
    kinds = set(map(type, items))
    if kinds and all(issubclass(kind, _SCALARS) for kind in kinds):  # labels
        _feed_scalars(h, items, kinds)
        return
    # one digest per item (the same whether an item is in memory or a dask task)
    if any(is_dask_collection(item) for item in items):
        from ._backend import map_pieces

        digests = map_pieces(_digest, items)
    else:
        digests = map(_digest, items)
    for digest in digests:
        h.update(digest)


def _feed_scalars(h, items, kinds) -> None:
    """Labels: all strings or all integers in a few updates (fast for 10^5 labels), else one by
    one (numpy scalars count as the Python values they hold)."""
    if all(issubclass(kind, str) for kind in kinds):
        encoded = [item.encode("utf-8", "surrogatepass") for item in items]
        h.update(b"strings|")
        h.update(np.fromiter(map(len, encoded), dtype="<i8", count=len(encoded)))
        h.update(b"".join(encoded))
        return
    if all((issubclass(kind, int) and kind is not bool) or issubclass(kind, _EXACT_INTEGERS)
           for kind in kinds):
        try:
            values = np.array(items, dtype="<i8")
        except OverflowError:
            pass
        else:
            h.update(b"integers|")
            h.update(values)
            return
    h.update(b"".join(_scalar_bytes(item) for item in items))


def _feed_dask(h, X) -> None:
    from ._backend import map_pieces

    if hasattr(X, "chunks") and hasattr(X, "dtype"):
        h.update(f"dask.array|{np.dtype(X.dtype).str}|{X.shape}|{X.chunks}|".encode())
    elif hasattr(X, "npartitions"):
        from ._backend._cache import piece_digests

        cached = piece_digests(X, _digest)  # a bag cached by fit: the digests of its input's
        if cached is not None:
            h.update(f"dask.bag|{cached[0]}|".encode())
            for digest in cached[1]:
                h.update(digest)
            return
        h.update(f"dask.bag|{X.npartitions}|".encode())
    else:
        h.update(b"dask.delayed|")
    for digest in map_pieces(_digest, X):
        h.update(digest)


# -- parameters -------------------------------------------------------------------------------
def _describe(value):
    """A hashable description of a parameter value; estimators by their parameters and, for
    fitted GMMs (a UBM), their Gaussians, but not by other fitted state that ``fit`` may change."""
    if hasattr(value, "get_params"):
        params = {k: _describe(v) for k, v in value.get_params(deep=False).items() if k != "checkpoint"}
        gaussians = tuple(getattr(value, name, None) for name in ("_means", "_variances", "_weights"))
        return (type(value).__name__, sorted(params.items()), gaussians)
    return value


def parameter_fingerprints(estimator) -> dict:
    """``{parameter name: digest}`` of the estimator's ``get_params`` (``checkpoint`` excepted),
    plus ``"initial Gaussians"`` (a GMM's means, variances and weights when ``fit`` starts)."""
    import joblib

    params = {k: v for k, v in estimator.get_params(deep=False).items() if k != "checkpoint"}
    digests = {name: joblib.hash(_describe(value)) for name, value in sorted(params.items())}
    gaussians = tuple(getattr(estimator, name, None) for name in ("_means", "_variances", "_weights"))
    digests["initial Gaussians"] = joblib.hash(gaussians)
    return digests


def model_fingerprint(estimator) -> str:
    """Digest of a fitted model (a UBM): its class, parameters (``checkpoint`` excepted) and
    Gaussians, as a checkpoint compares a ``ubm`` parameter."""
    import joblib

    return joblib.hash(_describe(estimator))
