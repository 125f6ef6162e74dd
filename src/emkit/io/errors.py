"""The exception emkit raises for an input file it refuses to use."""

from __future__ import annotations


class InvalidFileError(ValueError):
    """A file exists but is not one emkit can use: not (a complete) HDF5 file, a dataset of the
    wrong type, shape or size, values out of range (NaN, negative variances...), a link to another
    file.  The message names the file and, where there is one, the dataset or attribute; it never
    quotes the file's contents.  A ``ValueError``, so ``except ValueError`` keeps working.
    """
