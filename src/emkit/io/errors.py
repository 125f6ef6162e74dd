"""The exceptions emkit raises for an input file it refuses to use."""

from __future__ import annotations

__all__ = ["InvalidFileError", "FeatureError"]


class InvalidFileError(ValueError):
    """A file exists but is not one emkit can use: not (a complete) HDF5 file or feature file, a
    dataset or matrix of the wrong type, shape or size, a size beyond a safety limit, values out of
    range (NaN, negative variances...), a link to another file.  The message names the file and,
    where there is one, the dataset, attribute or utterance; it never quotes the file's contents.
    A ``ValueError``, so ``except ValueError`` keeps working.  Feature readers raise its subclass
    :class:`FeatureError`.
    """


class FeatureError(InvalidFileError):
    """A feature, list or score file cannot be used (format, content, a safety limit).

    The message names the file (and the utterance or line) and never quotes the file's bytes.
    """
