"""Input checks shared by the estimators.

Every error names the argument, what was expected and what was received.
"""

from __future__ import annotations

import dataclasses
import logging
import numbers
import os

import numpy as np

from ._describe import describe
from ._object_arrays import dask_objects_as_numbers, objects_as_numbers


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
        check_random_state_type(random_state, name)  # (numpy's range error names no argument)
        return np.random.RandomState(int(random_state))
    raise TypeError(
        f"{name} must be None, an int, a numpy RandomState or a numpy Generator; "
        f"got {type(random_state).__name__}: {describe(random_state)}"
    )


#: The largest value of Kaldi's integer options (int32): a frame count beyond it (a VAD
#: context, a CMVN window) is in no Kaldi configuration, and 2**31 frames of 10 ms are 8 months
KALDI_INT_MAX = 2**31 - 1


def check_positive_int(value, name: str, *, minimum: int = 1, allow_none: bool = False,
                       maximum: int | None = None, why: str = ""):
    """``value`` as an int; a TypeError or ValueError naming ``name`` unless it is an integer
    from ``minimum`` (to ``maximum``, whose reason ``why`` the message gives in brackets)."""
    if value is None and allow_none:
        return None
    expected = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer {expected}; "
                        f"got {type(value).__name__}: {describe(value)}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an integer {expected}{f' ({why})' if why else ''}; "
                         f"got {describe(value)}")
    return int(value)


def check_checkpoint(value, name: str = "checkpoint") -> None:
    """``value`` is None or a file path (str or os.PathLike, not empty)."""
    if value is None:
        return
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or os.PathLike) or None; got "
                        f"{type(value).__name__}: {describe(value)}")
    if not os.fspath(value):
        raise ValueError(f"{name} is an empty path: give a file name, or None for no checkpoint")


def check_random_state_type(random_state, name: str = "random_state") -> None:
    """Raise unless ``random_state`` is something :func:`check_random_state` accepts (no draw made)."""
    if random_state is None or isinstance(random_state, (np.random.RandomState, np.random.Generator)):
        return
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if not 0 <= random_state < 2**32:
            raise ValueError(f"{name} must be an integer seed in [0, 2**32 - 1]; "
                             f"got {describe(random_state)}")
        return
    check_random_state(random_state, name)  # raises the TypeError


