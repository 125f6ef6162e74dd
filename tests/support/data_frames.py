"""The least of a DataFrame (pandas is not a dependency): string column names and an array."""

import numpy as np


class Frame:
    """``values`` (n, D) with ``columns`` (D names), converted by ``np.asarray`` as pandas is."""

    def __init__(self, values, columns):
        self.values, self.columns = np.asarray(values), list(columns)
        self.shape = self.values.shape
        self.ndim = self.values.ndim

    def __array__(self, dtype=None, copy=None):
        return self.values if dtype is None else self.values.astype(dtype)

    def __len__(self):
        return len(self.values)

    def reordered(self, columns):
        """The same frame with its columns in the order of ``columns`` (names)."""
        index = [self.columns.index(c) for c in columns]
        return Frame(self.values[:, index], columns)
