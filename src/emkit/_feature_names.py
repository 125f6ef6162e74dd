"""``feature_names_in_`` as scikit-learn keeps it, for the transformers fitted on DataFrames.

``fit`` on a DataFrame whose column names are all strings records them; ``transform`` then
refuses a DataFrame whose columns differ from them or come in another order (the numbers would
silently be those of other features), and warns when names are given on one side only.
"""

from __future__ import annotations

import numpy as np

from ._caller_warnings import warn_at_caller


def column_names(X):
    """The string column names of a DataFrame (pandas, polars...) as an object array, or None
    (another input, or names that are not all strings: scikit-learn's rule)."""
    columns = getattr(X, "columns", None)
    # (a dask delayed object answers every attribute with a delayed value: no names there)
    if columns is None or isinstance(X, np.ndarray) or hasattr(columns, "__dask_graph__"):
        return None
    names = list(columns)
    if not names or not all(isinstance(n, str) for n in names):
        return None
    return np.asarray(names, dtype=object)


def _shown(names) -> str:
    names = [str(n) for n in names]
    return repr(names if len(names) <= 6 else names[:6] + ["..."])


class FeatureNamesMixin:
    """``_record_feature_names(X)`` in ``fit``, ``_check_feature_names(X)`` where a fitted
    estimator reads new data (both before ``X`` is converted to an array).

    ``n_features_in_`` follows the parameters the user assigns: once the fitted arrays of
    ``_FEATURE_AXES`` (name -> its axis over the input's features) that are set agree on
    another number of features, the machine reads that many, so ``n_features_in_`` becomes it
    and the names of fit's features (``feature_names_in_``) are dropped, as a machine fitted on
    an array has none.  Assigned with as many features, they stay (the same features, new
    values); while the arrays disagree (one assigned, the next to come), nothing changes, and
    reading data names the array that does not fit them.
    """

    #: fitted arrays -> their axis over the input's features (see the class docstring)
    _FEATURE_AXES: dict = {}

    def _parameter_assigned(self, name: str) -> None:
        """Called by the fitted-array descriptors after the user assigned ``name``."""
        from ._fitted import fitted_value

        if name not in self._FEATURE_AXES:
            return
        counts = set()
        for other, axis in self._FEATURE_AXES.items():
            value = fitted_value(self, other)
            if value is not None and value.ndim > axis:
                counts.add(int(value.shape[axis]))
        if len(counts) != 1:
            return
        n_features = counts.pop()
        if getattr(self, "n_features_in_", None) != n_features:
            self.__dict__.pop("feature_names_in_", None)
            self.n_features_in_ = n_features

    def _record_feature_names(self, X) -> None:
        names = column_names(X)
        if names is None:
            self.__dict__.pop("feature_names_in_", None)
        else:
            self.feature_names_in_ = names

    def _restore_feature_names(self, names):
        """``self`` with the ``feature_names_in_`` a file kept (None: the fit had no names)."""
        if names is not None:
            names = np.asarray([str(n) for n in names], dtype=object)
            if names.shape != (self.n_features_in_,):
                raise ValueError(f"feature names must be {self.n_features_in_} strings, one per "
                                 f"feature; got {names.shape[0]}")
            self.feature_names_in_ = names
        return self

    def _check_feature_names(self, X, name: str = "X") -> None:
        message = self._feature_names_warning(X, name)
        if message is not None:
            warn_at_caller(message)

    def _check_feature_names_of_each(self, frames, name: str = "X") -> None:
        """``_check_feature_names`` of every frame of a list or tuple (of sessions, of models), or
        of ``frames`` itself: any mismatch raises, and one warning at most is given."""
        items = frames if isinstance(frames, (list, tuple)) else [frames]
        messages = [self._feature_names_warning(x, name) for x in items]  # (all checked)
        message = next((m for m in messages if m is not None), None)
        if message is not None:
            warn_at_caller(message)

    def _feature_names_warning(self, X, name: str):
        """Raise if the names of ``X`` differ from ``feature_names_in_``; the warning to give when
        names are given on one side only, else None."""
        fitted, names = getattr(self, "feature_names_in_", None), column_names(X)
        owner = type(self).__name__
        if fitted is None:
            if names is not None:
                return f"{name} has feature names, but {owner} was fitted without feature names"
            return None
        if names is None:
            return f"{name} does not have valid feature names, but {owner} was fitted with feature names"
        if len(names) != len(fitted) or (names != fitted).any():
            order = " (the same names in another order)" if sorted(names) == sorted(fitted) else ""
            raise ValueError(f"{name}'s feature names {_shown(names)} differ from those {owner} was fitted "
                             f"with, {_shown(fitted)}{order}: give the columns of fit, in their order")
        return None