def check_real(value, name: str, *, minimum=None, maximum=None, exclusive_minimum: bool = False,
               allow_none: bool = False):
    """A finite real number (not a bool) within the given bounds; returns it as a float."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        expected = "a real number" + (" or None" if allow_none else "")
        raise TypeError(f"{name} must be {expected}; got {type(value).__name__}: {describe(value)}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {describe(value)}")
    low_ok = minimum is None or (value > minimum if exclusive_minimum else value >= minimum)
    if not low_ok or (maximum is not None and value > maximum):
        low = "" if minimum is None else (f"> {minimum}" if exclusive_minimum else f">= {minimum}")
        high = "" if maximum is None else f"<= {maximum}"
        raise ValueError(f"{name} must be {' and '.join(b for b in (low, high) if b)}; "
                         f"got {describe(value)}")
    return float(value)


def check_comparable(other, cls, name: str, **tolerances) -> None:
    """For ``is_similar_to``: refuse an ``other`` that is not a ``cls`` and tolerances (name ->
    value) that are not finite numbers >= 0, naming them (the reference's AttributeError and
    numpy's ufunc error named neither the argument nor what was expected)."""
    if not isinstance(other, cls):
        raise TypeError(f"{name} must be a {cls.__name__} to compare with; got "
                        f"{type(other).__name__}: {describe(other)}")
    for tolerance, value in tolerances.items():
        check_real(value, tolerance, minimum=0)


def is_finite_number(value) -> bool:
    """A real number, not a bool (True is 1 to Python, not a threshold), neither NaN nor infinite."""
    return (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
            and bool(np.isfinite(value)))


def check_bool(value, name: str) -> bool:
    """``True``/``False`` (numpy booleans and the integers 0 and 1 too)."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{name} must be True or False; got {type(value).__name__}: {describe(value)}")


def check_iteration_limits(max_iterations, convergence_threshold, max_name: str) -> None:
    """``max_name`` an integer >= 0 or None, ``convergence_threshold`` a number >= 0 or None, not both None."""
    check_positive_int(max_iterations, max_name, minimum=0, allow_none=True)
    check_real(convergence_threshold, "convergence_threshold", minimum=0, allow_none=True)
    if max_iterations is None and convergence_threshold is None:
        raise ValueError(f"Either or both convergence_threshold and {max_name} must be set: they cannot "
                         "both be None (the loop would never end)")


def is_dask_collection(x) -> bool:
    """True for dask arrays, bags and delayed objects, without importing dask."""
    return hasattr(x, "__dask_graph__")


def is_dask_array(x) -> bool:
    """True for a dask array (not a bag or a delayed object, which answer ``hasattr(x, "chunks")``
    with a delayed attribute); imports dask only for dask objects."""
    if not is_dask_collection(x):
        return False
    import dask.array as da

    return isinstance(x, da.Array)


def check_frames_collection(X, name: str = "X") -> None:
    """Refuse a dask collection other than a dask array (a bag, a delayed object, a dataframe)
    where frames are expected, naming what is accepted and what was received."""
    if not is_dask_collection(X) or is_dask_array(X):
        return
    from dask.bag import Bag
    from dask.delayed import Delayed

    if isinstance(X, Bag):
        got = ("a dask bag (dask.bag.Bag); stack its (n_frames, n_features) arrays into one dask "
               "array (e.g. dask.array.concatenate, or emkit.io.arrays.directory_frames for .npy "
               "files)")
    elif isinstance(X, Delayed):
        got = ("a dask delayed object (dask.delayed.Delayed); make it a dask array: "
               "dask.array.from_delayed(X, shape=(n_samples, n_features), dtype=...)")
    else:
        got = f"a {type(X).__module__}.{type(X).__qualname__}"
    raise TypeError(f"{name} must be a numpy array (or array-like), a dask array, or a PyTorch or "
                    f"CuPy array, of shape (n_samples, n_features); got {got}")


def check_frames(X, name: str = "X", *, n_features: int | None = None, allow_empty: bool = False,
                 ensure_2d: bool = False, owner: str | None = None, known_rows: bool = False,
                 in_memory: bool = False):
    """Validate a (n_samples, n_features) frame matrix, without copying when it is already fine.

    numpy input goes through scikit-learn's ``check_array`` (numeric dtype kept, NaN/inf, sparse,
    complex and empty inputs rejected with messages naming ``name``).  A 1-D input is one sample
    (the reference's ``np.atleast_2d``) unless ``ensure_2d``.  Dask arrays get the same checks of
    shape and dtype and come back with one chunk along the features (any chunking is accepted);
    their values are checked where they are used, chunk by chunk.  Other dask collections (bags,
    delayed objects) are refused (:func:`check_frames_collection`).  ``known_rows`` computes
    unknown chunk sizes (e.g. of ``X[mask]``), which training needs.  ``in_memory`` returns a float64
    numpy array: a dask array is computed, and its values are checked there (for the estimators
    that use it whole: they never see its chunks).
    """
    from sklearn.utils import check_array

    if is_dask_collection(X):
        X = _check_dask_frames(X, name, allow_empty=allow_empty, ensure_2d=ensure_2d, known_rows=known_rows,
                               owner=owner)
    elif _is_plain_float_matrix(X, ensure_2d, allow_empty):
        # the common case (one utterance, a frame matrix): skip check_array's generic overhead
        with np.errstate(over="ignore", invalid="ignore"):  # (no warning for a false alarm)
            if not np.isfinite(np.add.reduce(X, axis=None)):  # NaN/inf propagate through a sum...
                check_finite(X, name)  # ...and an overflowing sum is re-checked element-wise
        if X.ndim == 1:
            X = X[None, :]
    else:
        X = objects_as_numbers(X, name)  # (scikit-learn took None for NaN, or kept an object array)
        _refuse_complex_or_1d(X, name, ensure_2d)  # scikit-learn's messages print the whole array
        try:
            X = check_array(X, accept_sparse=False, dtype="numeric", ensure_2d=ensure_2d, allow_nd=False,
                            ensure_min_samples=0, ensure_all_finite=True,
                            input_name=name)
        except ValueError:
            # scikit-learn's dimension errors name neither the argument nor the shape received
            problem = _shape_problem(X)
            if problem is None:
                text = _text_dtype(X)
                if text is None:
                    raise
                raise ValueError(f"{name} must hold numbers; got text (dtype {text})") from None
            raise ValueError(f"{name} must be a 2-D (n_samples, n_features) array; got {problem}") from None
        if X.ndim == 0:
            raise ValueError(_scalar_given(name, X))
        if X.ndim == 1:
            X = X[None, :]
        if X.shape[1] == 0:
            raise ValueError(f"{name} has 0 feature(s) (shape={X.shape}) while a minimum of 1 is required.")
        if X.shape[0] == 0 and not allow_empty:
            raise ValueError(_no_samples(name, X.shape, owner))
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but {owner or 'the model'} is expecting {n_features} "
            f"features as input (shape {X.shape})"
        )
    if in_memory:
        computed = is_dask_collection(X)
        X = np.asarray(X, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            if computed and not np.isfinite(np.add.reduce(X, axis=None)):  # (as numpy input above)
                check_finite(X, name)
    return X


def _no_samples(name: str, shape, owner: str | None) -> str:
    return f"{name} has 0 sample(s) (shape={shape}): {owner or 'the estimator'} needs at least 1"


def _refuse_complex_or_1d(X, name: str, ensure_2d: bool) -> None:
    try:
        complex_values, ndim = np.iscomplexobj(X), np.ndim(X)
    except (ValueError, TypeError):  # ragged, or an array-like whose __array_function__ refuses
        return  # numpy's functions: check_array converts it and explains what is wrong
    if complex_values:
        raise ValueError(f"Complex data not supported: {name} must hold real numbers; got complex values")
    if ensure_2d and ndim == 1 and _shape_problem(X) is None:  # (not an object array of sessions)
        raise ValueError(_one_dimensional(name, f"array of shape {np.shape(X)}"))
    if ensure_2d and ndim == 0 and _text_dtype(X) is None:  # (scikit-learn's message says "array")
        raise ValueError(_scalar_given(name, X))


def _scalar_given(name: str, X) -> str:
    single = X is None or isinstance(X, (numbers.Number, np.ndarray, np.generic))
    what = "the scalar" if single else f"a {type(X).__name__}"  # (a dict, a set...)
    return (f"{name} must be an array of samples; got {what} {describe(X)}. Reshape your data to "
            "(n_samples, n_features).")


def _one_dimensional(name: str, what: str) -> str:
    return (f"Expected 2D array, got 1D array instead: {name} is a 1-D {what}. Reshape your data either "
            "using array.reshape(-1, 1) if your data has a single feature or array.reshape(1, -1) if it "
            "contains a single sample.")


def _check_dask_frames(X, name: str, *, allow_empty: bool, ensure_2d: bool, known_rows: bool,
                       owner: str | None = None):
    """The dask side of :func:`check_frames`: the numpy input's rules, without computing values."""
    check_frames_collection(X, name)  # a bag or a delayed object: not (n_samples, n_features)
    kind = X.dtype.kind
    if kind == "c":
        raise ValueError(f"Complex data not supported: {name} must hold real numbers; got a dask array of dtype {X.dtype}")
    if kind == "O":  # (astype read None as NaN: then "contains NaN", of a NaN never given)
        X = dask_objects_as_numbers(X, name)
    elif kind not in "biuf":
        raise ValueError(f"{name} must hold numbers; got a dask array of dtype {X.dtype}")
    if X.ndim == 0:
        raise ValueError(f"{name} must be an array of samples; got a 0-D dask array. Reshape your data "
                         "to (n_samples, n_features).")
    if X.ndim == 1:
        if ensure_2d:
            raise ValueError(_one_dimensional(name, f"dask array of shape {X.shape}"))
        X = X[None, :]
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n_samples, n_features) array; got a dask array of shape {X.shape}")
    unknown_rows = any(np.isnan(c) for c in X.chunks[0])
    if any(np.isnan(c) for c in X.chunks[1]) or (known_rows and unknown_rows):
        # e.g. ``X[mask]``: one pass over the input finds the chunk sizes
        logging.getLogger("emkit").info("%s: computing the unknown chunk sizes of a dask array", name)
        X = X.compute_chunk_sizes()
        unknown_rows = False
    if X.shape[1] == 0:
        raise ValueError(f"{name} has 0 feature(s) (shape={X.shape}) while a minimum of 1 is required.")
    if not unknown_rows and X.shape[0] == 0 and not allow_empty:
        raise ValueError(_no_samples(name, X.shape, owner))
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X


