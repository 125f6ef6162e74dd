"""How error messages show a value they received: short scalars as they are, arrays by their
type, shape and dtype, never their contents (an array's repr can run to megabytes or many lines,
and a wrong value's elements rarely tell the user what was wrong with it)."""

from __future__ import annotations

import numbers

__all__ = ["describe"]


def _numpy_scalar_repr(value) -> str | None:
    """numpy >= 2's repr of a numpy bool or number ("np.True_", "np.float64(0.5)"), whatever the
    numpy version (numpy 1 wrote "True", "0.5"); None for anything else."""
    kind = type(value)
    if kind.__module__ != "numpy" or getattr(value, "shape", None) != ():
        return None
    if kind.__name__ in ("bool", "bool_"):
        return f"np.{bool(value)}_"
    if isinstance(value, numbers.Number):
        text = str(value)  # the shortest digits of its own precision (format() would widen)
        return f"np.{kind.__name__}({text[1:-1] if text.startswith('(') else text})"
    return None


def _truncated(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe(value, limit: int = 40) -> str:
    """A bounded description of ``value`` for an error message.

    None, bools, numbers, numpy scalars and 0-d arrays: their repr (at most ``limit`` characters;
    a longer integer: its first 20 digits and its number of digits);
    a str or bytes: its repr, cut to ``limit`` characters with its length when longer; an array
    (anything with ``shape`` and ``dtype``: numpy, dask, PyTorch, CuPy): "a <type> of shape S and
    dtype T"; another sized container: its repr when that is short, else "a <type> of N items";
    anything else: its repr cut to ``limit`` characters.
    """
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None and dtype is not None and len(shape) > 0:
        module = type(value).__module__.split(".")[0]
        kind = "an array" if module == "numpy" else f"a {module} {type(value).__name__}"
        return f"{kind} of shape {tuple(shape)} and dtype {dtype}"  # e.g. "a dask Array of ..."
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        shown = repr(int(value))
        if len(shown) > limit:  # (Python writes up to 4300 digits): its first digits and count
            return f"{shown[:20]}... (an integer of {len(shown.lstrip('-'))} digits)"
    if isinstance(value, (str, bytes)):
        shown = repr(value)
        return shown if len(shown) <= limit else f"{shown[:limit - 3]}... ({len(value)} characters)"
    shown = _numpy_scalar_repr(value) or repr(value)
    if value is None or isinstance(value, numbers.Number) or shape is not None or len(shown) <= limit:
        return _truncated(shown, limit)
    try:
        return f"a {type(value).__name__} of {len(value)} items"
    except TypeError:  # not sized
        return _truncated(shown, limit)
