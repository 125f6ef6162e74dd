"""Fitted parameters: one way for every estimator to hold them.

A :class:`FittedArray` attribute stores a read-only float64 copy of what is assigned to it, in the
instance's ``__dict__`` under ``"_" + name``.  Constants derived from fitted parameters are cached
with :func:`derived` and dropped whenever any of the instance's fitted arrays is assigned, so a
cache can never be stale.  Read-only storage is what makes that true: an array cannot change
without a new assignment.

The owner's ``fit`` stores its results through the same descriptor (or :func:`set_fitted`, which
skips the copy of an array it has just made); no other module sets an estimator's fitted state.
"""

from __future__ import annotations

import numpy as np
from sklearn.exceptions import NotFittedError

from ._validation import check_finite, real_copy

_CACHE = "_derived_cache"
_MISSING = object()


class FittedArray:
    """A read-only float64 array attribute; ``None`` means not set (see the module docstring).

    Reading an unset attribute calls ``owner._missing_parameter(name)`` when the class defines it
    (e.g. to draw initial values), else raises :class:`~sklearn.exceptions.NotFittedError`.
    """

    def __init__(self, doc: str = ""):
        self.__doc__ = doc

    def __set_name__(self, owner, name):
        self.name = name
        self.private = "_" + name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        value = obj.__dict__.get(self.private)
        if value is None:
            missing = getattr(obj, "_missing_parameter", None)
            if missing is not None:
                return missing(self.name)
            raise NotFittedError(f"{type(obj).__name__} has no {self.name} yet: call fit first")
        return value

    def __set__(self, obj, value):
        # an assignment by the user: refused when it holds NaN/inf (the reference stored it, and
        # every transform, score or projection was then NaN without a word)
        if value is not None:
            label = f"{type(obj).__name__}.{self.name}"
            value = real_copy(value, label)
            check_finite(value, label)
        set_fitted(obj, self.name, value, copy=False)
        assigned(obj, self.name)


def assigned(obj, name: str) -> None:
    """Tell ``obj`` that the user assigned its fitted array ``name`` (its
    ``_parameter_assigned(name)``, when it has one: the feature names of its fit may no longer
    describe the features it reads)."""
    hook = getattr(obj, "_parameter_assigned", None)
    if hook is not None:
        hook(name)


def set_fitted(obj, name: str, value, copy: bool = True) -> None:
    """Store ``value`` as the fitted array ``name`` of ``obj`` (read-only float64; ``None`` unsets
    it) and drop the derived constants.  ``copy=False`` keeps a float64 array the caller owns."""
    if value is not None:
        value = np.array(value, dtype=np.float64) if copy else np.asarray(value, dtype=np.float64)
        value.flags.writeable = False
    obj.__dict__["_" + name] = value
    obj.__dict__.pop(_CACHE, None)


def fitted_value(obj, name: str):
    """The stored fitted array ``name`` of ``obj``, or None (no fallback, no error)."""
    return obj.__dict__.get("_" + name)


def derived(obj, key, compute):
    """``compute()`` cached on ``obj`` under ``key`` until one of its fitted arrays is assigned.

    Threads may ask at once: each may compute, the first value stored is kept and returned to all
    (``dict.setdefault`` is atomic), and a value stored is never overwritten.
    """
    cache = obj.__dict__.setdefault(_CACHE, {})
    value = cache.get(key, _MISSING)
    return cache.setdefault(key, compute()) if value is _MISSING else value


def peek_derived(obj, key):
    """The constant cached on ``obj`` under ``key``, or None; stores nothing."""
    return obj.__dict__.get(_CACHE, {}).get(key)


def clear_derived(obj) -> None:
    """Drop every cached derived constant of ``obj``."""
    obj.__dict__.pop(_CACHE, None)


def without_derived(state: dict) -> dict:
    """``state`` (an instance ``__dict__``) without the derived constants, for ``__getstate__``."""
    if _CACHE in state:
        state = dict(state)
        del state[_CACHE]
    return state


def fitted_names(cls) -> list:
    """The names of the :class:`FittedArray` attributes of ``cls`` (and its bases)."""
    names = []
    for klass in reversed(cls.__mro__):
        names += [k for k, v in vars(klass).items() if isinstance(v, FittedArray) and k not in names]
    return names


def unpickled_state(cls, state: dict) -> dict:
    """``state`` (from a pickle of a ``cls``) with its fitted arrays stored as :func:`set_fitted`
    stores them: read-only float64 under ``"_" + name``.  A pickle of emkit from before an
    attribute became a fitted array holds it under its public name; it is moved.  No derived
    constants are kept (a cache of another process's arrays could be stale)."""
    state = without_derived(dict(state))
    for name in fitted_names(cls):
        private = "_" + name
        if name in state and private not in state:  # (the layout of the earlier pickles)
            state[private] = state.pop(name)
        value = state.get(private)
        if value is not None:
            value = np.asarray(value, dtype=np.float64)
            value.flags.writeable = False
            state[private] = value
    return state


class PicklesFitted:
    """Mixin (placed before ``BaseEstimator``) of the estimators with :class:`FittedArray`
    attributes: pickled without the derived constants, unpickled with their fitted arrays as
    ``fit`` leaves them (read-only float64; a writeable array would let a cache go stale)."""

    def __getstate__(self):
        return without_derived(super().__getstate__())

    def __setstate__(self, state):
        super().__setstate__(unpickled_state(type(self), state))


class FitSummary:
    """Mixin of the estimators whose files keep a summary of their last ``fit``.

    ``_FIT_SUMMARY`` names the attributes (``n_iter_``, ``converged_``...); a file's reader hands
    the ones it holds to :meth:`_restore_fit_summary` (those it lacks stay unset, as after
    construction).
    """

    _FIT_SUMMARY: tuple = ("n_iter_", "converged_")

    def _fit_summary(self) -> dict:
        """The set attributes of ``_FIT_SUMMARY``, name -> value."""
        return {name: self.__dict__[name] for name in self._FIT_SUMMARY if name in self.__dict__}

    def _restore_fit_summary(self, summary: dict):
        """``self``, with the attributes of ``summary`` (names of ``_FIT_SUMMARY`` only) set."""
        unknown = sorted(set(summary) - set(self._FIT_SUMMARY))
        if unknown:
            raise ValueError(f"{type(self).__name__} keeps no fit summary {unknown}")
        self.__dict__.update(summary)
        return self