def check_block(block, name: str, block_info=None, first_row=None) -> None:
    """Refuse NaN/inf in one chunk of a dask array, as :func:`check_frames` refuses them in numpy input.

    ``block_info`` (dask's ``map_blocks`` argument) or ``first_row`` turns the index into one of
    the whole array.  One cheap sum first, an element-wise search only when it is not finite.
    """
    block = np.asarray(block)
    if block.dtype.kind != "f" or block.size == 0 or np.isfinite(np.add.reduce(block, axis=None)):
        return
    if np.isfinite(block).all():
        return  # the sum overflowed
    bad = [int(i) for i in np.argwhere(~np.isfinite(block))[0]]
    kind = "NaN" if np.isnan(block[tuple(bad)]) else "infinity"
    if first_row is None:
        try:
            first_row = block_info[0]["array-location"][0][0]
        except (TypeError, KeyError, IndexError):
            first_row = None
    if block.ndim == 2 and first_row is not None and np.isfinite(first_row):
        # the chunk that fails first need not be the first to hold one: say which rows it holds
        first_row = int(first_row)
        where = (f"first at index {(first_row + bad[0], bad[1])} in rows {first_row} to "
                 f"{first_row + block.shape[0] - 1}, a dask chunk")
    else:
        where = f"at index {tuple(bad)} of one of its dask chunks"
    raise ValueError(f"Input {name} contains {kind} ({where})")


