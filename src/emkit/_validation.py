"""Input checks shared by the estimators.

Every error names the argument, what was expected and what was received.
"""

from __future__ import annotations

import numbers

import numpy as np


def check_random_state(random_state, name: str = "random_state") -> np.random.Generator | np.random.RandomState:
    """Turn ``random_state`` into a generator object without touching numpy's global state.

    Accepts None (a fresh unpredictable ``RandomState``), an int seed, a ``RandomState`` or a
    ``Generator``.  Integers give ``np.random.RandomState(seed)`` because the reference's seeded
    streams are ``RandomState`` streams.
    """
    if random_state is None:
        return np.random.RandomState()
    if isinstance(random_state, (np.random.RandomState, np.random.Generator)):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return np.random.RandomState(int(random_state))
    raise TypeError(
        f"{name} must be None, an int, a numpy RandomState or a numpy Generator; "
        f"got {type(random_state).__name__}: {random_state!r}"
    )


def check_positive_int(value, name: str, *, minimum: int = 1, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}; got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def is_dask_collection(x) -> bool:
    """True for dask arrays, bags and delayed objects, without importing dask."""
    return hasattr(x, "__dask_graph__")


def check_frames(X, name: str = "X", *, n_features: int | None = None, allow_empty: bool = False,
                 ensure_2d: bool = False, owner: str | None = None):
    """Validate a (n_samples, n_features) frame matrix, without copying when it is already fine.

    numpy input goes through scikit-learn's ``check_array`` (numeric dtype kept, NaN/inf, sparse,
    complex and empty inputs rejected with messages naming ``name``).  A 1-D input is one sample
    (the reference's ``np.atleast_2d``) unless ``ensure_2d``.  Dask arrays are returned as they are
    (their values are checked where they are used, chunk by chunk).
    """
    from sklearn.utils import check_array

    if is_dask_collection(X):
        if getattr(X, "ndim", 2) == 1:
            X = X[None, :]
        if X.ndim != 2:
            raise ValueError(f"{name} must be a 2-D array (n_samples, n_features); got a {X.ndim}-D dask array")
    elif _is_plain_float_matrix(X, ensure_2d, allow_empty):
        # the common case (one utterance, a frame matrix): skip check_array's generic overhead
        if not np.isfinite(np.add.reduce(X, axis=None)):  # NaN/inf propagate through a sum...
            check_finite(X, name)  # ...and an overflowing sum is re-checked element-wise
        if X.ndim == 1:
            X = X[None, :]
    else:
        X = check_array(X, accept_sparse=False, dtype="numeric", ensure_2d=ensure_2d, allow_nd=False,
                        ensure_min_samples=0 if allow_empty else 1, ensure_all_finite=True,
                        input_name=name)
        if X.ndim == 0:
            raise ValueError(f"{name} must be an array of samples; got the scalar {X!r}. Reshape your data "
                             "to (n_samples, n_features).")
        if X.ndim == 1:
            X = X[None, :]
        if X.shape[1] == 0:
            raise ValueError(f"{name} has 0 feature(s) (shape={X.shape}) while a minimum of 1 is required.")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but {owner or 'the model'} is expecting {n_features} "
            f"features as input (shape {X.shape})"
        )
    return X


def _is_plain_float_matrix(X, ensure_2d: bool, allow_empty: bool) -> bool:
    return (type(X) is np.ndarray and X.dtype.kind == "f" and X.dtype.itemsize >= 4
            and (X.ndim == 2 or (X.ndim == 1 and not ensure_2d))
            and X.size > 0 and X.shape[-1] > 0 and (allow_empty or X.shape[0] > 0))


def check_finite(X, name: str) -> None:
    """Raise when an array holds NaN or inf (the reference propagated them silently)."""
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        bad = np.argwhere(~np.isfinite(X))[0]
        kind = "NaN" if np.isnan(X[tuple(bad)]) else "infinity"
        raise ValueError(f"Input {name} contains {kind} (first at index {tuple(int(i) for i in bad)})")