def checked_chunk(block, first_row, chunk_fn, *params):
    """``chunk_fn(block, *params)`` after :func:`check_block` refused NaN/inf in ``block``, a dask
    chunk whose first row is row ``first_row`` of the whole array (None: unknown), for
    :func:`emkit._backend.map_reduce` with ``with_offset=True``."""
    check_block(block, "X", first_row=first_row)
    return chunk_fn(block, *params)


def _shape_problem(X) -> str | None:
    """What is wrong with the shape of an input that is not (n_samples, n_features), or None."""
    listed = isinstance(X, (list, tuple))
    if listed or isinstance(X, np.ndarray) and X.dtype == object and X.ndim == 1:
        kind = "a list" if listed else "a numpy object array"
        try:
            shapes = [np.shape(x) for x in X]
        except ValueError:  # an element is itself ragged
            return f"{kind} of {len(X)} ragged elements"
        if len(set(shapes)) > 1:
            shown = ", ".join(str(s) for s in shapes[:4]) + (", ..." if len(shapes) > 4 else "")
            return f"{kind} of arrays of different lengths: shapes {shown}"
        if shapes and len(shapes[0]) >= 2:
            return f"shape {(len(X),) + shapes[0]} ({kind} of {len(X)} arrays of shape {shapes[0]})"
        return None
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) > 2:
        return f"shape {tuple(shape)}"
    return None


def _text_dtype(X) -> str | None:
    """The dtype of an input of strings or bytes (scikit-learn's message named no argument)."""
    try:
        dtype = np.asarray(X).dtype
    except (ValueError, TypeError):
        return None
    return str(dtype) if dtype.kind in "USa" else None


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


def copy_real(out: np.ndarray, value, what: str) -> None:
    """Copy ``value`` into the float array ``out``, refusing complex values (an assignment would
    keep their real part with only numpy's ComplexWarning); errors name ``what``."""
    try:
        np.copyto(out, value, casting="same_kind")
    except TypeError:
        raise TypeError(f"{what} must hold real numbers; got {np.asarray(value).dtype}") from None


def real_copy(value, what: str) -> np.ndarray:
    """A float64 copy of ``value``, refusing complex values as :func:`copy_real` does."""
    if np.iscomplexobj(value):
        raise TypeError(f"{what} must hold real numbers; got complex values")
    return np.array(value, dtype=np.float64)


def check_stacked_statistics(fields: dict, name: str, label) -> None:
    """Refuse NaN/inf in stacked GMM statistics (``fields``: arrays with one row per session, as
    :meth:`emkit.GMMStats.stack` fills them), a negative occupancy ``n`` or frame count ``t``;
    errors name ``name`` and ``label(i)``, the session."""
    for field, a in fields.items():
        # a finite sum (one pass, no temporary) proves every entry finite; an infinite one may
        # also be an overflow of finite entries, so look at them
        if not np.isfinite(a.sum()) and not np.isfinite(a).all():
            bad = int(np.argwhere(~np.isfinite(a.reshape(len(a), -1)))[0][0])
            raise ValueError(f"{name} holds statistics with NaN or infinity: {label(bad)}.{field}")
    n, t = fields["n"], fields["t"]
    if n.min() < 0:
        i, c = (int(k) for k in np.argwhere(n < 0)[0])
        raise ValueError(f"{name} holds a negative occupancy: {label(i)}.n[{c}] = {float(n[i, c])!r}")
    if t.min() < 0:
        i = int(np.argmin(t))
        raise ValueError(f"{name} holds a negative frame count: {label(i)}.t = {float(t[i])!r}")


_FIELD_KINDS = {
    "bool": ("a boolean (true or false)", lambda v: isinstance(v, (bool, np.bool_))),
    "int": ("an integer", lambda v: isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))),
    "float": ("a number", lambda v: isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))),
    "str": ("a string", lambda v: isinstance(v, str)),
}


def check_field_types(options) -> None:
    """Every field of the dataclass ``options`` annotated ``bool``, ``int``, ``float`` or ``str``
    (or one of them ``| None``) holds a value of that type: a string ``"false"`` from a recipe is
    not False (it is true), 23.5 is not an int.  Raises TypeError naming the field first."""
    for f in dataclasses.fields(options):
        kinds = [k.strip() for k in str(f.type).split("|")]
        if not set(kinds) <= {*_FIELD_KINDS, "None"}:
            continue
        value = getattr(options, f.name)
        if value is None and "None" in kinds:
            continue
        kinds = [k for k in kinds if k != "None"]
        if not any(_FIELD_KINDS[k][1](value) for k in kinds):
            expected = " or ".join(_FIELD_KINDS[k][0] for k in kinds) + (" or none" if "None" in str(f.type) else "")
            raise TypeError(f"{f.name} must be {expected}; got {type(value).__name__} "
                            f"{describe(value)}")
        if "float" in kinds and not _fits_a_float(value):  # (math.isfinite would overflow)
            raise ValueError(f"{f.name} must be a finite number; got {describe(value)}")


def _fits_a_float(value) -> bool:
    try:
        float(value)
    except OverflowError:
        return False
    return True
